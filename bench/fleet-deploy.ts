/**
 * Fleet deploy-path benchmark (issue 13): the MicroVmFleet handler driven through the lifecycle
 * driver with the Provider framework's 15-second waiter, against the emulator with its default rate
 * limits (RunMicrovm 5/s, TerminateMicrovm 10/s) and state delays, on the emulator's clock.
 *
 * Run: npx tsx bench/fleet-deploy.ts [--speed 5] [--baseline-speed 20] [--naive-speed 20] [--only new,baseline,naive]
 *        [--scenarios small,big,ten,two]
 *
 * Three launchers, side by side in one table:
 * - new: this tree's handler (lambda/fleet), its calls on the stack's shared schedule (the default
 *   pacing); for 10 fleets also 'new, adaptive' (adaptive backoff) and 'new, alone' (each fleet at
 *   the full rate as if alone);
 * - baseline: the handler of commit e3074c7 (before issue 13), extracted with `git archive` into
 *   node_modules/.cache (no second copy of the handler is kept in the tree);
 * - naive: every RunMicrovm (or TerminateMicrovm) at once with the SDK's standard retries, then
 *   GetMicrovm per instance at each poll.
 *
 * Scenarios: create 100; create 1000, then a rolling update of those 1000 with the default batch,
 * another with a large batch (200), and the delete of the 1000; 10 fleets × 100 created at once
 * (one account and one stack: they share the RunMicrovm rate and the inventory table); two stacks of 5 fleets × 100
 * deploying at once (one account, one inventory table and so one pace schedule per stack). Every time is
 * emulator time: the emulator runs on a RealClock at `speed` × real time, the handler's clock and
 * the waiter sleep on it. A second table says where each scenario's time went (see Breakdown).
 */
// eslint-disable-next-line import/no-extraneous-dependencies -- benchmark only, never shipped
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CreateMicrovmImageCommand, GetMicrovmCommand, GetMicrovmImageCommand, LambdaMicrovmsClient, RunMicrovmCommand, TerminateMicrovmCommand,
  UpdateMicrovmImageCommand,
} from '@aws-sdk/client-lambda-microvms';
import { argValue, printTable } from './cli';
import { DEFAULT_DELAYS, RealClock, RunningEmulator, startEmulator } from '../emulator/src/index';
import type { FleetProps } from '../src/private/wire';
import { LifecycleDriver, LifecycleResult } from '../test/support/lifecycle-driver';

const RUN_RATE = 5;
const TERMINATE_RATE = 10;
const BASELINE_COMMIT = 'e3074c7';
const CREDS = { accessKeyId: 'test', secretAccessKey: 'test' };
const BASE_IMAGE = 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1';

type Variant = 'new' | 'new, adaptive' | 'new, alone' | 'baseline' | 'naive';

/** Where a scenario's time went (emulator seconds), for the second table. */
interface Breakdown {
  /** Before the first paced call (onEvent, the first round's reads and writes). */
  readonly lead: number;
  /** One call per instance at the physical limit: (instances - 1) / rate. */
  readonly paced: number;
  /** While no isComplete ran between the first and the last paced call (the waiter's 15 s). */
  readonly gaps: number;
  /** The rest of the span from the first to the last paced call: pacing below the limit, throttle waits, rounds' own time. */
  readonly paceLoss: number;
  /** After the last paced call until the answer (boot or stop, observing, the waiter). */
  readonly tail: number;
  /** Time the event loop was blocked past 10 ms real (the process's CPU, counted at `speed`). */
  readonly loopLag: number;
}

interface Row {
  readonly variant: Variant;
  readonly scenario: string;
  readonly instances: number;
  readonly status: string;
  readonly seconds: number;
  readonly idealSeconds: number;
  readonly runPerInstance: number;
  readonly terminatePerInstance: number;
  readonly throttled: number;
  readonly duplicates: number;
  readonly failed: number;
  readonly polls: number;
  readonly minReady?: number;
  readonly breakdown: Breakdown;
}

