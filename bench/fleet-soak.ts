/**
 * Fleet soak benchmark (issue 14): 24 simulated hours of one MicroVmFleet of 20 on the emulator's
 * manual clock, with the service's 8-hour cap, 2% of instances per hour terminated out of band,
 * throttling bursts on RunMicrovm, and two deploys during the soak (a scale change 20 → 24 at hour 6,
 * a version change at hour 14). The same scenario (same seed, same terminations) runs twice, side
 * by side: today's deploy-time-only fleet (`selfHealing: false`) and the self-healing fleet (the
 * reconciler run by its schedule once a simulated minute, skipping while CloudFormation deploys).
 *
 * Run: npx tsx bench/fleet-soak.ts [--hours 24] [--seed 14]
 *
 * Figures:
 * - ready-minutes: sampled once a simulated minute, the fraction of minutes in which at least
 *   `desiredCount` instances were RUNNING or SUSPENDED (goal >= 0.999);
 * - RunMicrovm per replacement: RunMicrovm requests (all attempts) made by whatever replaced
 *   instances between deploys, divided by the instances it launched (goal <= 1.05; the deploy-time
 *   fleet replaces only at deploys);
 * - orphans: live MicroVMs of the fleet's image that its inventory does not account for, at any
 *   sample and after the final delete (goal 0);
 * - duplicate launches: MicroVMs the emulator launched that no inventory record ever named, plus
 *   MicroVMs named by two records (goal 0).
 */
// eslint-disable-next-line import/no-extraneous-dependencies -- benchmark only, never shipped
import { CreateMicrovmImageCommand, LambdaMicrovmsClient, TerminateMicrovmCommand, UpdateMicrovmImageCommand } from '@aws-sdk/client-lambda-microvms';
import { argNumber, printTable } from './cli';
import { ManualClock, startEmulator } from '../emulator/src/index';
import { FleetHandler } from '../lambda/fleet/fleet-handler';
import { MemoryInventory, SlotRecord } from '../lambda/fleet/inventory';
import { countThrottles } from '../lambda/fleet/metrics';
import { DeployState, FleetReconciler } from '../lambda/fleet/reconciler';
import type { Clock } from '../lambda/shared/clock';
import type { ReconcilerInput } from '../src/private/reconciler-wire';
import type { FleetProps } from '../src/private/wire';
import { LifecycleDriver } from '../test/support/lifecycle-driver';

process.env.MICROVMS_HANDLER_QUIET = '1';

const CREDS = { accessKeyId: 'test', secretAccessKey: 'test' };
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const LIVE = new Set(['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED', 'TERMINATING']);
const READY = new Set(['RUNNING', 'SUSPENDED']);
const STACK_ID = 'arn:aws:cloudformation:us-east-1:123456789012:stack/SoakStack/1';
/** Out-of-band terminations: this fraction of the live instances per hour. */
const TERMINATIONS_PER_HOUR = 0.02;
/**
 * RunMicrovm throttling bursts: [hour, seconds]. During a burst the emulator answers every
 * RunMicrovm with 429 ThrottlingException (as when another tenant of the account drains its
 * RunMicrovm rate). Placed during the rotations of the first and third cap (7 h 50 min, 21 h 50 min),
 * just before the version deploy, and at a quiet time.
 */
const THROTTLE_BURSTS: ReadonlyArray<[number, number]> = [[2.5, 60], [7.83, 60], [13.99, 60], [21.83, 60]];

/** Park–Miller minimal standard generator: the same draws for both fleets. */
function rng(seed: number): () => number {
  let x = (Math.floor(seed) % 2147483646) + 1;
  return () => {
    x = (x * 48271) % 2147483647;
    return (x - 1) / 2147483646;
  };
}

interface Result {
  readonly fleet: string;
  readonly minutes: number;
  readonly readyMinutes: number;
  readonly worstShortfall: number;
  readonly replacerCalls: number;
  readonly replacerLaunches: number;
  readonly orphans: number;
  readonly duplicates: number;
  readonly outOfBand: number;
  readonly expiredByCap: number;
  readonly throttled: number;
  readonly deploys: string[];
}

