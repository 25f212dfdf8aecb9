import { CreateMicrovmImageCommand, LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { ManualClock, RunningEmulator, startEmulator } from '../emulator/src';
import { MemoryInventory } from '../lambda/fleet/inventory';
import { Launcher, SHARED_HOLD_MS, SHARED_SUCCESS_SHARE, SHARED_THROTTLE_SHARE, SharedPace } from '../lambda/fleet/launcher';
import type { Clock } from '../lambda/shared/clock';

const CREDS = { accessKeyId: 'test', secretAccessKey: 'test' };
let emu: RunningEmulator;
let manual: ManualClock;
let clock: Clock;
let imageArn: string;

beforeEach(async () => {
  manual = new ManualClock();
  emu = await startEmulator({ clock: manual });
  // Waiting advances the emulator's clock; a little real time lets requests in flight land first.
  clock = { now: () => manual.now(), sleep: async (ms) => { await new Promise((r) => setTimeout(r, Math.ceil(ms / 50))); manual.advance(ms); } };
  const client = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: CREDS });
  imageArn = (await client.send(new CreateMicrovmImageCommand({
    name: 'launcher-test',
    baseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
    buildRoleArn: 'arn:aws:iam::123456789012:role/build',
    codeArtifact: { uri: 's3://bucket/code.zip' },
  }))).imageArn!;
  manual.advance(10_000);
});
afterEach(async () => emu.close());

function launcher(adaptive = true): Launcher {
  const runClient = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: CREDS, maxAttempts: 1 });
  return new Launcher(runClient, { rate: 5, clock, random: () => 0.5, adaptive });
}

const requests = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ clientToken: `${prefix}-${i}`, input: { imageIdentifier: imageArn, imageVersion: '1.0' } }));

describe('Launcher: one account-wide RunMicrovm rate (adaptive backoff)', () => {
  test('launchers running at once slow down to share the rate: fewer wasted calls than fixed-rate launchers', async () => {
    const run = async (adaptive: boolean) => {
      emu.resetStats();
      const ls = Array.from({ length: 4 }, () => launcher(adaptive));
      const results = await Promise.all(ls.map((l, i) => l.launch(requests(`${adaptive}-${i}`, 25))));
      expect(results.flat().every((r) => r.microvmId)).toBe(true);
      return { calls: emu.stats().operations.RunMicrovm, rates: ls.map((l) => l.currentRate) };
    };
    const fixed = await run(false);
    const adaptive = await run(true);
    expect(adaptive.rates.every((r) => r < 5)).toBe(true);
    expect(adaptive.calls).toBeLessThan(fixed.calls);
    expect(adaptive.calls / 100).toBeLessThanOrEqual(1.5);
  });
});

describe('Launcher: the end of an isComplete step', () => {
  test('a launch throttled near sendUntil sends no retry after it, and waits no backoff past it (the function\'s timeout follows)', async () => {
    emu.faults.operation({ operation: 'RunMicrovm', mode: 'throttle', count: 100 });
    const t0 = manual.now();
    const [r] = await launcher(false).launch(requests('late', 1), { sendUntil: t0 + 1000 });
    // Unknown, not refused: the record stays LAUNCHING and the next step re-issues the same token.
    expect(r).toMatchObject({ definitelyNotLaunched: false });
    expect(r.microvmId).toBeUndefined();
    // Before: 8 attempts whatever sendUntil said, about 16 s of backoff past it.
    expect(manual.now() - t0).toBeLessThan(1000);
    expect(emu.stats().operations.RunMicrovm).toBeLessThanOrEqual(3);
  });
});