interface Handler {
  onEvent(event: any): Promise<any>;
  isComplete(event: any): Promise<any>;
}

/** Loads FleetHandler and MemoryInventory from this tree or from the baseline commit. */
async function handlerModule(variant: Variant): Promise<{ FleetHandler: any; MemoryInventory: any }> {
  let root = path.join(__dirname, '..');
  if (variant === 'baseline') {
    root = path.join(__dirname, '..', 'node_modules', '.cache', `fleet-baseline-${BASELINE_COMMIT}`);
    if (!existsSync(path.join(root, 'lambda', 'fleet', 'fleet-handler.ts'))) {
      mkdirSync(root, { recursive: true });
      const tar = execFileSync('git', ['archive', BASELINE_COMMIT, 'lambda', 'src/private/wire.ts'], { cwd: path.join(__dirname, '..'), maxBuffer: 256 * 1024 * 1024 });
      execFileSync('tar', ['-x', '-C', root], { input: tar });
    }
  }
  const h = await import(path.join(root, 'lambda', 'fleet', 'fleet-handler.ts'));
  const inv = await import(path.join(root, 'lambda', 'fleet', 'inventory.ts'));
  return { FleetHandler: h.FleetHandler, MemoryInventory: inv.MemoryInventory };
}

/** One emulator, one image with versions 1.0 to 3.0, SDK clients that count throttled answers. */
class Account {
  static async start(speed: number): Promise<Account> {
    const emu = await startEmulator({ clock: new RealClock(speed), memoryQuotaMiB: 3000 * 2048 });
    const setup = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: CREDS });
    const img = await setup.send(new CreateMicrovmImageCommand({
      name: 'bench', baseImageArn: BASE_IMAGE, buildRoleArn: 'arn:aws:iam::123456789012:role/build', codeArtifact: { uri: 's3://bucket/v1.zip' },
    }));
    const account = new Account(emu, speed, img.imageArn!);
    for (const v of [2, 3]) {
      await account.built(setup);
      await setup.send(new UpdateMicrovmImageCommand({
        imageIdentifier: img.imageArn!, baseImageArn: BASE_IMAGE, buildRoleArn: 'arn:aws:iam::123456789012:role/build', codeArtifact: { uri: `s3://bucket/v${v}.zip` },
      }));
    }
    await account.built(setup);
    return account;
  }

  public throttled = 0;
  /** Emulator times at which RunMicrovm / TerminateMicrovm calls (each attempt) were sent. */
  public readonly sent: Record<string, number[]> = { RunMicrovmCommand: [], TerminateMicrovmCommand: [] };
  /** [start, end] of every isComplete call, emulator time. */
  public readonly steps: Array<[number, number]> = [];
  public readonly clock: { now(): number; sleep(ms: number): Promise<void> };

  private constructor(public readonly emu: RunningEmulator, public readonly speed: number, public readonly imageArn: string) {
    const c = emu.clock;
    this.clock = { now: () => c.now(), sleep: (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms) / speed)) };
  }

  private async built(c: LambdaMicrovmsClient): Promise<void> {
    while (!['CREATED', 'UPDATED'].includes((await c.send(new GetMicrovmImageCommand({ imageIdentifier: this.imageArn }))).state ?? '')) await this.clock.sleep(500);
  }

  /** An SDK client on this emulator; every 429 it receives (each attempt) is counted. */
  client(maxAttempts?: number): LambdaMicrovmsClient {
    const c = new LambdaMicrovmsClient({ endpoint: this.emu.url, region: this.emu.region, credentials: CREDS, maxAttempts });
    c.middlewareStack.add((next, context) => async (args) => {
      this.sent[context.commandName ?? '']?.push(this.clock.now());
      try {
        return await next(args);
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 429) this.throttled++;
        throw err;
      }
    }, { step: 'finalizeRequest', priority: 'low', name: 'countThrottled' });
    return c;
  }

  vms(fleetIds?: Set<string>): Array<{ microvmId: string; state: string; imageVersion: string }> {
    const all = this.emu.snapshot().microvms as Array<{ microvmId: string; state: string; imageVersion: string }>;
    return fleetIds ? all.filter((v) => fleetIds.has(v.microvmId)) : all;
  }
}

