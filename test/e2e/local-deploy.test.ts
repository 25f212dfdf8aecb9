/**
 * End-to-end: the example app (example/) through the real `cdk` CLI, ministack's CloudFormation,
 * Lambda and Step Functions (the real cr.Provider framework with its isComplete waiter) and our
 * handlers, against our MicroVMs emulator. Deploy, update, a failed update that rolls back, and
 * destroy, asserting CloudFormation's stack states and what is left in the emulators.
 *
 * Needs python3 (the pinned ministack is installed into .venv/ if missing) and takes a few
 * minutes. The servers run on free loopback ports and are stopped after the tests.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LambdaMicrovmsClient, TerminateMicrovmCommand } from '@aws-sdk/client-lambda-microvms';
import { destroyLeftovers, Inventory, StackEvent } from '../../local/aws';
import { CdkResult, EmulatorState, LocalDeployment } from '../../local/deploy';
import { ROOT } from '../../local/servers';

const STACK = 'MicroVmsE2E';
const FLEET_SIZE = 3;
const BATCH_SIZE = 1; // example/stack.ts: FleetUpdatePolicy.rolling({ batchSize: 1 })

jest.setTimeout(10 * 60_000);

let env: LocalDeployment | undefined;
let workDir: string;
let imageDir: string;
let baseline: Inventory;
const passed = new Set<string>();

function local(): LocalDeployment {
  if (!env) throw new Error('the local servers did not start (see beforeAll)');
  return env;
}

function setCodeVersion(version: string): void {
  const file = path.join(imageDir, 'server.mjs');
  const text = fs.readFileSync(file, 'utf8');
  const next = text.replace(/const VERSION = '[^']*';/, `const VERSION = '${version}';`);
  if (next === text) throw new Error(`no VERSION constant to change in ${file}`);
  fs.writeFileSync(file, next);
}

function cdk(name: string, args: string[]): Promise<CdkResult> {
  return local().cdk(args, { name, context: { imageDirectory: imageDir, stackName: STACK } });
}

function deploy(name: string): Promise<CdkResult> {
  return cdk(name, ['deploy', STACK, '--require-approval', 'never', '--progress', 'events']);
}

function mustSucceed(what: string, r: CdkResult): void {
  if (r.exitCode !== 0) {
    throw new Error(`${what} exited with ${r.exitCode} (log ${r.logFile}):\n${r.output.split('\n').slice(-40).join('\n')}`);
  }
}

/** The last status of each custom resource in the stack's events, by type (the app has one of each). */
function customResourceStatuses(events: StackEvent[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events) if (e.resourceType.startsWith('Custom::')) out[e.resourceType] = e.status;
  return out;
}

function live(state: EmulatorState) {
  return state.microvms.filter((vm) => vm.state === 'RUNNING' || vm.state === 'PENDING');
}

function theImage(state: EmulatorState) {
  expect(state.images).toHaveLength(1);
  return state.images[0];
}

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-lambda-microvms-e2e-'));
  imageDir = path.join(workDir, 'image');
  fs.cpSync(path.join(ROOT, 'example', 'image'), imageDir, { recursive: true });
  env = await LocalDeployment.start({ workDir, bundle: 'if-stale' });
  mustSucceed('cdk bootstrap', await env.bootstrap());
  baseline = await env.aws.inventory();
}, 5 * 60_000);

afterAll(async () => {
  await env?.stop();
  if (passed.size === 4) fs.rmSync(workDir, { recursive: true, force: true });
  else if (workDir) process.stderr.write(`e2e work files and server logs kept in ${workDir}\n`);
});

