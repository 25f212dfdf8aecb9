import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { RealClock, startEmulator } from '../emulator/src';
import type { RunningEmulator } from '../emulator-dist';
import { LocalSts } from './support/iam-sts';
import { LifecycleDriver } from './support/lifecycle-driver';
import { ResourceType } from '../src/private/wire';

const DIST = path.join(__dirname, '..', 'lambda-dist');

describe('bundled handlers', () => {
  const bundles = fs.readdirSync(DIST);

  test.each(bundles)('%s bundles its SDK clients instead of requiring them', (name) => {
    const code = fs.readFileSync(path.join(DIST, name, 'index.js'), 'utf8');
    // Only the optional SigV4a CRT signer stays external (the SDK loads it in a try/catch).
    const external = [...code.matchAll(/require\("(@(?:aws-sdk|smithy|aws-crypto)\/[^"]+)"\)/g)].map((m) => m[1]);
    expect(new Set(external)).toEqual(new Set(external.length ? ['@aws-sdk/signature-v4-crt'] : []));
  });

  test('the emulator ships as a command and as an in-process API with type declarations', async () => {
    const root = path.join(__dirname, '..', 'emulator-dist');
    expect(fs.readFileSync(path.join(root, 'cli.js'), 'utf8').startsWith('#!/usr/bin/env node')).toBe(true);
    expect(fs.readFileSync(path.join(root, 'types', 'emulator', 'src', 'index.d.ts'), 'utf8')).toMatch(/export declare function startEmulator/);
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the shipped bundle, as users load it
    const shipped: typeof import('../emulator-dist') = require(root);
    const emu: RunningEmulator = await shipped.startEmulator({ clock: new shipped.ManualClock() });
    try {
      const health = await fetch(`${emu.url}/_emulator/health`);
      expect(health.status).toBe(200);
    } finally {
      await emu.close();
    }
  });

  test('the provider bundle assumes the image\'s own role and runs a create and a delete against the emulator through AWS_ENDPOINT_URL_LAMBDA_MICROVMS', async () => {
    const emu = await startEmulator({ clock: new RealClock(100), faults: true });
    const sts = await LocalSts.start();
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_LAMBDA_MICROVMS: emu.url,
      AWS_ENDPOINT_URL_STS: sts.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      MICROVMS_HANDLER_QUIET: '1',
    });
    const role = 'arn:aws:iam::123456789012:role/cdk-lambda-microvms/0123456789ab/image/bundled/Stack-ImageHandlerRole-X';
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the built bundle, as Lambda loads it
      const handler = require(path.join(DIST, 'provider', 'index.js'));
      const driver = new LifecycleDriver({
        handler, resourceType: ResourceType.IMAGE, queryIntervalMs: 5_000, wait: (ms) => new Promise((r) => setTimeout(r, ms / 100)),
      });
      const created = await driver.create({
        Name: 'bundled',
        CodeUri: 's3://a/b.zip',
        BaseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
        BuildRoleArn: 'arn:aws:iam::123456789012:role/b',
        Logging: { Disabled: 'true' },
        Architecture: 'ARM_64',
        BuildTimeoutSeconds: '600',
        HandlerRoleArn: role,
      });
      expect(created).toMatchObject({ status: 'SUCCESS', data: { ImageName: 'bundled', ImageVersion: '1.0' } });
      expect((await driver.delete()).status).toBe('SUCCESS');
      expect(emu.snapshot().images).toEqual([]);
      // Every request assumed the image's role, in a session named after the request.
      expect(new Set(sts.calls.map((c) => c.roleArn))).toEqual(new Set([role]));
      expect(new Set(sts.calls.map((c) => c.sessionName)).size).toBe(2);
      for (const c of sts.calls) expect(c.sessionName).toMatch(/^cfn-[0-9a-f-]{36}$/);
    } finally {
      process.env = saved;
      await Promise.all([emu.close(), sts.close()]);
    }
  });

  test('the provider bundle\'s onEvent runs a fleet schedule\'s input as a reconciler run (issue 12: no function of its own)', async () => {
    // CloudFormation as the run's fence sees it: DescribeStacks, signed with the function's own
    // credentials, answers that the stack is gone, so the run stops before any call on the fleet.
    const describes: Array<{ body: string; authorization: string }> = [];
    const cfn = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        describes.push({ body, authorization: String(req.headers.authorization) });
        const message = 'Stack with id arn:aws:cloudformation:us-east-1:123456789012:stack/Gone/1 does not exist';
        if (String(req.headers['content-type']).includes('json')) {
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-query-error': 'ValidationError;Sender' });
          res.end(JSON.stringify({ __type: 'com.amazonaws.cloudformation#ValidationError', message }));
        } else {
          res.writeHead(400, { 'content-type': 'text/xml' });
          res.end(`<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>${message}</Message></Error><RequestId>1</RequestId></ErrorResponse>`);
        }
      });
    });
    await new Promise<void>((resolve) => cfn.listen(0, '127.0.0.1', resolve));
    const sts = await LocalSts.start();
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_CLOUDFORMATION: `http://127.0.0.1:${(cfn.address() as AddressInfo).port}`,
      AWS_ENDPOINT_URL_STS: sts.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIAPROVIDERFUNCTION',
      AWS_SECRET_ACCESS_KEY: 'test',
      MICROVMS_HANDLER_QUIET: '1',
    });
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- the built bundle, as Lambda loads it
      const handler = require(path.join(DIST, 'provider', 'index.js'));
      const report = await handler.onEvent({
        Invocation: 'cdk-lambda-microvms:ReconcileFleet',
        FleetId: 'fleet-0123456789abcdef01234567',
        StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/Gone/1',
        Fleet: { TableName: 'inventory' },
        HandlerRoleArn: 'arn:aws:iam::123456789012:role/cdk-lambda-microvms/0123456789ab/fleet/img/Stack-FleetHandlerRole-X',
        RotateBeforeSeconds: '600',
      }, { awsRequestId: 'run-1' });
      expect(report).toMatchObject({ fleetId: 'fleet-0123456789abcdef01234567', outcome: 'skipped', reason: 'stack gone' });
      expect(describes).toHaveLength(1);
      expect(describes[0].authorization).toContain('Credential=AKIAPROVIDERFUNCTION/');
      // Nothing on the fleet, so no session of its role yet.
      expect(sts.calls).toEqual([]);
      // An event that is neither a framework request nor a run fails, naming its fields only.
      await expect(handler.onEvent({ FleetId: 'f', Secret: 'do-not-log' })).rejects.toThrow(/neither a RequestType .* nor Invocation .* with fields FleetId, Secret: /);
      await expect(handler.onEvent({ FleetId: 'f', Secret: 'do-not-log' })).rejects.not.toThrow(/do-not-log/);
    } finally {
      process.env = saved;
      await Promise.all([new Promise((r) => cfn.close(r)), sts.close()]);
    }
  });
});