/** The naive deploy: everything at once with the SDK's standard retries; GetMicrovm per instance at each poll. */
class NaiveHandler implements Handler {
  private ids: string[] = [];
  constructor(private readonly client: LambdaMicrovmsClient, private readonly imageArn: string) {}
  async onEvent(event: any): Promise<any> {
    const props = event.ResourceProperties as FleetProps;
    if (event.RequestType === 'Delete') {
      await Promise.allSettled(this.ids.map((id) => this.client.send(new TerminateMicrovmCommand({ microvmIdentifier: id }))));
      return { PhysicalResourceId: event.PhysicalResourceId };
    }
    const settled = await Promise.allSettled(Array.from({ length: Number(props.DesiredCount) },
      () => this.client.send(new RunMicrovmCommand({ imageIdentifier: this.imageArn, imageVersion: props.ImageVersion }))));
    this.ids = settled.flatMap((r) => (r.status === 'fulfilled' && r.value.microvmId ? [r.value.microvmId] : []));
    return { PhysicalResourceId: 'naive-fleet' };
  }
  async isComplete(event: any): Promise<any> {
    const want = event.RequestType === 'Delete' ? 'TERMINATED' : 'RUNNING';
    const states = await Promise.allSettled(this.ids.map((id) => this.client.send(new GetMicrovmCommand({ microvmIdentifier: id }))));
    const done = (s: PromiseSettledResult<{ state?: string }>) => (s.status === 'fulfilled' ? s.value.state === want
      : want === 'TERMINATED' && (s.reason as { name?: string })?.name === 'ResourceNotFoundException');
    return { IsComplete: states.every(done) };
  }
}

function fleetProps(account: Account, over: Partial<FleetProps>): FleetProps {
  return {
    ImageArn: account.imageArn,
    ImageVersion: '1.0',
    DesiredCount: '100',
    MaximumDurationSeconds: '28800',
    UpdatePolicy: 'ROLLING',
    LaunchRate: String(RUN_RATE),
    TableName: 'inventory',
    TimeoutSeconds: '3300',
    ...over,
  };
}

interface Fleet {
  readonly driver: LifecycleDriver<FleetProps>;
  /** MicroVM ids the fleet owns now (from the inventory or the naive handler). */
  ids(): Set<string>;
}

/** Records when each isComplete call ran. */
function timed(account: Account, handler: Handler): Handler {
  return {
    onEvent: (e) => handler.onEvent(e),
    isComplete: async (e) => {
      const start = account.clock.now();
      try {
        return await handler.isComplete(e);
      } finally {
        account.steps.push([start, account.clock.now()]);
      }
    },
  };
}

/**
 * A fleet of `variant`; fleets given the same `table` share it, as the fleets of one stack share
 * the stack's inventory table (and with it the 'shared' pacing schedule).
 */
async function newFleet(variant: Variant, account: Account, name: string, table?: unknown): Promise<Fleet> {
  const pacing = variant === 'new, adaptive' ? 'adaptive' : variant === 'new, alone' ? 'alone' : 'shared';
  if (variant.startsWith('new')) variant = 'new';
  const driverFor = (handler: Handler) => new LifecycleDriver<FleetProps>({
    handler: timed(account, handler), resourceType: 'Custom::LambdaMicroVmFleet', logicalResourceId: name, wait: (ms) => account.clock.sleep(ms),
  });
  if (variant === 'naive') {
    const naive = new NaiveHandler(account.client(), account.imageArn);
    return { driver: driverFor(naive), ids: () => new Set((naive as any).ids as string[]) };
  }
  const mod = await handlerModule(variant);
  const inventory = table ?? new mod.MemoryInventory();
  const options = { clock: account.clock, runClient: account.client(1), pacing, metrics: () => undefined };
  const handler = new mod.FleetHandler(account.client(8), () => inventory, options);
  return {
    driver: driverFor(handler),
    ids: () => new Set([...(inventory as any).items.values()].map((i: any) => i.microvmId).filter(Boolean)),
  };
}

