import {
  CreateMicrovmImageCommand,
  LambdaMicrovmsClient,
  TerminateMicrovmCommand,
  UpdateMicrovmImageCommand,
} from '@aws-sdk/client-lambda-microvms';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { ManualClock, RunningEmulator, startEmulator } from '../emulator/src';
import { LifecycleDriver } from './support/lifecycle-driver';
import { FleetHandler } from '../lambda/fleet/fleet-handler';
import { Inventory, MemoryInventory, SlotRecord } from '../lambda/fleet/inventory';
import { FleetProps } from '../src/private/wire';

process.env.MICROVMS_HANDLER_QUIET = '1';

const CREDS = { accessKeyId: 'test', secretAccessKey: 'test' };
const LIVE = new Set(['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED']);

let emu: RunningEmulator;
let clock: ManualClock;
let client: LambdaMicrovmsClient;
let runClient: LambdaMicrovmsClient;
let inventory: MemoryInventory;
let imageArn: string;

async function startWith(opts: { memoryQuotaMiB?: number; delays?: { vmTerminate?: number } } = {}) {
  clock = new ManualClock();
  emu = await startEmulator({ clock, faults: true, ...opts });
  client = new LambdaMicrovmsClient({ endpoint: emu.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 3 });
  runClient = new LambdaMicrovmsClient({ endpoint: emu.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 });
  inventory = new MemoryInventory();
  const img = await client.send(new CreateMicrovmImageCommand({
    name: 'fleet-test',
    baseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
    buildRoleArn: 'arn:aws:iam::123456789012:role/build',
    codeArtifact: { uri: 's3://bucket/code.zip' },
  }));
  imageArn = img.imageArn!;
  clock.advance(10_000);
}

async function newVersion(): Promise<string> {
  const u = await client.send(new UpdateMicrovmImageCommand({
    imageIdentifier: imageArn,
    baseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
    buildRoleArn: 'arn:aws:iam::123456789012:role/build',
    codeArtifact: { uri: 's3://bucket/code-v2.zip' },
  }));
  clock.advance(10_000);
  return u.imageVersion!;
}

afterEach(async () => {
  await emu?.close();
});

/**
 * The handler waits on the emulator's clock. Each wait also lets a little real time pass (1/50 of
 * it) so that requests already sent reach the emulator at the virtual time they were sent at.
 */
const handlerClock = () => ({
  now: () => clock.now(),
  sleep: async (ms: number) => {
    await new Promise((r) => setTimeout(r, Math.ceil(ms / 50)));
    clock.advance(ms);
  },
});

function newHandler(inv: Inventory = inventory, extra: Record<string, unknown> = {}) {
  return new FleetHandler(client, () => inv, { clock: handlerClock(), runClient, random: () => 0.5, ...extra });
}

function driverFor(handler: FleetHandler) {
  return new LifecycleDriver<FleetProps>({
    handler,
    resourceType: 'Custom::LambdaMicroVmFleet',
    queryIntervalMs: 15_000,
    wait: async (ms) => { clock.advance(ms); },
  });
}

function fleetProps(over: Partial<FleetProps> = {}): FleetProps {
  return {
    ImageArn: imageArn,
    ImageVersion: '1.0',
    DesiredCount: '3',
    MaximumDurationSeconds: '28800',
    UpdatePolicy: 'ROLLING',
    BatchSize: '1',
    LaunchRate: '5',
    TableName: 'inventory',
    TimeoutSeconds: '3300',
    ...over,
  };
}

const allVms = () => emu.snapshot().microvms as Array<{ microvmId: string; state: string; imageVersion: string }>;
const liveVms = () => allVms().filter((v) => LIVE.has(v.state));

/** Live MicroVMs in the emulator that no inventory record accounts for: must always be zero. */
async function unaccounted(fleetId?: string): Promise<string[]> {
  const known = new Set(fleetId ? (await inventory.listSlots(fleetId)).map((r) => r.microvmId) : []);
  return liveVms().map((v) => v.microvmId).filter((id) => !known.has(id));
}

