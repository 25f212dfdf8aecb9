/**
 * Fleet launch benchmark: the MicroVmFleet handler's Launcher (paced RunMicrovm with recorded
 * clientTokens, readiness by ListMicrovms pages) next to a naive launcher (every RunMicrovm at once
 * with the SDK's plain retries, readiness by GetMicrovm per instance), for fleets of 100 and 1000,
 * against the emulator with its default RunMicrovm limit (5/s, burst 5) and default latency.
 *
 * Run: npx tsx bench/fleet-launch.ts [--speed100 1] [--speed1000 4]
 *
 * The emulator runs on a RealClock at `speed` × real time (its token buckets and state delays
 * follow that clock), and every time below is in emulator seconds, so the rate limit stays 5/s
 * in the numbers. The memory quota is raised to fit 1000 × 2 GiB (the default 400 GB holds 200).
 */
// eslint-disable-next-line import/no-extraneous-dependencies -- benchmark only, never shipped
import { CreateMicrovmImageCommand, GetMicrovmCommand, GetMicrovmImageCommand, LambdaMicrovmsClient, RunMicrovmCommand } from '@aws-sdk/client-lambda-microvms';
import { argNumber, printTable } from './cli';
import { RealClock, startEmulator } from '../emulator/src/index';
import { Launcher } from '../lambda/fleet/launcher';
import type { Clock } from '../lambda/shared/clock';
import { listMicrovms } from '../lambda/shared/microvm-states';

const RATE_LIMIT = 5;
const CREDS = { accessKeyId: 'test', secretAccessKey: 'test' };

interface Row {
  readonly launcher: string;
  readonly size: number;
  readonly speed: number;
  readonly launched: number;
  readonly failed: number;
  readonly duplicates: number;
  readonly runCalls: number;
  readonly readinessCalls: number;
  readonly launchSeconds: number;
  readonly allRunningSeconds?: number;
}

interface BenchContext {
  readonly client: LambdaMicrovmsClient;
  readonly url: string;
  readonly clock: Clock;
  readonly imageArn: string;
  stats(): Record<string, number>;
  vmCount(): number;
}

async function withEmulator<T>(speed: number, fn: (ctx: BenchContext) => Promise<T>): Promise<T> {
  const emuClock = new RealClock(speed);
  const emu = await startEmulator({ clock: emuClock, memoryQuotaMiB: 1_000_000_000 });
  const clock: Clock = { now: () => emuClock.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms / speed)) };
  const client = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: CREDS });
  try {
    const img = await client.send(new CreateMicrovmImageCommand({
      name: 'bench',
      baseImageArn: `arn:aws:lambda:${emu.region}:aws:microvm-image:al2023-1`,
      buildRoleArn: 'arn:aws:iam::123456789012:role/build',
      codeArtifact: { uri: 's3://bucket/code.zip' },
    }));
    while ((await client.send(new GetMicrovmImageCommand({ imageIdentifier: img.imageArn! }))).state !== 'CREATED') await clock.sleep(500);
    emu.resetStats();
    return await fn({
      client,
      url: emu.url,
      clock,
      imageArn: img.imageArn!,
      stats: () => emu.stats().operations,
      vmCount: () => emu.snapshot().microvms.length,
    });
  } finally {
    await emu.close();
  }
}

interface Launched {
  readonly launcher: string;
  readonly size: number;
  readonly speed: number;
  /** The MicroVMs the launcher got ids for. */
  readonly ids: string[];
  readonly t0: number;
  readonly launchSeconds: number;
  /** The operation the launcher polls readiness with. */
  readonly readinessOp: string;
}

/** Polls `allRunning` once per emulator second (at most 600 times), then reads the call counts. */
async function measure(ctx: BenchContext, l: Launched, allRunning: () => Promise<boolean>): Promise<Row> {
  let allRunningSeconds: number | undefined;
  for (let i = 0; i < 600 && l.ids.length; i++) {
    if (await allRunning()) {
      allRunningSeconds = (ctx.clock.now() - l.t0) / 1000;
      break;
    }
    await ctx.clock.sleep(1000);
  }
  const s = ctx.stats();
  return {
    launcher: l.launcher,
    size: l.size,
    speed: l.speed,
    launched: l.ids.length,
    failed: l.size - l.ids.length,
    duplicates: ctx.vmCount() - l.ids.length,
    runCalls: s.RunMicrovm ?? 0,
    readinessCalls: s[l.readinessOp] ?? 0,
    launchSeconds: l.launchSeconds,
    allRunningSeconds,
  };
}