/** Emulator ms the event loop is blocked past 10 ms real, summed, while `on`. */
class LoopLag {
  public lagMs = 0;
  private timer?: NodeJS.Timeout;
  constructor(private readonly speed: number) {}
  start(): void {
    this.lagMs = 0;
    let last = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      this.lagMs += Math.max(0, now - last - 20) * this.speed;
      last = now;
    }, 10);
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** Splits [t0, t1] by the paced calls of `op` and the isComplete calls (see Breakdown). */
function breakdown(account: Account, op: string, rate: number, instances: number, t0: number, t1: number, loopLagMs: number): Breakdown {
  const calls = account.sent[op].filter((t) => t >= t0 && t <= t1);
  const first = calls.length ? calls[0] : t1;
  const last = calls.length ? calls[calls.length - 1] : t1;
  // Time in [first, last] covered by no isComplete call.
  const steps = account.steps.filter(([a, b]) => b >= t0 && a <= t1).sort((x, y) => x[0] - y[0]);
  let covered = 0;
  let edge = first;
  for (const [a, b] of steps) {
    const from = Math.max(a, edge);
    const to = Math.min(b, last);
    if (to > from) covered += to - from;
    edge = Math.max(edge, Math.min(b, last));
  }
  const span = last - first;
  const paced = Math.max(0, Math.min(calls.length, instances) - 1) * 1000 / rate;
  const gaps = span - covered;
  return {
    lead: (first - t0) / 1000,
    paced: paced / 1000,
    gaps: gaps / 1000,
    paceLoss: (span - gaps - paced) / 1000,
    tail: (t1 - last) / 1000,
    loopLag: loopLagMs / 1000,
  };
}

/** Runs `op` and measures it; `sampleReady` counts the ready instances of the fleet every 2 emulator seconds. */
async function measure(account: Account, variant: Variant, scenario: string, instances: number, idealSeconds: number,
  op: () => Promise<LifecycleResult[]>, sampleReady?: () => number): Promise<Row> {
  account.emu.resetStats();
  account.throttled = 0;
  const lag = new LoopLag(account.speed);
  lag.start();
  const vmsBefore = account.vms().length;
  let minReady: number | undefined;
  let sampling = !!sampleReady;
  const sampler = (async () => {
    while (sampling) {
      minReady = Math.min(minReady ?? Infinity, sampleReady!());
      await account.clock.sleep(2000);
    }
  })();
  const t0 = account.clock.now();
  const results = await op();
  const t1 = account.clock.now();
  const seconds = (t1 - t0) / 1000;
  lag.stop();
  sampling = false;
  await sampler;
  const ops = account.emu.stats().operations;
  const launched = account.vms().length - vmsBefore;
  const failedResults = results.filter((r) => r.status !== 'SUCCESS');
  const isLaunch = !scenario.startsWith('delete');
  const wanted = isLaunch ? instances : 0;
  return {
    variant,
    scenario,
    instances,
    status: failedResults.length ? `FAILED ${failedResults.length}/${results.length}` : 'ok',
    seconds,
    idealSeconds,
    runPerInstance: (ops.RunMicrovm ?? 0) / instances,
    terminatePerInstance: (ops.TerminateMicrovm ?? 0) / instances,
    throttled: account.throttled,
    duplicates: isLaunch ? Math.max(0, launched - wanted) : 0,
    failed: isLaunch ? Math.max(0, wanted - launched) : 0,
    polls: results.reduce((a, r) => a + r.polls, 0),
    minReady,
    breakdown: isLaunch ? breakdown(account, 'RunMicrovmCommand', RUN_RATE, instances, t0, t1, lag.lagMs)
      : breakdown(account, 'TerminateMicrovmCommand', TERMINATE_RATE, instances, t0, t1, lag.lagMs),
  };
}

