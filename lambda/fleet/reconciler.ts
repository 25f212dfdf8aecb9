import { randomUUID } from 'node:crypto';
import {
  GetMicrovmImageCommand,
  ResumeMicrovmCommand,
  SuspendMicrovmCommand,
  TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { configHash, fleetSettings, launchInput } from './fleet-config';
import { Fence, Inventory, MetaRecord, owns, SlotRecord, slotKey } from './inventory';
import { describeError, LaunchRequest, LaunchResult, Launcher, Pace, SharedPace, TokenBucket } from './launcher';
import { FleetMetricValues, instanceCounts, MetricsSink, publishFleetMetrics, RELEASED, STDOUT_SINK } from './metrics';
import { plan, PlanSlot } from './plan';
import type { ReconcilerInput } from '../../src/private/reconciler-wire';
import { DEFAULT_LAUNCH_RATE } from '../../src/private/wire';
import { systemClock } from '../shared/clock';
import type { Clock } from '../shared/clock';
import { classifyError } from '../shared/errors';
import { log } from '../shared/log';
import { listMicrovms } from '../shared/microvm-states';
import type { MicrovmsApi } from '../shared/microvms-client';
import { optionalInt, requireInt, toBool } from '../shared/props';
import { ReadStaged, withStagedProperties } from '../shared/staged';
import { clientToken } from '../shared/tokens';

/** What CloudFormation is doing with the fleet's stack: the reconciler acts only when SETTLED. */
export type DeployState = 'SETTLED' | 'DEPLOYING' | 'UNSETTLED' | 'GONE';

/** The inventory plus the conditional writes that fence the reconciler (DynamoInventory, MemoryInventory). */
export interface ReconcilerStore extends Inventory {
  claimSlots(expected: MetaRecord, count: number): Promise<boolean>;
  tryLease(fleetId: string, owner: string, now: number, until: number): Promise<boolean>;
  releaseLease(fleetId: string, owner: string): Promise<void>;
}

export interface ReconcilerOptions {
  readonly client: MicrovmsApi;
  /** RunMicrovm goes through this client: it must not retry on its own (maxAttempts 1). @default client */
  readonly runClient?: MicrovmsApi;
  readonly storeFor: (tableName: string) => ReconcilerStore;
  /** The stack's status (CloudFormation DescribeStacks in Lambda; the lifecycle driver in tests). */
  readonly deployState: (stackId: string) => Promise<DeployState>;
  readonly clock?: Clock;
  readonly secrets?: SecretsManagerClient;
  /** Reads the payload a fleet staged as an asset object (lambda/shared/staged.ts), with the fleet's role. */
  readonly readStaged?: ReadStaged;
  /** Where EMF lines go. @default stdout */
  readonly metrics?: MetricsSink;
  /** Throttled answers seen by the clients so far (lambda/fleet/metrics.ts countThrottles). */
  readonly throttles?: () => number;
  /** Work per run before leftovers wait for the next run. @default 40 s */
  readonly budgetMs?: number;
  readonly random?: () => number;
}

/** What one run did (also the Lambda's return value: ids and counts only). */
export interface ReconcileReport {
  readonly fleetId: string;
  readonly outcome: 'reconciled' | 'skipped' | 'failed';
  /** Why a run changed nothing, or what failed. */
  readonly reason?: string;
  readonly desired?: number;
  readonly ready?: number;
  readonly running?: number;
  readonly suspended?: number;
  /** Launched, not yet ready. */
  readonly pending?: number;
  readonly launched?: number;
  readonly replacedExpired?: number;
  readonly replacedTerminated?: number;
  /** Instances near `maximumDuration` terminated after their replacement was ready. */
  readonly replacedRotation?: number;
  readonly releasedIdle?: number;
  readonly failedLaunches?: number;
}

/** The instance no longer serves and never comes back. */
const ENDED = new Set(['TERMINATING', 'TERMINATED', 'GONE']);
/** Record state of an instance the idle policy ended and the fleet let go (lambda/fleet/metrics.ts). */
export { RELEASED };
/** A MicroVM missing from ListMicrovms this long after launch is gone (the list is eventually consistent). */
const LIST_GRACE_MS = 60_000;
/** Ended within this long of `maximumDuration`: the service's cap ended it. */
const EXPIRY_SLACK_MS = 90_000;
/** The lease outlives a run: its clients send nothing after 60 s (RUN_DEADLINE_MS, lambda/fleet/reconciler-entry.ts). */
const LEASE_MS = 120_000;
const DEFAULT_BUDGET_MS = 40_000;
/** Within a run, the fleet is observed again this often while replacements come up. */
const ROUND_MS = 1_500;
/** The service's TerminateMicrovm rate is 10/s, SuspendMicrovm 2/s, ResumeMicrovm 5/s. */
const TERMINATE_RATE = 10;
const SUSPEND_RATE = 2;
const RESUME_RATE = 5;
/** The planner sees an instance due for rotation as one of another configuration: it replaces it make-before-break. */
const ROTATING = 'rotate:';

interface RunContext {
  readonly input: ReconcilerInput;
  readonly store: ReconcilerStore;
  readonly fence: Fence;
  readonly version: string;
  readonly hash: string;
  readonly end: number;
  readonly launcher: Launcher;
  /** Set once a launch was throttled: the run sends no more launches. */
  readonly throttled: { value: boolean };
}

interface Tally {
  launched: number;
  expired: number;
  terminated: number;
  rotated: number;
  released: number;
  failed: number;
}

/**
 * The scheduled reconciler of MicroVM fleets: between deploys it holds each fleet at its desired
 * count with the deploy's own inventory, tokens, launcher and planner (plan.ts).
 *
 * One run, for one fleet:
 * 1. Fence: nothing happens unless the stack is settled (no CloudFormation operation runs on it),
 *    the fleet has an inventory (a deleted fleet has none), no other run holds the fleet's lease,
 *    and every live record has the configuration the schedule describes (a stale input acts on
 *    nothing). The run then works under the fence of the generation the last deploy opened: every
 *    round re-reads it, new slots are claimed with a conditional write on it, and a deploy that
 *    opens a new generation meanwhile makes the run stop before its next write.
 * 2. Rounds of observe (ListMicrovms), plan, act, for most of the run's budget: instances found
 *    ended (TERMINATED, TERMINATING, or missing past the grace period) are replaced; those the idle
 *    policy ended after SUSPENDED are let go unless `ReplaceIdleTerminated` (RELEASED on record);
 *    instances within `RotateBeforeSeconds` of `maximumDuration` are handed to the planner as
 *    another configuration, so it replaces them make-before-break, `MaxRotating` at a time.
 *    Instances the idle policy suspended count as ready and are never resumed.
 * 3. Publish the fleet's metrics (EMF).
 */
export class FleetReconciler {
  private readonly clock: Clock;
  private readonly runClient: MicrovmsApi;
  private readonly sink: MetricsSink;
  private readonly budgetMs: number;

  constructor(private readonly options: ReconcilerOptions) {
    this.clock = options.clock ?? systemClock;
    this.runClient = options.runClient ?? options.client;
    this.sink = options.metrics ?? STDOUT_SINK;
    this.budgetMs = options.budgetMs ?? DEFAULT_BUDGET_MS;
  }

  public async reconcile(scheduled: ReconcilerInput): Promise<ReconcileReport> {
    const fleetId = scheduled.FleetId;
    const started = this.clock.now();
    const state = await this.options.deployState(scheduled.StackId);
    if (state !== 'SETTLED') return skipped(fleetId, `stack ${state.toLowerCase()}`);
    const input = { ...scheduled, Fleet: await withStagedProperties(scheduled.Fleet, this.readStaged) };
    const store = this.options.storeFor(input.Fleet.TableName);
    const meta = await store.getMeta(fleetId);
    if (!meta) return skipped(fleetId, 'no inventory: the fleet was deleted or never created');
    if (meta.failure) return skipped(fleetId, 'the fleet\'s create failed');
    const owner = randomUUID();
    if (!await store.tryLease(fleetId, owner, started, started + LEASE_MS)) return skipped(fleetId, 'another run holds the lease');
    const throttledBefore = this.options.throttles?.() ?? 0;
    try {
      const report = await this.run(input, store, meta, started);
      if (report.outcome !== 'skipped') this.publish(report, throttledBefore, started);
      return report;
    } finally {
      await store.releaseLease(fleetId, owner);
    }
  }

  private async run(input: ReconcilerInput, store: ReconcilerStore, meta: MetaRecord, started: number): Promise<ReconcileReport> {
    const fleetId = input.FleetId;
    const props = input.Fleet;
    const settings = fleetSettings(props);
    const records = await store.listSlots(fleetId);
    const version = props.ImageVersion || versionOf(records, input) || await this.latestActiveVersion(props.ImageArn);
    const hash = configHash(props, version);
    const foreign = records.filter((r) => r.configHash !== hash && r.state !== RELEASED);
    if (foreign.length) return skipped(fleetId, 'the inventory holds another configuration: a deploy is pending or the schedule input is stale');

    const ctx: RunContext = {
      input,
      store,
      version,
      hash,
      fence: { generation: meta.generation, requestId: meta.requestId },
      throttled: { value: false },
      end: started + this.budgetMs,
      // One attempt per launch: a throttled or failed launch keeps its recorded token (LAUNCHING) and
      // the next run re-issues it, instead of adding retries to a throttling burst within this one.
      // On the stack's shared RunMicrovm schedule (SharedPace, the deploy path's default): a run
      // and the deploys of other fleets of the stack keep to one rate together.
      launcher: new Launcher(this.runClient, {
        rate: settings.launchRate,
        clock: this.clock,
        random: this.options.random,
        maxAttempts: 1,
        pace: new SharedPace(store, 'RunMicrovm', settings.launchRate, this.clock, DEFAULT_LAUNCH_RATE),
      }),
    };
    const tally: Tally = { launched: 0, expired: 0, terminated: 0, rotated: 0, released: 0, failed: 0 };
    let last: SlotRecord[] = records;
    try {
      await this.reissue(ctx, records, tally);
      for (;;) {
        const round = await this.round(ctx, tally);
        if (round === 'superseded') return skipped(fleetId, 'a deploy took the fleet');
        last = round.records;
        if (round.converged || this.clock.now() + ROUND_MS >= ctx.end) break;
        if (!round.acted) await this.clock.sleep(ROUND_MS);
      }
    } catch (err) {
      log('reconciler run failed', { fleetId, error: describeError(err) });
      return { fleetId, outcome: 'failed', reason: describeError(err), ...this.counts(input, last), ...tallied(tally) };
    }
    return { fleetId, outcome: 'reconciled', ...this.counts(input, last), ...tallied(tally) };
  }

  /** One round: fence, observe, plan, act. */
  private async round(ctx: RunContext, tally: Tally): Promise<'superseded' | { records: SlotRecord[]; converged: boolean; acted: boolean }> {
    const { input, store, fence } = ctx;
    const fleetId = input.FleetId;
    const props = input.Fleet;
    const settings = fleetSettings(props);
    const meta = await store.getMeta(fleetId);
    if (!owns(meta, fence)) return 'superseded';
    const observed = await this.observe(ctx, await store.listSlots(fleetId));
    const now = this.clock.now();
    const maxDurationMs = requireInt(props.MaximumDurationSeconds, 'MaximumDurationSeconds', 1) * 1000;
    const rotateBeforeMs = requireInt(input.RotateBeforeSeconds, 'RotateBeforeSeconds', 0) * 1000;
    const idle = !!props.IdlePolicy && !settings.suspendAfterLaunch;
    const age = (r: SlotRecord) => now - (r.launchedAt ?? r.recordedAt);

    // Instances that ended since the last observation: why (for the metrics), and which to let go.
    const release: SlotRecord[] = [];
    const changed: SlotRecord[] = [];
    for (const { record, state } of observed) {
      if (record.phase !== 'LAUNCHED' || record.state === RELEASED || state === record.state) continue;
      if (ENDED.has(state) && !ENDED.has(record.state ?? '')) {
        const expired = age(record) >= maxDurationMs - EXPIRY_SLACK_MS;
        if (!expired && idle && record.state === 'SUSPENDED' && !toBool(input.ReplaceIdleTerminated)) {
          release.push({ ...record, state: RELEASED });
          continue;
        }
        if (expired) tally.expired++;
        else tally.terminated++;
      }
      if (state !== 'GONE' && state !== 'TERMINATED') changed.push({ ...record, state });
    }
    const released = observed.filter((o) => o.record.state === RELEASED).length + release.length;
    const releasedSks = new Set(release.map((r) => r.sk));
    const live = observed.filter((o) => o.record.state !== RELEASED && !releasedSks.has(o.record.sk));

    const slots: PlanSlot[] = live.map(({ record, state }) => ({
      sk: record.sk,
      phase: record.phase,
      // Suspended by the idle policy: it serves on the next request (auto-resume), and is never resumed by us.
      state: idle && (state === 'SUSPENDED' || state === 'SUSPENDING') ? 'RUNNING' : state,
      configHash: record.phase === 'LAUNCHED' && !ENDED.has(state) && maxDurationMs > rotateBeforeMs && age(record) >= maxDurationMs - rotateBeforeMs
        ? ROTATING + record.configHash : record.configHash,
    }));
    const desired = Math.max(0, settings.desired - released);
    const p = plan({
      slots,
      target: {
        generation: fence.generation,
        configHash: ctx.hash,
        desired,
        updatePolicy: 'ROLLING',
        batchSize: maxRotating(input, settings.desired),
        suspendAfterLaunch: settings.suspendAfterLaunch,
      },
      fenceGeneration: meta!.generation,
      limits: { launchRate: settings.launchRate, capacity: meta!.capacity },
    });

    // Act. Writes follow the fence check above; new slots are claimed conditionally below.
    if (release.length) {
      log('instances ended by the idle policy: let go', { fleetId, count: release.length });
      tally.released += release.length;
    }
    if (changed.length || release.length) await store.putSlots([...changed, ...release]);
    if (p.drop.length) await store.deleteSlots(fleetId, p.drop);
    const bySk = new Map(live.map((o) => [o.record.sk, o.record]));
    const pick = (sks: readonly string[]) => sks.map((sk) => bySk.get(sk)!).filter((r) => r.phase === 'LAUNCHED');
    const terminate = pick(p.terminate);
    if (terminate.length) {
      const rotating = new Set(slots.filter((sl) => sl.configHash.startsWith(ROTATING)).map((sl) => sl.sk));
      // TerminateMicrovm on the stack's shared schedule too, with the deploys' key.
      const pace = new SharedPace(store, 'TerminateMicrovm', TERMINATE_RATE, this.clock);
      const done = await this.transition(ctx, terminate, pace, (id) => new TerminateMicrovmCommand({ microvmIdentifier: id }), true);
      tally.rotated += done.filter((r) => rotating.has(r.sk)).length;
      // Kept on record as TERMINATING (they still hold memory) until observed stopped.
      if (done.length) await store.putSlots(done.map((r) => ({ ...r, state: 'TERMINATING' })));
    }
    const suspendPace = new TokenBucket(SUSPEND_RATE, 1, this.clock);
    const suspended = await this.transition(ctx, pick(p.suspend), suspendPace, (id) => new SuspendMicrovmCommand({ microvmIdentifier: id }));
    if (suspended.length) await store.putSlots(suspended.map((r) => ({ ...r, state: 'SUSPENDING' })));
    const resumePace = new TokenBucket(RESUME_RATE, 1, this.clock);
    await this.transition(ctx, pick(p.resume), resumePace, (id) => new ResumeMicrovmCommand({ microvmIdentifier: id }));
    let launched = 0;
    if (p.launches > 0 && !ctx.throttled.value && this.clock.now() < ctx.end) {
      const result = await this.launch(ctx, meta!, p.launches, tally);
      if (result === 'superseded') return 'superseded';
      launched = result;
    }
    const records = live.map((o) => ({ ...o.record, state: o.state }));
    const acted = launched > 0 || terminate.length > 0;
    if (!p.converged) log('reconciling', { fleetId, ...p.counts, desired, launches: p.launches, terminate: terminate.length });
    return { records, converged: p.converged && !acted, acted };
  }

  /** States as ListMicrovms reports them; GONE when no longer listed past the grace period. */
  private async observe(ctx: RunContext, records: SlotRecord[]): Promise<Array<{ record: SlotRecord; state: string }>> {
    const launched = records.filter((r) => r.phase === 'LAUNCHED' && r.state !== RELEASED);
    const vms = new Map<string, string>();
    if (launched.length) {
      const items = await listMicrovms(this.options.client, { imageArn: ctx.input.Fleet.ImageArn, imageVersion: ctx.version, liveOnly: false });
      for (const vm of items) if (vm.microvmId && vm.state) vms.set(vm.microvmId, vm.state);
    }
    const now = this.clock.now();
    return records.map((record) => {
      if (record.phase !== 'LAUNCHED') return { record, state: 'PENDING' };
      if (record.state === RELEASED) return { record, state: RELEASED };
      const seen = vms.get(record.microvmId!);
      return { record, state: seen ?? (now - (record.launchedAt ?? record.recordedAt) < LIST_GRACE_MS ? record.state ?? 'PENDING' : 'GONE') };
    });
  }

  /** LAUNCHING records at the start of a run belong to a run (or deploy) that died: their recorded tokens are re-issued. */
  private async reissue(ctx: RunContext, records: SlotRecord[], tally: Tally): Promise<void> {
    const launching = records.filter((r) => r.phase === 'LAUNCHING');
    if (!launching.length) return;
    log('re-issuing recorded launch tokens', { fleetId: ctx.input.FleetId, count: launching.length });
    await this.send(ctx, launching, false, tally);
  }

  /** Claims `count` slots under the fence, records them BEFORE RunMicrovm, launches, records each outcome. */
  private async launch(ctx: RunContext, meta: MetaRecord, count: number, tally: Tally): Promise<number | 'superseded'> {
    const { input } = ctx;
    if (!await ctx.store.claimSlots(meta, count)) return 'superseded';
    const now = this.clock.now();
    const fresh: SlotRecord[] = [];
    for (let i = 0; i < count; i++) {
      const slot = meta.nextSlot + i;
      fresh.push({
        pk: input.FleetId,
        sk: slotKey(meta.generation, slot),
        generation: meta.generation,
        slot,
        // The deploy-time handler's formula; the claimed slot makes it unique.
        clientToken: clientToken(64, input.FleetId, String(meta.generation), meta.requestId, String(slot)),
        configHash: ctx.hash,
        imageArn: input.Fleet.ImageArn,
        imageVersion: ctx.version,
        phase: 'LAUNCHING',
        recordedAt: now,
      });
    }
    await ctx.store.putSlots(fresh);
    log('launching', { fleetId: input.FleetId, count });
    return this.send(ctx, fresh, true, tally);
  }

  private async send(ctx: RunContext, recs: SlotRecord[], fresh: boolean, tally: Tally): Promise<number> {
    const request = { ...launchInput(ctx.input.Fleet, ctx.version), runHookPayload: await this.payload(ctx.input.Fleet) };
    const requests: LaunchRequest[] = recs.map((r) => ({ clientToken: r.clientToken, input: request }));
    const byToken = new Map(recs.map((r) => [r.clientToken, r]));
    // The first request goes alone: when it is throttled, the rest is not sent (a throttling burst
    // costs one call), and no launch is sent for the rest of the run.
    const first = await ctx.launcher.launch(requests.slice(0, 1), { sendUntil: ctx.end });
    if (first.some((r) => r.error && classifyError(r.error) === 'throttled')) ctx.throttled.value = true;
    const rest: LaunchResult[] = ctx.throttled.value
      ? requests.slice(1).map((r) => ({ clientToken: r.clientToken, attempts: 0, skipped: true }))
      : await ctx.launcher.launch(requests.slice(1), { sendUntil: ctx.end });
    const results = [...first, ...rest];
    const put: SlotRecord[] = [];
    const del: string[] = [];
    for (const r of results) {
      const rec = byToken.get(r.clientToken)!;
      if (r.microvmId) {
        put.push({ ...rec, phase: 'LAUNCHED', microvmId: r.microvmId, endpoint: r.endpoint, state: r.state ?? 'PENDING', launchedAt: this.clock.now() });
      } else if (r.definitelyNotLaunched || (r.skipped && fresh)) {
        // Refused, or never sent: nothing was launched with this token.
        del.push(rec.sk);
        if (!r.skipped) tally.failed++;
      } else if (!r.skipped && classifyError(r.error) !== 'throttled') {
        tally.failed++; // unknown outcome: stays LAUNCHING, re-issued by the next run (as a throttled one is)
      }
    }
    // A deploy that took the fleet meanwhile resolves these tokens itself: write nothing back.
    if (!owns(await ctx.store.getMeta(ctx.input.FleetId), ctx.fence)) return put.length;
    if (put.length) await ctx.store.putSlots(put);
    if (del.length) await ctx.store.deleteSlots(ctx.input.FleetId, del);
    const refused = results.find((r) => r.definitelyNotLaunched);
    if (refused) log('RunMicrovm refused a replacement', { fleetId: ctx.input.FleetId, error: describeError(refused.error) });
    tally.launched += put.length;
    return put.length;
  }

  /** One call per instance at `rate` until the run's end; returns the records whose call was accepted (or found it gone). */
  private async transition(ctx: RunContext, recs: SlotRecord[], pace: Pace, command: (microvmId: string) => any,
    goneIsDone = false): Promise<SlotRecord[]> {
    if (!recs.length) return [];
    const done: SlotRecord[] = [];
    for (const r of recs) {
      if (this.clock.now() >= ctx.end) break;
      await pace.take();
      try {
        await this.options.client.send(command(r.microvmId!));
        done.push(r);
      } catch (err) {
        const kind = classifyError(err);
        if (kind === 'notFound' && goneIsDone) done.push(r);
        else if (!['notFound', 'conflict', 'busy'].includes(kind)) throw err; // otherwise observed again next round
      }
    }
    return done;
  }

  private counts(input: ReconcilerInput, records: SlotRecord[]) {
    return { desired: fleetSettings(input.Fleet).desired, ...instanceCounts(records) };
  }

  private publish(report: ReconcileReport, throttledBefore: number, started: number): void {
    const values: FleetMetricValues = {
      DesiredCount: report.desired,
      ReadyCount: report.ready,
      RunningCount: report.running,
      SuspendedCount: report.suspended,
      PendingCount: report.pending,
      Launched: report.launched ?? 0,
      ReplacedExpired: report.replacedExpired ?? 0,
      ReplacedTerminated: report.replacedTerminated ?? 0,
      ReplacedRotation: report.replacedRotation ?? 0,
      ReleasedIdle: report.releasedIdle ?? 0,
      FailedLaunches: report.failedLaunches ?? 0,
      ThrottledCalls: (this.options.throttles?.() ?? 0) - throttledBefore,
      ReconcileDuration: this.clock.now() - started,
    };
    publishFleetMetrics(this.sink, report.fleetId, values, this.clock.now());
  }

  private async latestActiveVersion(imageArn: string): Promise<string> {
    const image = await this.options.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    if (!image.latestActiveImageVersion) throw new Error(`MicroVM image ${imageArn} has no active version (state ${image.state})`);
    return image.latestActiveImageVersion;
  }

  private readonly readStaged: ReadStaged = (location) => {
    if (!this.options.readStaged) throw new Error(`the fleet's properties name staged values (s3://${location.Bucket}/${location.Key}) and this reconciler has no S3 reader`);
    return this.options.readStaged(location);
  };

  /** The /run payload: inline, or the secret's value (read per run, never logged). */
  private async payload(props: ReconcilerInput['Fleet']): Promise<string | undefined> {
    const arn = props.RunHookPayloadSecretArn;
    if (!arn) return props.RunHookPayload;
    const out = await (this.options.secrets ?? new SecretsManagerClient({})).send(new GetSecretValueCommand({ SecretId: arn }));
    if (out.SecretString === undefined) throw new Error(`secret ${arn} has no SecretString: the /run payload must be text`);
    return out.SecretString;
  }
}

function skipped(fleetId: string, reason: string): ReconcileReport {
  log('reconciler run changed nothing', { fleetId, reason });
  return { fleetId, outcome: 'skipped', reason };
}

function tallied(t: Tally) {
  return {
    launched: t.launched,
    replacedExpired: t.expired,
    replacedTerminated: t.terminated,
    replacedRotation: t.rotated,
    releasedIdle: t.released,
    failedLaunches: t.failed,
  };
}

/** Rotations in flight at once: the input's, or a tenth of the desired count (at least 1). */
function maxRotating(input: ReconcilerInput, desired: number): number {
  return optionalInt(input.MaxRotating, 'MaxRotating', 1) ?? Math.max(1, Math.ceil(desired / 10));
}

/** Without a pinned version: the version the fleet's records of this configuration run (the last deploy resolved it). */
function versionOf(records: SlotRecord[], input: ReconcilerInput): string | undefined {
  const match = records.filter((r) => r.configHash === configHash(input.Fleet, r.imageVersion));
  return match.sort((a, b) => b.sk.localeCompare(a.sk))[0]?.imageVersion;
}