describe('local deploy of the example app (ministack + emulator)', () => {
  let v1Ids: string[] = [];
  let v2Ids: string[] = [];

  test('deploy: every resource created, image version 1.0, an ACTIVE connector in the VPC, a fleet of 3', async () => {
    mustSucceed('cdk deploy', await deploy('deploy-v1'));
    const aws = local().aws;

    const stack = await aws.describeStack(STACK);
    expect(stack?.status).toBe('CREATE_COMPLETE');
    expect(customResourceStatuses(await aws.stackEvents(STACK))).toEqual({
      'Custom::LambdaNetworkConnector': 'CREATE_COMPLETE',
      'Custom::LambdaMicroVmImage': 'CREATE_COMPLETE',
      'Custom::LambdaMicroVmImageVersion': 'CREATE_COMPLETE',
      'Custom::LambdaMicroVmFleet': 'CREATE_COMPLETE',
    });
    const out = stack!.outputs;
    expect(out.ImageVersion).toBe('1.0');
    expect(out.FleetImageVersion).toBe('1.0');

    const state = await local().emulatorState();
    const image = theImage(state);
    expect(image.imageArn).toBe(out.ImageArn);
    expect(image.versions.map((v) => [v.imageVersion, v.state, v.status])).toEqual([['1.0', 'SUCCESSFUL', 'ACTIVE']]);

    // The connector is in the stack's VPC: its subnets are subnets ministack created for the stack.
    expect(state.connectors).toHaveLength(1);
    const connector = state.connectors[0] as any;
    expect(connector.State).toBe('ACTIVE');
    expect(connector.Arn).toBe(out.NetworkConnectorArn);
    const subnets: string[] = connector.Configuration.VpcEgressConfiguration.SubnetIds;
    expect(subnets).toHaveLength(2);
    const newSubnets = (await aws.inventory()).subnets.filter((s) => !baseline.subnets.includes(s));
    expect(newSubnets.sort()).toEqual([...subnets].sort());

    const vms = live(state);
    expect(vms).toHaveLength(FLEET_SIZE);
    for (const vm of vms) {
      expect(vm).toMatchObject({ state: 'RUNNING', imageArn: out.ImageArn, imageVersion: '1.0', egressNetworkConnectors: [out.NetworkConnectorArn] });
    }
    v1Ids = vms.map((vm) => vm.microvmId);
    expect(out.FleetInstanceIds.split(',').sort()).toEqual([...v1Ids].sort());
    expect(out.FleetEndpoints.split(',').sort()).toEqual(vms.map((vm) => vm.endpoint).sort());
    passed.add('deploy');
  });

  test('between deploys: an instance terminated out of band is replaced by the reconciler ministack runs on its schedule', async () => {
    // Issue 14: nothing invokes the reconciler here but ministack's EventBridge Scheduler (rate 1 minute).
    const before = live(await local().emulatorState());
    expect(before).toHaveLength(FLEET_SIZE);
    const victim = before[0].microvmId;
    const client = new LambdaMicrovmsClient({ endpoint: local().emulator.url, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    await client.send(new TerminateMicrovmCommand({ microvmIdentifier: victim }));
    let now = live(await local().emulatorState());
    for (let waited = 0; waited < 180_000 && !(now.length === FLEET_SIZE && !now.some((vm) => vm.microvmId === victim)); waited += 5_000) {
      await new Promise((r) => setTimeout(r, 5_000));
      now = live(await local().emulatorState());
    }
    expect(now.map((vm) => vm.microvmId)).not.toContain(victim);
    expect(now).toHaveLength(FLEET_SIZE);
    expect(now.every((vm) => vm.imageVersion === '1.0')).toBe(true);
    // Still exactly the fleet: nothing launched twice in the runs that followed.
    await new Promise((r) => setTimeout(r, 65_000));
    expect(live(await local().emulatorState())).toHaveLength(FLEET_SIZE);
    passed.add('reconciler');
  });

  test('update: changed image code builds version 2.0 and replaces the fleet in rolling batches', async () => {
    setCodeVersion('v2');
    const sampler = local().sampleMicrovms();
    const result = await deploy('deploy-v2');
    const samples = await sampler.stop();
    mustSucceed('cdk deploy (v2)', result);
    const stack = await local().aws.describeStack(STACK);
    expect(stack?.status).toBe('UPDATE_COMPLETE');
    expect(stack!.outputs.ImageVersion).toBe('2.0');
    expect(stack!.outputs.FleetImageVersion).toBe('2.0');

    const state = await local().emulatorState();
    expect(theImage(state).latestActiveImageVersion).toBe('2.0');
    const vms = live(state);
    expect(vms).toHaveLength(FLEET_SIZE);
    expect(vms.every((vm) => vm.imageVersion === '2.0')).toBe(true);
    v2Ids = vms.map((vm) => vm.microvmId);
    expect(v2Ids.filter((id) => v1Ids.includes(id))).toEqual([]);
    expect(stack!.outputs.FleetInstanceIds.split(',').sort()).toEqual([...v2Ids].sort());

    // Rolling, as seen from outside while the deploy ran: versions 1.0 and 2.0 were RUNNING side
    // by side, and never fewer than FLEET_SIZE - BATCH_SIZE instances were RUNNING (a
    // replace-all would drop to zero).
    const running = samples.map((s) => s.filter((vm) => vm.state === 'RUNNING'));
    expect(samples.length).toBeGreaterThan(10);
    expect(running.some((s) => s.some((vm) => vm.imageVersion === '1.0') && s.some((vm) => vm.imageVersion === '2.0'))).toBe(true);
    expect(Math.min(...running.map((s) => s.length))).toBeGreaterThanOrEqual(FLEET_SIZE - BATCH_SIZE);
    passed.add('update');
  });

  test('failed update: an injected build failure rolls the stack back to version 2.0 and the same fleet', async () => {
    const imageName = theImage(await local().emulatorState()).name;
    await local().emulatorAdmin('POST', '/_emulator/faults/build-failure', { imageName, reasonCode: 'CONTAINER_BUILD_FAILED' });
    setCodeVersion('v3');
    const r = await deploy('deploy-v3-fails');
    expect(r.exitCode).not.toBe(0);

    const aws = local().aws;
    const stack = await aws.describeStack(STACK);
    expect(stack?.status).toBe('UPDATE_ROLLBACK_COMPLETE');
    expect(stack!.outputs.ImageVersion).toBe('2.0');
    expect(stack!.outputs.FleetImageVersion).toBe('2.0');
    const events = await aws.stackEvents(STACK);
    const failed = events.filter((e) => e.status === 'UPDATE_FAILED' && e.resourceType === 'Custom::LambdaMicroVmImage');
    expect(failed).toHaveLength(1);
    expect(failed[0].reason).toMatch(/CONTAINER_BUILD_FAILED/);
    expect(failed[0].reason).toMatch(/3\.0/);

    const state = await local().emulatorState();
    const image = theImage(state);
    expect(image.latestActiveImageVersion).toBe('2.0');
    expect(image.versions.find((v) => v.imageVersion === '3.0')?.state).toBe('FAILED');
    const vms = live(state);
    expect(vms.map((vm) => vm.microvmId).sort()).toEqual([...v2Ids].sort());
    expect(vms.every((vm) => vm.state === 'RUNNING' && vm.imageVersion === '2.0')).toBe(true);
    passed.add('rollback');
  });

  test('destroy: the stack is deleted and nothing is left in ministack or the emulator', async () => {
    const aws = local().aws;
    const beforeDestroy = await aws.inventory();
    const destroyStarted = Date.now();
    mustSucceed('cdk destroy', await cdk('destroy', ['destroy', STACK, '--force']));

    const stack = await aws.describeStack(STACK);
    expect(stack === undefined || stack.status === 'DELETE_COMPLETE').toBe(true);
    const { left } = await destroyLeftovers(aws, baseline, beforeDestroy, destroyStarted);
    expect(left).toEqual({});

    const state = await local().emulatorState();
    expect(state.images).toEqual([]);
    expect(state.connectors).toEqual([]);
    expect(live(state)).toEqual([]);
    passed.add('destroy');
  });
});
