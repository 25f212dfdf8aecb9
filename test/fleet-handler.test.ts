import {
  LambdaMicrovmsClient,
  RunMicrovmCommand,
  TerminateMicrovmCommand,
  UpdateMicrovmImageCommand,
} from '@aws-sdk/client-lambda-microvms';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { ManualClock, RunningEmulator } from '../emulator/src';
import { startFleetEnv } from './support/fleet-env';
import { LifecycleDriver } from './support/lifecycle-driver';
import { FleetHandler } from '../lambda/fleet/fleet-handler';
import { Inventory, MemoryInventory, SlotRecord } from '../lambda/fleet/inventory';
import { FleetProps } from '../src/private/wire';

process.env.MICROVMS_HANDLER_QUIET = '1';

const LIVE = new Set(['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED']);

let emu: RunningEmulator;
let clock: ManualClock;
let client: LambdaMicrovmsClient;
let runClient: LambdaMicrovmsClient;
let inventory: MemoryInventory;
let imageArn: string;

async function startWith(opts: { memoryQuotaMiB?: number; delays?: { vmTerminate?: number } } = {}) {
  ({ emu, clock, client, runClient, imageArn } = await startFleetEnv('fleet-test', opts));
  inventory = new MemoryInventory();
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
  metricLines = [];
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

/** The EMF lines the handlers of a test published (instead of stdout). */
let metricLines: string[] = [];

function newHandler(inv: Inventory = inventory, extra: Record<string, unknown> = {}) {
  return new FleetHandler(client, () => inv, {
    clock: handlerClock(), runClient, random: () => 0.5, metrics: (l: string) => metricLines.push(l), ...extra,
  });
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

  test('a deploy publishes the fleet metrics the reconciler publishes (issue 14): launched, and the gauges as last observed', async () => {
    await startWith();
    const driver = driverFor(newHandler());
    const created = await driver.create(fleetProps());
    expect(created.status).toBe('SUCCESS');
    const docs = metricLines.map((l) => JSON.parse(l));
    expect(docs.length).toBeGreaterThan(0);
    for (const d of docs) {
      expect(d._aws.CloudWatchMetrics).toEqual([expect.objectContaining({ Namespace: 'CdkLambdaMicroVms/Fleet', Dimensions: [['FleetId']] })]);
      expect(d.FleetId).toBe(created.physicalResourceId);
      expect(d.DesiredCount).toBe(3);
    }
    // Every launch counted once across the isComplete calls; the last call saw the fleet converged.
    expect(docs.reduce((n, d) => n + d.Launched, 0)).toBe(emu.stats().operations.RunMicrovm);
    expect(docs.reduce((n, d) => n + d.Launched, 0)).toBe(3);
    expect(docs.reduce((n, d) => n + d.FailedLaunches, 0)).toBe(0);
    const last = docs[docs.length - 1];
    expect([last.ReadyCount, last.RunningCount, last.SuspendedCount, last.PendingCount]).toEqual([3, 3, 0, 0]);
  });

  test('delete waits until every instance has stopped, not just until TerminateMicrovm was accepted', async () => {
    await startWith({ delays: { vmTerminate: 40_000 } });
    const driver = driverFor(newHandler());
    await driver.create(fleetProps({ DesiredCount: '2' }));
    const t0 = clock.now();
    const deleted = await driver.delete();
    expect(deleted.status).toBe('SUCCESS');
    // One step keeps observing through the 40 s of TERMINATING and answers as soon as both stopped.
    expect(deleted.polls).toBe(1);
    expect(clock.now() - t0).toBeGreaterThanOrEqual(40_000);
    expect(clock.now() - t0).toBeLessThan(45_000);
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

/**
 * Issue 11: CloudFormation and the Provider framework as they really behave. Until the lifecycle
 * driver models cancellation and stale waiters, these tests send the events in the order
 * CloudFormation does and call isComplete where its waiter would.
 */
describe('MicroVmFleet handler: cancelled, superseded and refused requests (issue 11)', () => {
  const STACK_ID = 'arn:aws:cloudformation:us-east-1:123456789012:stack/TestStack/4f1c2a00-0000-4000-8000-000000000001';
  let requests = 0;

  function cfnEvent(requestType: 'Create' | 'Update' | 'Delete', props: FleetProps, physicalId?: string, oldProps?: FleetProps): any {
    return {
      RequestType: requestType,
      StackId: STACK_ID,
      RequestId: `request-${++requests}`,
      LogicalResourceId: 'Fleet',
      ResourceType: 'Custom::LambdaMicroVmFleet',
      ResourceProperties: props,
      OldResourceProperties: oldProps,
      PhysicalResourceId: physicalId,
    };
  }

  /** onEvent, then isComplete until complete, 15 s apart: the framework's waiter. */
  async function runToEnd(handler: FleetHandler, event: any): Promise<{ complete: any; polls: number }> {
    const started = await handler.onEvent(event);
    const complete = { ...event, ...started, PhysicalResourceId: started.PhysicalResourceId ?? event.PhysicalResourceId };
    for (let polls = 1; polls <= 100; polls++) {
      if ((await handler.isComplete(complete)).IsComplete) return { complete, polls };
      clock.advance(15_000);
    }
    throw new Error('did not complete in 100 polls');
  }

  /** The stale waiter of a cancelled or superseded request keeps polling: every poll must stop without acting. */
  async function stalePolls(handler: FleetHandler, complete: any, times = 5): Promise<void> {
    for (let i = 0; i < times; i++) {
      await expect(handler.isComplete(complete)).rejects.toThrow(/superseded.*stopped without acting/);
      clock.advance(15_000);
    }
  }

  test.each([
    ['an id CloudFormation generated', 'TestStack-Fleet-1XYZABCDEF12'],
    ['the real id', undefined],
  ])('cancelled create: a Delete with %s while the create waiter runs leaves 0 MicroVMs, and the waiter launches nothing after it', async (_, generatedId) => {
    await startWith();
    // Slow enough that the first poll launches only part of the fleet.
    const handler = newHandler(inventory, { stepBudgetMs: 1_500 });
    const props = fleetProps({ DesiredCount: '4', LaunchRate: '1' });
    const create = cfnEvent('Create', props);
    const started = await handler.onEvent(create);
    const createComplete = { ...create, ...started };
    expect((await handler.isComplete(createComplete)).IsComplete).toBe(false);
    expect(liveVms().length).toBeGreaterThan(0);

    // A sibling failed: CloudFormation cancels the create and deletes the resource.
    const deleted = await runToEnd(handler, cfnEvent('Delete', props, generatedId ?? started.PhysicalResourceId));
    expect(liveVms()).toEqual([]);
    const runCalls = emu.stats().operations.RunMicrovm;

    // The create's waiter runs on to its end: it must act on nothing.
    await stalePolls(handler, createComplete);
    expect(emu.stats().operations.RunMicrovm).toBe(runCalls);
    expect(liveVms()).toEqual([]);
    expect(inventory.items.size).toBe(0);
    expect(deleted.polls).toBeGreaterThan(0);

    // The next deploy with the same names succeeds.
    const again = await runToEnd(handler, cfnEvent('Create', props));
    expect(again.complete.PhysicalResourceId).toBe(started.PhysicalResourceId);
    expect(liveVms()).toHaveLength(4);
    expect(await unaccounted(started.PhysicalResourceId)).toEqual([]);
  });

  test('superseded update: the stale 2.0 poller stops without acting after the rollback to 1.0 converged', async () => {
    await startWith();
    const v2 = await newVersion();
    const handler = newHandler(inventory, { stepBudgetMs: 1_500 });
    const v1Props = fleetProps({ DesiredCount: '3' });
    const created = await runToEnd(handler, cfnEvent('Create', v1Props));
    const fleetId = created.complete.PhysicalResourceId;
    const originalIds = liveVms().map((v) => v.microvmId).sort();

    // Update to 2.0: one rolling step, then CloudFormation cancels it (a sibling failed) ...
    const v2Props = fleetProps({ DesiredCount: '3', ImageVersion: v2 });
    const update = cfnEvent('Update', v2Props, fleetId, v1Props);
    const updateComplete = { ...update, ...(await handler.onEvent(update)) };
    expect((await handler.isComplete(updateComplete)).IsComplete).toBe(false);
    expect(liveVms().some((v) => v.imageVersion === v2)).toBe(true);

    // ... and rolls back to 1.0, which converges.
    await runToEnd(handler, cfnEvent('Update', v1Props, fleetId, v2Props));
    expect(liveVms().map((v) => v.imageVersion)).toEqual(['1.0', '1.0', '1.0']);

    // The 2.0 waiter keeps polling: what is live stays what the stack last asked for.
    await stalePolls(handler, updateComplete);
    expect(liveVms().map((v) => v.imageVersion)).toEqual(['1.0', '1.0', '1.0']);
    expect(liveVms().map((v) => v.microvmId).sort()).toEqual(originalIds);
    expect(await unaccounted(fleetId)).toEqual([]);
  });

  test('quota-bound rollback: with the quota full, the rollback replaces terminate-first instead of failing', async () => {
    await startWith({ memoryQuotaMiB: 5 * 2048 }); // the fleet's 4 instances plus one
    const v2 = await newVersion();
    const driver = driverFor(newHandler());
    const created = await driver.create(fleetProps({ DesiredCount: '4' }));
    expect(created.status).toBe('SUCCESS');

    // The update replaces two instances, then RunMicrovm refuses the third (the update fails).
    let launches = 0;
    runClient.middlewareStack.add((next) => async (args) => {
      if (++launches === 3) emu.faults.operation({ operation: 'RunMicrovm', mode: 'error', errorType: 'ValidationException', status: 400, message: 'injected refusal' });
      return next(args);
    }, { step: 'initialize' });
    const failed = await driver.update(fleetProps({ DesiredCount: '4', ImageVersion: v2 }));
    expect(failed.status).toBe('FAILED');
    expect(liveVms().filter((v) => v.imageVersion === v2)).toHaveLength(2);

    // Someone else takes the spare memory: launching first is now refused by the quota.
    const outsider = await client.send(new RunMicrovmCommand({ imageIdentifier: imageArn, imageVersion: '1.0' }));
    clock.advance(2_000);

    const rolledBack = await driver.rollback();
    expect(rolledBack.reason).toBeUndefined();
    expect(rolledBack.status).toBe('SUCCESS');
    const fleetVms = liveVms().filter((v) => v.microvmId !== outsider.microvmId);
    expect(fleetVms.map((v) => v.imageVersion)).toEqual(['1.0', '1.0', '1.0', '1.0']);
    expect(liveVms().map((v) => v.microvmId)).toContain(outsider.microvmId);
    expect(await unaccounted(created.physicalResourceId)).toEqual([outsider.microvmId]);
  });

  test('warm pool on or off applies to the instances already running', async () => {
    await startWith();
    const driver = driverFor(newHandler());
    const created = await driver.create(fleetProps({ DesiredCount: '3', SuspendAfterLaunch: 'true' }));
    const ids = created.data.InstanceIds.split(',').sort();
    expect(liveVms().map((v) => v.state)).toEqual(['SUSPENDED', 'SUSPENDED', 'SUSPENDED']);

    const off = await driver.update(fleetProps({ DesiredCount: '3' }));
    expect(off.status).toBe('SUCCESS');
    expect(liveVms().map((v) => v.state)).toEqual(['RUNNING', 'RUNNING', 'RUNNING']);
    expect(off.data.InstanceIds.split(',').sort()).toEqual(ids); // the same instances, not replacements

    const on = await driver.update(fleetProps({ DesiredCount: '3', SuspendAfterLaunch: 'true' }));
    expect(on.status).toBe('SUCCESS');
    expect(liveVms().map((v) => v.state)).toEqual(['SUSPENDED', 'SUSPENDED', 'SUSPENDED']);
    expect(on.data.InstanceIds.split(',').sort()).toEqual(ids);
    expect(emu.stats().operations.RunMicrovm).toBe(3);
  });

  test('the payload secret is read once per deploy, not once per Lambda container: a rotated secret reaches the next deploy', async () => {
    await startWith();
    const sm = mockClient(SecretsManagerClient);
    try {
      const secretArn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:payload-AbCdEf';
      sm.on(GetSecretValueCommand, { SecretId: secretArn }).resolves({ SecretString: 'payload-1' });
      const payloads: Array<string | undefined> = [];
      runClient.middlewareStack.add((next) => async (args) => {
        payloads.push((args.input as { runHookPayload?: string }).runHookPayload);
        return next(args);
      }, { step: 'initialize' });
      // One handler: one warm Lambda container serving both deploys.
      const driver = driverFor(newHandler(inventory, { secrets: new SecretsManagerClient({ region: 'us-east-1' }) }));
      expect((await driver.create(fleetProps({ DesiredCount: '2', RunHookPayloadSecretArn: secretArn }))).status).toBe('SUCCESS');
      expect(payloads).toEqual(['payload-1', 'payload-1']);

      sm.on(GetSecretValueCommand, { SecretId: secretArn }).resolves({ SecretString: 'payload-2' });
      expect((await driver.update(fleetProps({ DesiredCount: '3', RunHookPayloadSecretArn: secretArn }))).status).toBe('SUCCESS');
      expect(payloads).toEqual(['payload-1', 'payload-1', 'payload-2']);
      expect(sm.commandCalls(GetSecretValueCommand)).toHaveLength(2); // once per deploy
    } finally {
      sm.restore();
    }
  });

  test.each([
    ['LaunchRate', 'abc'],
    ['LaunchRate', '0'],
    ['BatchSize', '0'],
    ['UpdatePolicy', 'SOMETIMES'],
    ['DesiredCount', '-1'],
  ])('values from the wire are checked, not defaulted: %s %j fails naming the property and the value', async (name, value) => {
    await startWith();
    const created = await driverFor(newHandler()).create(fleetProps({ [name]: value }));
    expect(created.status).toBe('FAILED');
    expect(created.reason).toContain(`property ${name} is ${JSON.stringify(value)}, expected`);
    expect(created.reason).toMatch(/the construct and handler versions differ/);
    expect(emu.stats().operations.RunMicrovm ?? 0).toBe(0);
  });
});
