import {
  GetMicrovmImageCommand,
  LambdaMicrovmsClient,
  TerminateMicrovmCommand,
  UpdateMicrovmImageCommand,
} from '@aws-sdk/client-lambda-microvms';
import { ManualClock, RunningEmulator } from '../emulator/src';
import { startFleetEnv } from './support/fleet-env';
import { LifecycleDriver } from './support/lifecycle-driver';
import { FleetHandler } from '../lambda/fleet/fleet-handler';
import { LEASE_SK, MemoryInventory } from '../lambda/fleet/inventory';
import { countThrottles } from '../lambda/fleet/metrics';
import { DeployState, FleetReconciler, ReconcilerStore } from '../lambda/fleet/reconciler';
import { FLEET_METRICS_NAMESPACE, ReconcilerInput } from '../src/private/reconciler-wire';
import { FleetProps } from '../src/private/wire';

process.env.MICROVMS_HANDLER_QUIET = '1';

const LIVE = new Set(['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED']);
const MINUTE = 60_000;
const STACK_ID = 'arn:aws:cloudformation:us-east-1:123456789012:stack/TestStack/1111';

let emu: RunningEmulator;
let clock: ManualClock;
let client: LambdaMicrovmsClient;
let runClient: LambdaMicrovmsClient;
let inventory: MemoryInventory;
let imageArn: string;
/** What CloudFormation is doing with the stack, as DescribeStacks would say. */
let stackState: DeployState;
let emf: string[];
let throttled: () => number;

async function start() {
  ({ emu, clock, client, runClient, imageArn } = await startFleetEnv('living-fleet'));
  inventory = new MemoryInventory();
  const counters = [countThrottles(client), countThrottles(runClient)];
  throttled = () => counters.reduce((n, c) => n + c.throttled, 0);
  stackState = 'SETTLED';
  emf = [];
}

afterEach(async () => {
  await emu?.close();
});

/** Waits on the emulator's clock, letting a little real time pass so sent requests land at their virtual time. */
const testClock = () => ({
  now: () => clock.now(),
  sleep: async (ms: number) => {
    await new Promise((r) => setTimeout(r, Math.ceil(ms / 50)));
    clock.advance(ms);
  },
});

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

function deploy(opts: { onWait?: () => Promise<void>; stepBudgetMs?: number } = {}) {
  const handler = new FleetHandler(client, () => inventory, { clock: testClock(), runClient, random: () => 0.5, stepBudgetMs: opts.stepBudgetMs });
  const driver = new LifecycleDriver<FleetProps>({
    handler,
    resourceType: 'Custom::LambdaMicroVmFleet',
    stackId: STACK_ID,
    wait: async (ms) => {
      clock.advance(ms);
      await opts.onWait?.();
    },
  });
  return { handler, driver };
}

function reconciler(store: ReconcilerStore = inventory) {
  return new FleetReconciler({
    client,
    runClient,
    storeFor: () => store,
    deployState: async () => stackState,
    clock: testClock(),
    metrics: (line) => emf.push(line),
    throttles: throttled,
    random: () => 0.5,
  });
}

/** What the fleet's schedule sends. */
function scheduleInput(fleetId: string, props: FleetProps, over: Partial<ReconcilerInput> = {}): ReconcilerInput {
  return { FleetId: fleetId, StackId: STACK_ID, Fleet: props, RotateBeforeSeconds: '600', MaxRotating: '1', ...over };
}

const allVms = () => emu.snapshot().microvms as Array<{ microvmId: string; state: string; imageVersion: string; stateReason?: string | null }>;
const liveVms = () => allVms().filter((v) => LIVE.has(v.state));
const readyVms = () => allVms().filter((v) => v.state === 'RUNNING' || v.state === 'SUSPENDED');
const runCalls = () => emu.stats().operations.RunMicrovm ?? 0;

/** Live MicroVMs no inventory record accounts for (orphans): must always be zero. */
async function orphans(fleetId: string): Promise<string[]> {
  const known = new Set((await inventory.listSlots(fleetId)).map((r) => r.microvmId));
  return liveVms().map((v) => v.microvmId).filter((id) => !known.has(id));
}

/** Snapshot of everything a run could change: the inventory (without the lease) and the emulator's MicroVMs. */
function state() {
  const items = [...inventory.items.entries()].filter(([k]) => !k.endsWith(LEASE_SK)).sort();
  return JSON.stringify({ items, vms: allVms().map((v) => [v.microvmId, v.state]) });
}