async function soak(selfHealing: boolean, hours: number, seed: number): Promise<Result> {
  const clock = new ManualClock();
  const emu = await startEmulator({ clock, faults: true });
  const client = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: CREDS, maxAttempts: 3 });
  const runClient = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: CREDS, maxAttempts: 1 });
  const counters = [countThrottles(client), countThrottles(runClient)];
  const throttled = () => counters.reduce((n, c) => n + c.throttled, 0);
  // Waiting advances the emulator's clock (letting a little real time pass so sent requests land at their virtual time).
  const bursts = THROTTLE_BURSTS.map(([hour, seconds]) => ({ from: hour * HOUR, to: hour * HOUR + seconds * 1000 }));
  let burstOn = false;
  let start = 0;
  /** Starts or ends a throttling burst when the simulated time enters or leaves its window. */
  const weather = () => {
    const t = clock.now() - start;
    const on = start > 0 && bursts.some((b) => t >= b.from && t < b.to);
    if (on && !burstOn) emu.faults.operation({ operation: 'RunMicrovm', mode: 'throttle', fraction: 1 });
    if (!on && burstOn) emu.faults.clear();
    burstOn = on;
  };
  const simClock: Clock = {
    now: () => clock.now(),
    sleep: async (ms) => {
      await new Promise((r) => setTimeout(r, Math.min(20, Math.ceil(ms / 100))));
      clock.advance(ms);
      weather();
    },
  };
  const inventory = new MemoryInventory();
  // Every MicroVM id any record ever named, and by how many slots.
  const named = new Map<string, Set<string>>();
  const putSlots = inventory.putSlots.bind(inventory);
  inventory.putSlots = async (records: readonly SlotRecord[]) => {
    for (const r of records) if (r.microvmId) (named.get(r.microvmId) ?? named.set(r.microvmId, new Set()).get(r.microvmId)!).add(r.sk);
    return putSlots(records);
  };

  try {
    const img = await client.send(new CreateMicrovmImageCommand({
      name: 'soak',
      baseImageArn: `arn:aws:lambda:${emu.region}:aws:microvm-image:al2023-1`,
      buildRoleArn: 'arn:aws:iam::123456789012:role/build',
      codeArtifact: { uri: 's3://bucket/code.zip' },
    }));
    clock.advance(10_000);
    const imageArn = img.imageArn!;
    let stackState: DeployState = 'SETTLED';
    const handler = new FleetHandler(client, () => inventory, { clock: simClock, runClient, random: () => 0.5 });
    const driver = new LifecycleDriver<FleetProps>({
      handler, resourceType: 'Custom::LambdaMicroVmFleet', stackId: STACK_ID, wait: async (ms) => simClock.sleep(ms),
    });
    const reconciler = new FleetReconciler({
      client,
      runClient,
      clock: simClock,
      random: () => 0.5,
      storeFor: () => inventory,
      deployState: async () => stackState,
      metrics: () => undefined,
      throttles: throttled,
    });
    let props: FleetProps = {
      ImageArn: imageArn,
      ImageVersion: '1.0',
      DesiredCount: '20',
      MaximumDurationSeconds: '28800',
      UpdatePolicy: 'ROLLING',
      LaunchRate: '5',
      TableName: 'inventory',
      TimeoutSeconds: '3300',
    };
    const deploys: string[] = [];
    const deploy = async (next: FleetProps, what: string) => {
      stackState = 'DEPLOYING';
      const r = driver.physicalResourceId ? await driver.update(next) : await driver.create(next);
      stackState = 'SETTLED';
      if (r.status !== 'SUCCESS') throw new Error(`${what} failed: ${r.reason}`);
      props = next;
      deploys.push(what);
    };
    await deploy(props, 'create 20');
    const fleetId = driver.physicalResourceId!;
    start = clock.now();
    const random = rng(seed);

    let readyMinutes = 0;
    let worstShortfall = 0;
    let orphans = 0;
    let outOfBand = 0;
    let replacerCalls = 0;
    let replacerLaunches = 0;
    const fleetVms = () => (emu.snapshot().microvms as Array<{ microvmId: string; state: string; imageArn: string; stateReason?: string | null }>)
      .filter((v) => v.imageArn === imageArn);

    for (let minute = 1; minute <= hours * 60; minute++) {
      const target = start + minute * MINUTE;
      // Whole minutes pass in 5-second steps, so that bursts start and end on time.
      while (clock.now() < target) {
        clock.advance(Math.min(5_000, target - clock.now()));
        weather();
      }
      if (minute === 6 * 60) await deploy({ ...props, DesiredCount: '24' }, 'scale 20 → 24 (hour 6)');
      if (minute === 14 * 60) {
        const u = await client.send(new UpdateMicrovmImageCommand({
          imageIdentifier: imageArn,
          baseImageArn: `arn:aws:lambda:${emu.region}:aws:microvm-image:al2023-1`,
          buildRoleArn: 'arn:aws:iam::123456789012:role/build',
          codeArtifact: { uri: 's3://bucket/code-v2.zip' },
        }));
        clock.advance(10_000);
        await deploy({ ...props, ImageVersion: u.imageVersion! }, `version 1.0 → ${u.imageVersion} (hour 14)`);
      }
      // Out of band: each live instance ends with probability 2%/h (the same draws for both fleets).
      for (const vm of fleetVms().filter((v) => READY.has(v.state)).sort((a, b) => a.microvmId.localeCompare(b.microvmId))) {
        if (random() < TERMINATIONS_PER_HOUR / 60) {
          await client.send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
          outOfBand++;
        }
      }
      if (selfHealing) {
        const input: ReconcilerInput = { FleetId: fleetId, StackId: STACK_ID, Fleet: props, RotateBeforeSeconds: '600' };
        const before = emu.stats().operations.RunMicrovm ?? 0;
        const report = await reconciler.reconcile(input);
        replacerCalls += (emu.stats().operations.RunMicrovm ?? 0) - before;
        replacerLaunches += report.launched ?? 0;
      }
      // Sample at the end of the minute.
      const end = start + minute * MINUTE + MINUTE - 1;
      while (clock.now() < end) {
        clock.advance(Math.min(5_000, end - clock.now()));
        weather();
      }
      const vms = fleetVms();
      const ready = vms.filter((v) => READY.has(v.state)).length;
      const desired = Number(props.DesiredCount);
      if (ready >= desired) readyMinutes++;
      worstShortfall = Math.max(worstShortfall, desired - ready);
      const known = new Set((await inventory.listSlots(fleetId)).map((r) => r.microvmId));
      orphans = Math.max(orphans, vms.filter((v) => LIVE.has(v.state) && !known.has(v.microvmId)).length);
    }

    const all = fleetVms();
    const expiredByCap = all.filter((v) => /maximum duration/.test(v.stateReason ?? '')).length;
    const duplicates = all.filter((v) => !named.has(v.microvmId)).length + [...named.values()].filter((s) => s.size > 1).length;
    stackState = 'DEPLOYING';
    const deleted = await driver.delete();
    if (deleted.status !== 'SUCCESS') throw new Error(`delete failed: ${deleted.reason}`);
    orphans = Math.max(orphans, fleetVms().filter((v) => LIVE.has(v.state)).length);
    return {
      fleet: selfHealing ? 'self-healing (reconciler)' : 'deploy-time only (today)',
      minutes: hours * 60,
      readyMinutes,
      worstShortfall,
      replacerCalls,
      replacerLaunches,
      orphans,
      duplicates,
      outOfBand,
      expiredByCap,
      throttled: throttled(),
      deploys,
    };
  } finally {
    await emu.close();
  }
}