const bootSeconds = DEFAULT_DELAYS.vmStart / 1000;
const stopSeconds = DEFAULT_DELAYS.vmTerminate / 1000;
const idealCreate = (n: number) => n / RUN_RATE + bootSeconds;
const idealReplace = (n: number) => n / RUN_RATE + bootSeconds + stopSeconds;
const idealDelete = (n: number) => n / TERMINATE_RATE + stopSeconds;

/**
 * Scenario groups to run (`--scenarios small,big,ten,two`): create 100; create, roll and delete 1000; 10 fleets of one stack;
 * two stacks of 5 fleets each.
 */
const SCENARIOS = new Set(argValue('scenarios', 'small,big,ten,two').split(','));

async function runVariant(variant: Variant, speed: number): Promise<Row[]> {
  const rows: Row[] = [];
  const log = (r: Row) => {
    rows.push(r);
    console.error(`  ${JSON.stringify(r)}`);
  };
  if (SCENARIOS.has('small')) {
    const account = await Account.start(speed);
    const fleet = await newFleet(variant, account, 'Small');
    log(await measure(account, variant, 'create 100', 100, idealCreate(100), async () => [await fleet.driver.create(fleetProps(account, { DesiredCount: '100' }))]));
    await account.emu.close();
  }
  if (SCENARIOS.has('big')) {
    const account = await Account.start(speed);
    const fleet = await newFleet(variant, account, 'Big');
    const props = (over: Partial<FleetProps>) => fleetProps(account, { DesiredCount: '1000', ...over });
    log(await measure(account, variant, 'create 1000', 1000, idealCreate(1000), async () => [await fleet.driver.create(props({}))]));
    if (variant !== 'naive') {
      // One fleet in this account: every RUNNING MicroVM is one of its instances, old or new.
      const ready = () => account.vms().filter((v) => v.state === 'RUNNING').length;
      log(await measure(account, variant, 'rolling 1000, default batch', 1000, idealReplace(1000),
        async () => [await fleet.driver.update(props({ ImageVersion: '2.0' }))], ready));
      log(await measure(account, variant, 'rolling 1000, batch 200', 1000, idealReplace(1000),
        async () => [await fleet.driver.update(props({ ImageVersion: '3.0', BatchSize: '200' }))], ready));
    }
    log(await measure(account, variant, 'delete 1000', 1000, idealDelete(1000), async () => [await fleet.driver.delete()]));
    await account.emu.close();
  }
  for (const v of !SCENARIOS.has('ten') ? [] : variant === 'new' ? ['new', 'new, adaptive', 'new, alone'] as const : [variant]) {
    const account = await Account.start(speed);
    // One stack: the ten fleets share its inventory table.
    const table = v === 'naive' ? undefined : new (await handlerModule(v === 'baseline' ? 'baseline' : 'new')).MemoryInventory();
    const fleets = await Promise.all(Array.from({ length: 10 }, (_, i) => newFleet(v, account, `Fleet${i}`, table)));
    log(await measure(account, v, '10 fleets x 100 at once', 1000, idealCreate(1000),
      () => Promise.all(fleets.map((f) => f.driver.create(fleetProps(account, { DesiredCount: '100' }))))));
    await account.emu.close();
  }
  if (SCENARIOS.has('two')) {
    const account = await Account.start(speed);
    // Two stacks deploying at once in one account: each has its own inventory table (its own pace
    // items), both draw on the account's one RunMicrovm rate.
    const fleets: Fleet[] = [];
    for (const stack of ['A', 'B']) {
      const table = variant === 'naive' ? undefined : new (await handlerModule(variant)).MemoryInventory();
      for (let i = 0; i < 5; i++) fleets.push(await newFleet(variant, account, `Stack${stack}Fleet${i}`, table));
    }
    log(await measure(account, variant, '2 stacks x 5 fleets x 100', 1000, idealCreate(1000),
      () => Promise.all(fleets.map((f) => f.driver.create(fleetProps(account, { DesiredCount: '100' }))))));
    await account.emu.close();
  }
  return rows;
}