/** The handler's Launcher, then ListMicrovms pages once per emulator second until every instance is RUNNING. */
async function fleetLauncher(size: number, speed: number): Promise<Row> {
  return withEmulator(speed, async (ctx) => {
    const { client, url, clock, imageArn } = ctx;
    const runClient = new LambdaMicrovmsClient({ endpoint: url, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 });
    const launcher = new Launcher(runClient, { rate: RATE_LIMIT, clock });
    const t0 = clock.now();
    const results = await launcher.launch(Array.from({ length: size }, (_, i) => ({ clientToken: `bench-fleet-slot-${i}`, input: { imageIdentifier: imageArn, imageVersion: '1.0' } })));
    const launchSeconds = (clock.now() - t0) / 1000;
    const ids = [...new Set(results.filter((r) => r.microvmId).map((r) => r.microvmId!))];
    const allRunning = async () => {
      const states = new Map((await listMicrovms(client, { imageArn, imageVersion: '1.0' })).map((vm) => [vm.microvmId, vm.state]));
      return ids.every((id) => states.get(id) === 'RUNNING');
    };
    return measure(ctx, { launcher: 'fleet (paced, tokens)', size, speed, ids, t0, launchSeconds, readinessOp: 'ListMicrovms' }, allRunning);
  });
}

/** Every RunMicrovm at once with the SDK's default retries, then GetMicrovm per instance per emulator second. */
async function naiveLauncher(size: number, speed: number): Promise<Row> {
  return withEmulator(speed, async (ctx) => {
    const { url, clock, imageArn } = ctx;
    const naive = new LambdaMicrovmsClient({ endpoint: url, region: 'us-east-1', credentials: CREDS }); // standard retry, 3 attempts
    const t0 = clock.now();
    const settled = await Promise.allSettled(Array.from({ length: size }, () => naive.send(new RunMicrovmCommand({ imageIdentifier: imageArn, imageVersion: '1.0' }))));
    const launchSeconds = (clock.now() - t0) / 1000;
    const ids = settled.flatMap((r) => (r.status === 'fulfilled' && r.value.microvmId ? [r.value.microvmId] : []));
    const allRunning = async () => {
      const states = await Promise.allSettled(ids.map((id) => naive.send(new GetMicrovmCommand({ microvmIdentifier: id }))));
      return states.every((r) => r.status === 'fulfilled' && r.value.state === 'RUNNING');
    };
    return measure(ctx, { launcher: 'naive (parallel, retries)', size, speed, ids, t0, launchSeconds, readinessOp: 'GetMicrovm' }, allRunning);
  });
}

function table(rows: Row[]): void {
  const head = ['launcher', 'fleet', 'speed', 'launched', 'failed', 'dupes', 'rate/limit', 'Run calls/inst', 'readiness calls', 'all RUNNING (s)'];
  const cells = rows.map((r) => [
    r.launcher,
    String(r.size),
    `${r.speed}x`,
    String(r.launched),
    String(r.failed),
    String(r.duplicates),
    (r.launched / Math.max(r.launchSeconds, 1e-9) / RATE_LIMIT).toFixed(2),
    (r.runCalls / r.size).toFixed(2),
    String(r.readinessCalls),
    r.allRunningSeconds === undefined ? (r.launched ? 'never' : 'n/a') : r.allRunningSeconds.toFixed(1),
  ]);
  printTable(head, cells);
}

async function main(): Promise<void> {
  const speeds: Record<number, number> = { 100: argNumber('speed100', 1), 1000: argNumber('speed1000', 4) };
  console.log(`Emulator: RunMicrovm limit ${RATE_LIMIT}/s burst 5 (default), default latency, memory quota raised for 1000 × 2 GiB.`);
  for (const [size, speed] of Object.entries(speeds)) {
    if (speed !== 1) console.log(`Fleet ${size}: emulator clock at ${speed}x real time; every time and rate below is in emulator time (pass --speed${size} 1 for real time).`);
  }
  const rows: Row[] = [];
  for (const size of [100, 1000]) {
    rows.push(await fleetLauncher(size, speeds[size]));
    rows.push(await naiveLauncher(size, speeds[size]));
  }
  console.log('');
  table(rows);
  console.log('\nrate/limit: successful launches per emulator second during the launch phase, over the 5/s limit.');
  console.log('Run calls/inst: RunMicrovm requests (all attempts) per desired instance. Readiness: ListMicrovms pages (fleet) or GetMicrovm calls (naive).');
  const ours = rows.filter((r) => r.launcher.startsWith('fleet'));
  const ok = ours.every((r) => r.launched / r.launchSeconds / RATE_LIMIT >= 0.9 && r.runCalls / r.size <= 1.2
    && r.failed === 0 && r.duplicates === 0);
  console.log(`\nGoal (>= 0.9 of the limit, <= 1.2 RunMicrovm calls per instance, zero failed or duplicate launches): ${ok ? 'met' : 'NOT met'}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