describe('Launcher: one account-wide RunMicrovm rate (a schedule shared through the stack\'s table)', () => {
  // Sleepers wake at their own time: the clock moves to the latest deadline reached, not by the sum of
  // every concurrent sleep (four launchers sleep at once here), and slowly enough (a tenth of real
  // time) that each call reaches the emulator before the clock moves past its slot.
  const until: Clock = {
    now: () => manual.now(),
    sleep: async (ms) => {
      const at = manual.now() + ms;
      await new Promise((r) => setTimeout(r, Math.ceil(ms / 10)));
      if (manual.now() < at) manual.advance(at - manual.now());
    },
  };
  const sharedLauncher = (table: MemoryInventory) => {
    const runClient = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: CREDS, maxAttempts: 1 });
    return new Launcher(runClient, { rate: 5, clock: until, random: () => 0.5, pace: new SharedPace(table, 'RunMicrovm', 5, until) });
  };

  test('launchers of one stack keep to the rate together: no throttled call, one RunMicrovm per instance, the whole rate', async () => {
    const table = new MemoryInventory();
    const t0 = manual.now();
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => sharedLauncher(table).launch(requests(`shared-${i}`, 25))));
    expect(results.flat().every((r) => r.microvmId && r.attempts === 1)).toBe(true);
    expect(emu.stats().operations.RunMicrovm).toBe(100);
    // 100 calls at 5/s: 99 intervals of 200 ms (the schedule lets an idle caller catch up by one).
    expect(manual.now() - t0).toBeGreaterThanOrEqual(98 * 200);
    expect(manual.now() - t0).toBeLessThan(100 * 200 + 1000);
    expect(table.items.size).toBe(0);
  });

  test('a fleet with a low launchRate on the schedule does not slow the other fleets to its rate', async () => {
    // Fleet A launches at 0.2/s (one call per 5 s), fleet B at the default 5/s, at the same time.
    const table = new MemoryInventory();
    const runClient = () => new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: CREDS, maxAttempts: 1 });
    const slow = new Launcher(runClient(), { rate: 0.2, clock: until, random: () => 0.5, pace: new SharedPace(table, 'RunMicrovm', 0.2, until, 5) });
    const t0 = manual.now();
    let fastDone = 0;
    const [slowResults, fastResults] = await Promise.all([
      slow.launch(requests('slow', 3)),
      sharedLauncher(table).launch(requests('fast', 50)).then((r) => { fastDone = manual.now(); return r; }),
    ]);
    expect([...slowResults, ...fastResults].every((r) => r.microvmId)).toBe(true);
    // B's 50 calls and A's 3 share the 5/s: about 53 slots of 200 ms, not one 5-second slot of A's per call of B.
    expect(fastDone - t0).toBeLessThan(53 * 200 + 1000);
    // A still keeps to its own rate: 3 calls, 2 intervals of 5 s.
    expect(manual.now() - t0).toBeGreaterThanOrEqual(2 * 5000);
  });

  test('two stacks (two tables, two schedules) launching at once adapt to each other\'s throttles: few wasted calls', async () => {
    // Before SharedPace adapted, each stack's schedule ran at the full rate: about 2 calls per instance.
    const stacks = [new MemoryInventory(), new MemoryInventory()];
    const results = await Promise.all(stacks.flatMap((table, s) => Array.from({ length: 2 }, (_, i) => sharedLauncher(table).launch(requests(`stack${s}-${i}`, 25)))));
    expect(results.flat().every((r) => r.microvmId)).toBe(true);
    expect(emu.stats().operations.RunMicrovm / 100).toBeLessThanOrEqual(1.3);
  });

  test('a launcher alone on the schedule gets the whole rate', async () => {
    const table = new MemoryInventory();
    const t0 = manual.now();
    const results = await sharedLauncher(table).launch(requests('alone', 50));
    expect(results.every((r) => r.microvmId && r.attempts === 1)).toBe(true);
    expect(manual.now() - t0).toBeLessThan(50 * 200 + 1000);
  });
});

describe('SharedPace: throttles from outside the schedule stretch its interval; accepted calls bring it back', () => {
  test('a throttle cuts the share once per hold, successes restore the whole rate', async () => {
    let now = 1_000_000;
    const fake: Clock = { now: () => now, sleep: async (ms) => { now += ms; } };
    const pace = new SharedPace(new MemoryInventory(), 'RunMicrovm', 5, fake);
    const gaps = async (n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = now;
        await pace.take();
        out.push(now - t);
      }
      return out;
    };
    await gaps(3);
    expect(await gaps(3)).toEqual([200, 200, 200]);

    pace.drain();
    pace.drain(); // a second throttle of the same moment does not cut again
    expect(pace.share).toBeCloseTo(SHARED_THROTTLE_SHARE);
    const stretched = 200 / SHARED_THROTTLE_SHARE;
    // The first call waits out the throttle (one stretched interval; the slot reserved before it is
    // spent by then, so the second call catches up on it), the later ones leave a stretched interval apart.
    const after = await gaps(5);
    expect(after[0]).toBeGreaterThanOrEqual(stretched - 1);
    expect(after.slice(2).every((g) => Math.abs(g - stretched) < 1)).toBe(true);

    now += SHARED_HOLD_MS;
    pace.drain(); // after the hold, another throttle cuts again
    expect(pace.share).toBeCloseTo(SHARED_THROTTLE_SHARE ** 2);

    for (let i = 0; i < Math.ceil(1 / SHARED_SUCCESS_SHARE); i++) pace.succeeded();
    expect(pace.share).toBe(1);
    await gaps(2);
    expect(await gaps(3)).toEqual([200, 200, 200]);
  });
});