function printRows(rows: Row[]): void {
  const head = ['scenario', 'launcher', 'result', 'time (s)', 'ideal (s)', 'of ideal', 'Run/inst', 'Term/inst', 'throttled', 'dupes', 'failed', 'polls', 'min ready'];
  const cells = rows.map((r) => [
    r.scenario, r.variant, r.status, r.seconds.toFixed(0), r.idealSeconds.toFixed(0), (r.idealSeconds / r.seconds).toFixed(2),
    r.runPerInstance.toFixed(2), r.terminatePerInstance.toFixed(2), String(r.throttled), String(r.duplicates), String(r.failed), String(r.polls),
    r.minReady === undefined ? '' : String(r.minReady),
  ]);
  printTable(head, cells, 3);
}

function printBreakdown(rows: Row[]): void {
  console.log('\nWhere the time went (emulator seconds; the paced call is RunMicrovm, or TerminateMicrovm for a delete):\n');
  const head = ['scenario', 'launcher', 'time', 'lead', 'paced calls', 'waiter gaps', 'pace loss', 'tail', 'loop lag'];
  printTable(head, rows.map((r) => [r.scenario, r.variant, r.seconds.toFixed(1), ...[r.breakdown.lead, r.breakdown.paced, r.breakdown.gaps,
    r.breakdown.paceLoss, r.breakdown.tail, r.breakdown.loopLag].map((x) => x.toFixed(1))]), 2);
  console.log(`
time = lead + paced calls + waiter gaps + pace loss + tail. lead: until the first paced call. paced calls: one per instance at the
limit. waiter gaps: between the first and the last paced call, while no isComplete ran (the framework's 15 s). pace loss: the rest of
that span (calls below the limit: throttle waits, rounds' own time, retries). tail: after the last paced call (boot or stop, observing,
a last poll). loop lag: how long the benchmark's event loop was blocked (its CPU on a shared machine, charged at the clock's speed;
part of the other columns, not added to them).`);
}

async function main(): Promise<void> {
  const speed = Number(argValue('speed', '5'));
  const baselineSpeed = Number(argValue('baseline-speed', '20'));
  const naiveSpeed = Number(argValue('naive-speed', '20'));
  const only = argValue('only', 'new,baseline,naive').split(',') as Variant[];
  process.env.MICROVMS_HANDLER_QUIET = '1';
  console.log(`Emulator: RunMicrovm ${RUN_RATE}/s, TerminateMicrovm ${TERMINATE_RATE}/s (default limits), vmStart ${bootSeconds} s, vmTerminate ${stopSeconds} s; ` +
    `clock at ${speed}x real time (baseline ${baselineSpeed}x, naive ${naiveSpeed}x); the framework's waiter polls every 15 s; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}.`);
  const rows: Row[] = [];
  for (const v of only) {
    console.error(`${v}:`);
    rows.push(...await runVariant(v, v === 'baseline' ? baselineSpeed : v === 'naive' ? naiveSpeed : speed));
  }
  const order = [...new Set(rows.map((r) => r.scenario))];
  rows.sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario));
  console.log('');
  printRows(rows);
  console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`
of ideal: the ideal time (instances at the physical limit: RunMicrovm ${RUN_RATE}/s plus one boot; TerminateMicrovm ${TERMINATE_RATE}/s plus one stop; a replacement
is bound by its launches) over the measured time, from onEvent to the answer CloudFormation gets. Run/inst, Term/inst: calls per instance,
all attempts, throttled included. throttled: 429 answers. dupes/failed: MicroVMs launched beyond / short of the desired count.
polls: isComplete calls. min ready: the fewest RUNNING instances seen (every 2 s) during a rolling update (the fleet wants 1000).`);
  printBreakdown(rows);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