describe('MicroVmFleet handler against the emulator', () => {
  test('create launches the desired count, records it, and delete terminates everything', async () => {
    await startWith();
    const driver = driverFor(newHandler());
    const created = await driver.create(fleetProps());
    expect(created.reason).toBeUndefined();
    expect(created.status).toBe('SUCCESS');
    expect(created.physicalResourceId).toMatch(/^fleet-[0-9a-f]{24}$/);
    expect(created.data.InstanceCount).toBe('3');
    expect(created.data.ImageVersion).toBe('1.0');
    const ids = created.data.InstanceIds.split(',');
    expect(ids).toHaveLength(3);
    expect(created.data.Endpoints.split(',')).toHaveLength(3);
    expect(liveVms().map((v) => v.microvmId).sort()).toEqual([...ids].sort());
    expect(emu.stats().operations.RunMicrovm).toBe(3);
    const records = await inventory.listSlots(created.physicalResourceId!);
    expect(records.map((r) => [r.phase, r.state])).toEqual([['LAUNCHED', 'RUNNING'], ['LAUNCHED', 'RUNNING'], ['LAUNCHED', 'RUNNING']]);
    expect(await unaccounted(created.physicalResourceId)).toEqual([]);

    const deleted = await driver.delete();
    expect(deleted.status).toBe('SUCCESS');
    expect(liveVms()).toEqual([]);
    expect(inventory.items.size).toBe(0);
  });

  test('delete waits until every instance has stopped, not just until TerminateMicrovm was accepted', async () => {
    await startWith({ delays: { vmTerminate: 40_000 } });
    const driver = driverFor(newHandler());
    await driver.create(fleetProps({ DesiredCount: '2' }));
    const deleted = await driver.delete();
    expect(deleted.status).toBe('SUCCESS');
    expect(deleted.polls).toBeGreaterThanOrEqual(3); // 40 s of TERMINATING at 15 s per poll
    expect(allVms().map((v) => v.state)).toEqual(['TERMINATED', 'TERMINATED']);
    expect(inventory.items.size).toBe(0);
  });

  test('a throttling burst is absorbed: the desired count, no duplicate launches', async () => {
    await startWith();
    emu.faults.operation({ operation: 'RunMicrovm', mode: 'throttle', count: 6 });
    const driver = driverFor(newHandler());
    const created = await driver.create(fleetProps({ DesiredCount: '5' }));
    expect(created.status).toBe('SUCCESS');
    expect(allVms()).toHaveLength(5);
    expect(emu.stats().operations.RunMicrovm).toBe(5 + 6);
    expect(await unaccounted(created.physicalResourceId)).toEqual([]);
  });

  test('transient errors midway are retried with the same token', async () => {
    await startWith();
    emu.faults.operation({ operation: 'RunMicrovm', mode: 'error', errorType: 'InternalServerException', status: 500, count: 2 });
    const created = await driverFor(newHandler()).create(fleetProps({ DesiredCount: '4' }));
    expect(created.status).toBe('SUCCESS');
    expect(allVms()).toHaveLength(4);
    expect(await unaccounted(created.physicalResourceId)).toEqual([]);
  });

  test('a RunMicrovm refused midway fails the create after terminating what was launched; the later delete is a no-op', async () => {
    await startWith();
    let calls = 0;
    runClient.middlewareStack.add((next) => async (args) => {
      if (++calls === 4) emu.faults.operation({ operation: 'RunMicrovm', mode: 'error', errorType: 'ValidationException', status: 400, message: 'injected refusal' });
      return next(args);
    }, { step: 'initialize' });
    const driver = driverFor(newHandler());
    const created = await driver.create(fleetProps({ DesiredCount: '6' }));
    expect(created.status).toBe('FAILED');
    expect(created.reason).toMatch(/RunMicrovm refused.*injected refusal/);
    expect(created.reason).toMatch(/Every MicroVM this deploy launched was terminated/);
    expect(allVms().length).toBeGreaterThanOrEqual(3);
    expect(liveVms()).toEqual([]);
    expect(inventory.items.size).toBe(0);
    // isComplete failed: the framework answers with the real id, so the rollback's Delete comes and finds nothing left.
    const deleted = await driver.delete();
    expect(deleted.status).toBe('SUCCESS');
    expect(liveVms()).toEqual([]);
  });

  test('a handler restarted between launch and record re-issues the recorded tokens and launches nothing twice', async () => {
    await startWith();
    // The first process dies (Lambda timeout) right when it would record the MicroVM ids: its
    // write never completes and no code of it runs again.
    let reachedRecord!: () => void;
    const killed = new Promise<void>((r) => { reachedRecord = r; });
    const crashing: Inventory = Object.assign(Object.create(inventory), {
      putSlots: async (records: readonly SlotRecord[]) => {
        if (records.some((r) => r.phase === 'LAUNCHED')) {
          reachedRecord();
          return new Promise<void>(() => undefined);
        }
        return inventory.putSlots(records);
      },
    });
    const first = newHandler(crashing);
    const event: any = {
      RequestType: 'Create',
      StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/S/1',
      RequestId: 'req-1',
      LogicalResourceId: 'Fleet',
      ResourceType: 'Custom::LambdaMicroVmFleet',
      ResourceProperties: fleetProps({ DesiredCount: '5' }),
    };
    const started = await first.onEvent(event);
    const complete = { ...event, ...started };
    void first.isComplete(complete);
    await killed;
    expect(allVms()).toHaveLength(5);
    const launching = await inventory.listSlots(started.PhysicalResourceId!);
    expect(launching.every((r) => r.phase === 'LAUNCHING')).toBe(true);

    // A new process: same inventory, fresh handler.
    const second = newHandler();
    let done = false;
    for (let i = 0; i < 10 && !done; i++) {
      done = (await second.isComplete(complete)).IsComplete;
      clock.advance(15_000);
    }
    expect(done).toBe(true);
    expect(allVms()).toHaveLength(5); // the re-issued tokens returned the same MicroVMs
    const records = await inventory.listSlots(started.PhysicalResourceId!);
    expect(new Set(records.map((r) => r.microvmId))).toEqual(new Set(allVms().map((v) => v.microvmId)));
    expect(await unaccounted(started.PhysicalResourceId)).toEqual([]);
  });

  test('a retried onEvent reuses its generation and tokens', async () => {
    await startWith();
    const created = await driverFor(newHandler()).create(fleetProps(), { replayOnEvent: true });
    expect(created.status).toBe('SUCCESS');
    expect(allVms()).toHaveLength(3);
  });

  test('quota exhaustion fails fast with the quota arithmetic, and leaves nothing running', async () => {
    await startWith({ memoryQuotaMiB: 3 * 2048 });
    const created = await driverFor(newHandler()).create(fleetProps({ DesiredCount: '5' }));
    expect(created.status).toBe('FAILED');
    expect(created.reason).toMatch(/ServiceQuotaExceededException/);
    expect(created.reason).toMatch(/needs 5 × 2048 MiB = 10 GiB/);
    expect(created.reason).toMatch(/held 3 × 2048 MiB = 6 GiB/);
    // Three launches, the refusal, at most the one call already in flight: a quota error is never retried.
    expect(emu.stats().operations.RunMicrovm).toBeLessThanOrEqual(5);
    expect(liveVms()).toEqual([]);
    expect(inventory.items.size).toBe(0);
  });

  test('count changes scale out and in', async () => {
    await startWith();
    const driver = driverFor(newHandler());
    const created = await driver.create(fleetProps({ DesiredCount: '2' }));
    const fleetId = created.physicalResourceId!;
    expect((await driver.update(fleetProps({ DesiredCount: '5' }))).data.InstanceCount).toBe('5');
    expect(liveVms()).toHaveLength(5);
    const scaledIn = await driver.update(fleetProps({ DesiredCount: '1' }));
    expect(scaledIn.data.InstanceIds.split(',')).toHaveLength(1);
    expect(liveVms()).toHaveLength(1);
    expect(await unaccounted(fleetId)).toEqual([]);
    const zero = await driver.update(fleetProps({ DesiredCount: '0' }));
    expect(zero.status).toBe('SUCCESS');
    expect(zero.data.InstanceIds).toBe('');
    expect(liveVms()).toEqual([]);
  });

  test('instances found TERMINATED are replaced, not counted', async () => {
    await startWith();
    const driver = driverFor(newHandler());
    const created = await driver.create(fleetProps({ DesiredCount: '3' }));
    const victim = created.data.InstanceIds.split(',')[0];
    await client.send(new TerminateMicrovmCommand({ microvmIdentifier: victim }));
    clock.advance(5_000);
    const updated = await driver.update(fleetProps({ DesiredCount: '4' }));
    expect(updated.status).toBe('SUCCESS');
    expect(updated.data.InstanceIds.split(',')).not.toContain(victim);
    expect(liveVms()).toHaveLength(4);
    expect(await unaccounted(created.physicalResourceId)).toEqual([]);
  });

  test('a rolling update replaces instances while keeping the desired count ready', async () => {
    await startWith();
    const v2 = await newVersion();
    const handler = newHandler();
    const driver = driverFor(handler);
    const created = await driver.create(fleetProps({ DesiredCount: '3' }));
    // Watch every poll: ready (RUNNING) instances never drop below the desired count.
    const original = handler.isComplete.bind(handler);
    let minReady = Infinity;
    handler.isComplete = async (e: any) => {
      const r = await original(e);
      minReady = Math.min(minReady, liveVms().filter((v) => v.state === 'RUNNING').length);
      return r;
    };
    const updated = await driver.update(fleetProps({ DesiredCount: '3', ImageVersion: v2 }));
    expect(updated.status).toBe('SUCCESS');
    expect(updated.data.ImageVersion).toBe(v2);
    expect(minReady).toBeGreaterThanOrEqual(3);
    expect(liveVms().map((v) => v.imageVersion)).toEqual([v2, v2, v2]);
    expect(await unaccounted(created.physicalResourceId)).toEqual([]);
  });

  test('an update that fails midway is rolled back to the old configuration', async () => {
    await startWith();
    const v2 = await newVersion();
    const driver = driverFor(newHandler());
    const created = await driver.create(fleetProps({ DesiredCount: '3' }));
    const originalIds = created.data.InstanceIds.split(',').sort();
    let calls = 0;
    runClient.middlewareStack.add((next) => async (args) => {
      if (++calls === 2) emu.faults.operation({ operation: 'RunMicrovm', mode: 'error', errorType: 'ValidationException', status: 400, message: 'injected refusal' });
      return next(args);
    }, { step: 'initialize' });
    const failed = await driver.update(fleetProps({ DesiredCount: '3', ImageVersion: v2, UpdatePolicy: 'REPLACE_ALL' }));
    expect(failed.status).toBe('FAILED');
    expect(liveVms().some((v) => v.imageVersion === v2)).toBe(true);

    const rolledBack = await driver.rollback();
    expect(rolledBack.status).toBe('SUCCESS');
    expect(rolledBack.data.InstanceIds.split(',').sort()).toEqual(originalIds);
    expect(liveVms().map((v) => v.imageVersion)).toEqual(['1.0', '1.0', '1.0']);
    expect(await unaccounted(created.physicalResourceId)).toEqual([]);
  });

  test('a warm pool suspends each instance once RUNNING', async () => {
    await startWith();
    const created = await driverFor(newHandler()).create(fleetProps({ DesiredCount: '3', SuspendAfterLaunch: 'true' }));
    expect(created.reason).toBeUndefined();
    expect(created.status).toBe('SUCCESS');
    expect(liveVms().map((v) => v.state)).toEqual(['SUSPENDED', 'SUSPENDED', 'SUSPENDED']);
  });

  test('the /run payload secret is read at deploy time and checked against the 4096-byte limit without echoing it', async () => {
    await startWith();
    const sm = mockClient(SecretsManagerClient);
    const secretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:payload-AbCdEf';
    sm.on(GetSecretValueCommand, { SecretId: secretArn }).resolves({ SecretString: 'x'.repeat(4097) });
    const secrets = new SecretsManagerClient({ region: 'us-east-1' });
    const tooBig = await driverFor(newHandler(inventory, { secrets })).create(fleetProps({ RunHookPayloadSecretArn: secretArn }));
    expect(tooBig.status).toBe('FAILED');
    expect(tooBig.reason).toMatch(/holds 4097 bytes/);
    expect(tooBig.reason).not.toMatch(/xxxx/);
    expect(liveVms()).toEqual([]);

    sm.on(GetSecretValueCommand, { SecretId: secretArn }).resolves({ SecretString: '{"role":"worker"}' });
    const ok = await driverFor(newHandler(inventory, { secrets })).create(fleetProps({ RunHookPayloadSecretArn: secretArn }));
    expect(ok.status).toBe('SUCCESS');
    expect(sm.commandCalls(GetSecretValueCommand).length).toBeGreaterThan(0);
    sm.restore();
  });
});