describe('fleet reconciler between deploys (emulator, lifecycle driver)', () => {
  test('an instance reaching its maximumDuration is replaced before it ends, make-before-break, one RunMicrovm per replacement', async () => {
    await start();
    const props = fleetProps({ DesiredCount: '2', MaximumDurationSeconds: '3600' });
    const { driver } = deploy();
    const created = await driver.create(props);
    expect(created.status).toBe('SUCCESS');
    const fleetId = created.physicalResourceId!;
    const originals = created.data.InstanceIds.split(',');
    const r = reconciler();
    const input = scheduleInput(fleetId, props);
    let minReady = Infinity;
    // Two simulated hours, one run a minute (the schedule's default rate).
    for (let minute = 0; minute < 120; minute++) {
      clock.advance(MINUTE);
      const report = await r.reconcile(input);
      expect(report.outcome).toBe('reconciled');
      minReady = Math.min(minReady, readyVms().length);
      expect(await orphans(fleetId)).toEqual([]);
    }
    // Never fewer than desired ready: each replacement was RUNNING before its old instance went.
    expect(minReady).toBeGreaterThanOrEqual(2);
    // No instance was ended by the service's cap: the reconciler rotated each one first.
    expect(allVms().filter((v) => /maximum duration/.test(v.stateReason ?? ''))).toEqual([]);
    for (const id of originals) expect(allVms().find((v) => v.microvmId === id)!.state).toBe('TERMINATED');
    // 2 at create + 2 rotations in the first hour + 2 in the second.
    expect(runCalls()).toBe(6);
    expect(liveVms()).toHaveLength(2);
    const rotations = emf.map((l) => JSON.parse(l)).reduce((n, d) => n + d.ReplacedRotation, 0);
    expect(rotations).toBe(4);
    // The next deploy adopts what the reconciler launched: a scale change keeps them, a delete ends them all.
    const scaled = await driver.update({ ...props, DesiredCount: '3' });
    expect(scaled.status).toBe('SUCCESS');
    expect(runCalls()).toBe(7);
    expect((await driver.delete()).status).toBe('SUCCESS');
    expect(liveVms()).toEqual([]);
  });

  test('an instance terminated out of band is replaced once, with no duplicate launch', async () => {
    await start();
    const props = fleetProps({ DesiredCount: '3' });
    const created = await deploy().driver.create(props);
    const fleetId = created.physicalResourceId!;
    const victim = created.data.InstanceIds.split(',')[1];
    await client.send(new TerminateMicrovmCommand({ microvmIdentifier: victim }));
    const r = reconciler();
    const before = runCalls();
    for (let minute = 0; minute < 5; minute++) {
      clock.advance(MINUTE);
      await r.reconcile(scheduleInput(fleetId, props));
    }
    expect(runCalls() - before).toBe(1);
    expect(readyVms()).toHaveLength(3);
    expect(await orphans(fleetId)).toEqual([]);
    const docs = emf.map((l) => JSON.parse(l));
    expect(docs.reduce((n, d) => n + d.ReplacedTerminated, 0)).toBe(1);
    expect(docs.at(-1)).toMatchObject({ FleetId: fleetId, DesiredCount: 3, ReadyCount: 3 });
    expect(docs[0]._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: FLEET_METRICS_NAMESPACE, Dimensions: [['FleetId']] });
  });

  test('a run launches and terminates on the stack\'s shared schedules, the ones its deploys use (issue 13)', async () => {
    await start();
    const props = fleetProps({ DesiredCount: '3' });
    const created = await deploy().driver.create(props);
    const fleetId = created.physicalResourceId!;
    await client.send(new TerminateMicrovmCommand({ microvmIdentifier: created.data.InstanceIds.split(',')[0] }));
    clock.advance(MINUTE);
    // Another fleet of the stack holds the RunMicrovm schedule for the next 10 s.
    const free = await inventory.reserveCall('RunMicrovm', 10_000, clock.now(), 0) + 10_000;
    const before = runCalls();
    const report = await reconciler().reconcile(scheduleInput(fleetId, props));
    expect(report).toMatchObject({ outcome: 'reconciled', replacedTerminated: 1 });
    expect(runCalls() - before).toBe(1);
    // The replacement waited for its slot, and the schedule moved past it.
    expect(clock.now()).toBeGreaterThanOrEqual(free);
    expect(inventory.paces.get('RunMicrovm')).toBeGreaterThan(free);
    // A scale-in between deploys is not the reconciler's (it only replaces and rotates), so the
    // terminate schedule is shown by a rotation: maximumDuration 1 h, rotate 10 min before.
    const rotating = fleetProps({ DesiredCount: '1', MaximumDurationSeconds: '3600' });
    const second = await deploy().driver.create(rotating);
    const r = reconciler();
    const terminateBefore = inventory.paces.get('TerminateMicrovm') ?? 0;
    for (let minute = 0; minute < 55; minute++) {
      clock.advance(MINUTE);
      await r.reconcile(scheduleInput(second.physicalResourceId!, rotating));
    }
    expect(inventory.paces.get('TerminateMicrovm') ?? 0).toBeGreaterThan(terminateBefore);
  });

  test('a run during a deploy changes nothing; a run that raced the deploy\'s first write changes nothing', async () => {
    await start();
    const v2 = await (async () => {
      const u = await client.send(new UpdateMicrovmImageCommand({
        imageIdentifier: imageArn,
        baseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
        buildRoleArn: 'arn:aws:iam::123456789012:role/build',
        codeArtifact: { uri: 's3://bucket/code-v2.zip' },
      }));
      clock.advance(10_000);
      return u.imageVersion!;
    })();
    const oldProps = fleetProps({ DesiredCount: '3' });
    let runs = 0;
    const { driver } = deploy({
      // One round per poll, so that CloudFormation's waiter waits between polls (and runs happen there).
      stepBudgetMs: 1,
      onWait: async () => {
        // CloudFormation deploys the stack: every run between polls must change nothing.
        const before = state();
        const fleetId = String([...inventory.items.values()][0]?.pk);
        const report = await reconciler().reconcile(scheduleInput(fleetId, oldProps));
        expect(report).toMatchObject({ outcome: 'skipped', reason: 'stack deploying' });
        expect(state()).toBe(before);
        runs++;
      },
    });
    stackState = 'DEPLOYING';
    const created = await driver.create(oldProps);
    stackState = 'SETTLED';
    const fleetId = created.physicalResourceId!;
    // An instance goes out of band, so a run has something to do.
    await client.send(new TerminateMicrovmCommand({ microvmIdentifier: created.data.InstanceIds.split(',')[0] }));
    clock.advance(2 * MINUTE);

    stackState = 'DEPLOYING';
    const newProps = fleetProps({ DesiredCount: '3', ImageVersion: v2 });
    const updated = await driver.update(newProps);
    expect(updated.status).toBe('SUCCESS');
    stackState = 'SETTLED';
    expect(runs).toBeGreaterThan(0);

    // The race: the run read the stack as settled and the meta, then the deploy's onEvent opened a
    // generation before the run's first write. Its conditional write fails: nothing changes.
    const { handler } = deploy();
    let opened = false;
    const racing: ReconcilerStore = Object.assign(Object.create(inventory), {
      getMeta: async (id: string) => {
        const meta = await inventory.getMeta(id);
        if (!opened) {
          opened = true;
          await handler.onEvent({
            RequestType: 'Update',
            RequestId: 'racing-deploy',
            StackId: STACK_ID,
            LogicalResourceId: 'Resource',
            PhysicalResourceId: fleetId,
            ResourceType: 'Custom::LambdaMicroVmFleet',
            ServiceToken: 'x',
            ResponseURL: 'x',
            ResourceProperties: { ...newProps, DesiredCount: '5' },
            OldResourceProperties: newProps,
          } as any);
        }
        return meta;
      },
    });
    await client.send(new TerminateMicrovmCommand({ microvmIdentifier: updated.data.InstanceIds.split(',')[0] }));
    clock.advance(2 * MINUTE);
    const runsBefore = runCalls();
    const before = state();
    const report = await reconciler(racing).reconcile(scheduleInput(fleetId, newProps));
    expect(report).toMatchObject({ outcome: 'skipped', reason: 'a deploy took the fleet' });
    expect(runCalls()).toBe(runsBefore);
    // Only the deploy's own meta write differs.
    const after = JSON.parse(state());
    const beforeParsed = JSON.parse(before);
    expect(after.vms).toEqual(beforeParsed.vms);
    expect(after.items.filter(([k]: [string]) => !k.endsWith('meta'))).toEqual(beforeParsed.items.filter(([k]: [string]) => !k.endsWith('meta')));
  });

  test('after a rollback a run holds the old configuration; a stale input of the rolled-back one acts on nothing', async () => {
    await start();
    const v2 = (await client.send(new UpdateMicrovmImageCommand({
      imageIdentifier: imageArn,
      baseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
      buildRoleArn: 'arn:aws:iam::123456789012:role/build',
      codeArtifact: { uri: 's3://bucket/code-v2.zip' },
    }))).imageVersion!;
    clock.advance(10_000);
    const oldProps = fleetProps({ DesiredCount: '3' });
    const { driver } = deploy();
    const created = await driver.create(oldProps);
    const fleetId = created.physicalResourceId!;
    let calls = 0;
    runClient.middlewareStack.add((next) => async (args) => {
      if (++calls === 2) emu.faults.operation({ operation: 'RunMicrovm', mode: 'error', errorType: 'ValidationException', status: 400, message: 'injected refusal' });
      return next(args);
    }, { step: 'initialize', name: 'refuseSecondLaunch' });
    const newProps = fleetProps({ DesiredCount: '3', ImageVersion: v2, UpdatePolicy: 'REPLACE_ALL' });
    expect((await driver.update(newProps)).status).toBe('FAILED');
    runClient.middlewareStack.remove('refuseSecondLaunch');
    expect((await driver.rollback()).status).toBe('SUCCESS');

    // A schedule invocation still carrying the new configuration: the inventory disagrees, nothing happens.
    const before = state();
    const stale = await reconciler().reconcile(scheduleInput(fleetId, newProps));
    expect(stale.outcome).toBe('skipped');
    expect(stale.reason).toMatch(/another configuration/);
    expect(state()).toBe(before);

    // The rolled-back schedule: the fleet is whole, the run changes nothing.
    clock.advance(MINUTE);
    const runsBefore = runCalls();
    const report = await reconciler().reconcile(scheduleInput(fleetId, oldProps));
    expect(report).toMatchObject({ outcome: 'reconciled', launched: 0, ready: 3 });
    expect(runCalls()).toBe(runsBefore);
    expect(liveVms().map((v) => v.imageVersion)).toEqual(['1.0', '1.0', '1.0']);
    expect(await orphans(fleetId)).toEqual([]);
  });

  test('a deleted fleet: a run (a late schedule invocation) launches nothing and publishes no metrics', async () => {
    await start();
    const props = fleetProps({ DesiredCount: '2' });
    const { driver } = deploy();
    const created = await driver.create(props);
    expect((await driver.delete()).status).toBe('SUCCESS');
    const runsBefore = runCalls();
    clock.advance(MINUTE);
    const report = await reconciler().reconcile(scheduleInput(created.physicalResourceId!, props));
    expect(report).toMatchObject({ outcome: 'skipped', reason: 'no inventory: the fleet was deleted or never created' });
    expect(runCalls()).toBe(runsBefore);
    expect(liveVms()).toEqual([]);
    expect(emf).toEqual([]);
    expect(inventory.items.size).toBe(0);
  });

  test('idle policy: instances ended after SUSPENDED are let go by default, replaced when asked', async () => {
    for (const replace of [false, true]) {
      await start();
      const props = fleetProps({ DesiredCount: '2', IdlePolicy: { MaxIdleSeconds: '300', SuspendedSeconds: '600', AutoResume: 'true' } });
      const created = await deploy().driver.create(props);
      const fleetId = created.physicalResourceId!;
      const r = reconciler();
      const input = scheduleInput(fleetId, props, { ReplaceIdleTerminated: replace ? 'true' : undefined });
      const before = runCalls();
      // No traffic: suspended after 5 minutes, terminated 10 minutes later.
      for (let minute = 0; minute < 20; minute++) {
        clock.advance(MINUTE);
        await r.reconcile(input);
      }
      const docs = emf.map((l) => JSON.parse(l));
      if (replace) {
        expect(runCalls() - before).toBe(2);
        expect(docs.reduce((n, d) => n + d.ReplacedTerminated, 0)).toBe(2);
      } else {
        expect(runCalls() - before).toBe(0);
        expect(docs.reduce((n, d) => n + d.ReleasedIdle, 0)).toBe(2);
        expect(docs.at(-1)).toMatchObject({ DesiredCount: 2, ReadyCount: 0 });
        expect((await inventory.listSlots(fleetId)).map((s) => s.state)).toEqual(['RELEASED', 'RELEASED']);
      }
      expect(await orphans(fleetId)).toEqual([]);
      await emu.close();
    }
  });

  test('two runs at once: the lease lets one act, and no slot is launched twice', async () => {
    await start();
    const props = fleetProps({ DesiredCount: '4' });
    const created = await deploy().driver.create(props);
    const fleetId = created.physicalResourceId!;
    for (const id of created.data.InstanceIds.split(',').slice(0, 2)) await client.send(new TerminateMicrovmCommand({ microvmIdentifier: id }));
    clock.advance(2 * MINUTE);
    const before = runCalls();
    const reports = await Promise.all([reconciler().reconcile(scheduleInput(fleetId, props)), reconciler().reconcile(scheduleInput(fleetId, props))]);
    expect(reports.map((x) => x.outcome).sort()).toEqual(['reconciled', 'skipped']);
    expect(runCalls() - before).toBe(2);
    expect(await orphans(fleetId)).toEqual([]);
    clock.advance(MINUTE);
    await reconciler().reconcile(scheduleInput(fleetId, props));
    expect(readyVms()).toHaveLength(4);
  });
});

describe('fleet metrics (EMF)', () => {
  test('throttled answers are counted per attempt, retried ones included', async () => {
    await start();
    emu.faults.operation({ operation: 'GetMicrovmImage', mode: 'throttle', count: 2 });
    await client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    expect(throttled()).toBe(2);
  });
});
