/**
 * The sandbox stack, deployed offline with cdk-lambda-microvms/testing: no Docker, no AWS account.
 * A local HTTP server plays the image's app (app/server.mjs) behind every MicroVM endpoint.
 */
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { CreateMicrovmAuthTokenCommand, LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { App } from 'aws-cdk-lib';
import { MicroVmTestbed } from 'cdk-lambda-microvms/testing';
import { SandboxStack } from '../lib/sandbox-stack';

let app: Server;
let bed: MicroVmTestbed;

beforeAll(async () => {
  // The app in the image: the /run hook hands it the session, /status reports it.
  let session: string | undefined;
  app = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (req.url === '/aws/lambda-microvms/runtime/v1/run') session = JSON.parse(body).runHookPayload;
      res.end(JSON.stringify({ status: 'ok', session }));
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  bed = await MicroVmTestbed.start({
    emulator: {
      backends: { '*': `http://127.0.0.1:${(app.address() as AddressInfo).port}` },
      memoryQuotaMiB: 3 * 2048, // room for 3 sandboxes of 2 GiB
    },
  });
});

afterAll(async () => {
  await bed.close();
  app.close();
});

const running = () => bed.emulator.snapshot().microvms.filter((vm) => vm.state === 'RUNNING');

test('the sandboxes converge, answer with their session, survive a failed scale-up, and go away', async () => {
  const created = await bed.deploy(new SandboxStack(new App(), 'Sandbox', { sandboxes: 2 }));
  expect([created.status, created.reason]).toEqual(['CREATE_COMPLETE', undefined]);
  expect(running()).toHaveLength(2);

  // Call one sandbox through its endpoint, with an auth token, as a client of the service would.
  const fleet = bed.resource('Sandboxes');
  const [id] = fleet.attributes.InstanceIds.split(',');
  const [endpoint] = fleet.attributes.Endpoints.split(',');
  const client = new LambdaMicrovmsClient(bed.clientConfig);
  const { authToken } = await client.send(new CreateMicrovmAuthTokenCommand({
    microvmIdentifier: id,
    expirationInMinutes: 5,
    allowedPorts: [{ allPorts: {} }],
  }));
  const answer = await bed.emulator.endpoints.call(endpoint, { path: '/status', token: authToken!['X-aws-proxy-auth'] });
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.body)).toEqual({ status: 'ok', session: 'session-from-the-stack' });

  // 4 sandboxes do not fit the account's memory quota: the update fails and rolls back to 2.
  const tooMany = await bed.deploy(new SandboxStack(new App(), 'Sandbox', { sandboxes: 4 }));
  expect(tooMany.status).toBe('UPDATE_ROLLBACK_COMPLETE');
  expect(tooMany.reason).toMatch(/^Sandboxes: .*memory/);
  expect(running()).toHaveLength(2);

  const destroyed = await bed.destroy();
  expect(destroyed.status).toBe('DELETE_COMPLETE');
  bed.emulator.advance(60_000);
  expect(bed.emulator.snapshot().images).toHaveLength(0);
  expect(running()).toHaveLength(0);
});