function table(rows: Result[]): void {
  const head = ['fleet', 'ready-minutes', 'worst shortfall', 'RunMicrovm/replacement', 'orphans', 'dupes', 'out-of-band', 'ended by 8 h cap', 'throttled'];
  const cells = rows.map((r) => [
    r.fleet,
    (r.readyMinutes / r.minutes).toFixed(4),
    String(r.worstShortfall),
    r.replacerLaunches ? `${(r.replacerCalls / r.replacerLaunches).toFixed(2)} (${r.replacerCalls}/${r.replacerLaunches})` : 'n/a (none)',
    String(r.orphans),
    String(r.duplicates),
    String(r.outOfBand),
    String(r.expiredByCap),
    String(r.throttled),
  ]);
  printTable(head, cells);
}

async function main(): Promise<void> {
  const hours = argNumber('hours', 24);
  const seed = argNumber('seed', 14);
  const started = Date.now();
  const rows = [await soak(false, hours, seed), await soak(true, hours, seed)];
  console.log(`Soak: ${hours} simulated hours, fleet of 20 (24 from hour 6), maximumDuration 8 h, ${TERMINATIONS_PER_HOUR * 100}% of instances per hour ` +
    `terminated out of band (seed ${seed}), RunMicrovm throttled for ${THROTTLE_BURSTS.map(([h, s]) => `${s} s at hour ${h}`).join(', ')}, ` +
    `deploys: ${rows[1].deploys.join('; ')}. Emulator manual clock; ${((Date.now() - started) / 1000).toFixed(0)} s of real time.`);
  console.log('');
  table(rows);
  const healing = rows[1];
  const ok = healing.readyMinutes / healing.minutes >= 0.999 && healing.orphans === 0 && healing.duplicates === 0
    && (healing.replacerLaunches === 0 || healing.replacerCalls / healing.replacerLaunches <= 1.05);
  console.log('\nready-minutes: simulated minutes with at least desiredCount RUNNING or SUSPENDED, over all minutes (sampled each minute).');
  console.log('RunMicrovm/replacement: RunMicrovm requests (all attempts) of the reconciler runs over the MicroVMs they launched.');
  console.log(`\nGoal (self-healing: ready-minutes >= 0.999, <= 1.05 RunMicrovm per replacement, 0 orphans, 0 duplicate launches): ${ok ? 'met' : 'NOT met'}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
