import { randomUUID } from 'node:crypto';
import {
  GetMicrovmImageCommand,
  LambdaMicrovmsClient,
  SuspendMicrovmCommand,
  TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { configHash, launchInput } from './fleet-config';
import { Inventory, MetaRecord, SlotRecord, slotKey } from './inventory';
import { describeError, LaunchRequest, Launcher, LauncherClock, observe, REAL_CLOCK, TokenBucket } from './launcher';
import { FleetMetricValues, MetricsSink, publishFleetMetrics, STDOUT_SINK } from './metrics';
import { RECONCILER_DEFAULTS, ReconcilerInput } from '../../src/private/reconciler-wire';
import { errorMessage, isConflict, isNotFound } from '../shared/errors';
import { log } from '../shared/log';
import { toBool, toInt } from '../shared/props';
import { clientToken } from '../shared/tokens';

/** What CloudFormation is doing with the fleet's stack: the reconciler acts only when SETTLED. */
export type DeployState = 'SETTLED' | 'DEPLOYING' | 'UNSETTLED' | 'GONE';

/** The inventory plus the conditional writes that fence the reconciler (DynamoInventory, MemoryInventory). */
export interface ReconcilerStore extends Inventory {
  claimSlots(expected: MetaRecord, count: number): Promise<boolean>;
  metaUnchanged(expected: MetaRecord): Promise<boolean>;
  tryLease(fleetId: string, owner: string, now: number, until: number): Promise<boolean>;
  releaseLease(fleetId: string, owner: string): Promise<void>;
}

export interface ReconcilerOptions {
  readonly client: LambdaMicrovmsClient;
  /** RunMicrovm goes through this client: it must not retry on its own (maxAttempts 1). @default client */
  readonly runClient?: LambdaMicrovmsClient;
  readonly storeFor: (tableName: string) => ReconcilerStore;
  /** The stack's status (CloudFormation DescribeStacks in Lambda; the lifecycle driver in tests). */
  readonly deployState: (stackId: string) => Promise<DeployState>;
  readonly clock?: LauncherClock;
  readonly secrets?: SecretsManagerClient;
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
  readonly outcome: 'reconciled' | 'skipped';
  /** Why a run changed nothing. */
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
  readonly replacedRotation?: number;
  readonly releasedIdle?: number;
  /** Old instances terminated after their rotation replacement was ready. */
  readonly rotatedOut?: number;
  readonly failedLaunches?: number;
}

/** States in which an instance holds memory and serves (or will, on resume). */
const ALIVE = new Set(['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED']);
/** Counted toward the desired count. */
const READY = new Set(['RUNNING', 'SUSPENDED']);
/** Record state of an instance the idle policy ended and the fleet let go (not replaced until the next deploy). */
export const RELEASED = 'RELEASED';
/** A MicroVM missing from ListMicrovms this long after launch is gone (the list is eventually consistent). */
const LIST_GRACE_MS = 60_000;
/** A LAUNCHING record this old belongs to a run that died: its recorded token is re-issued. */
const LAUNCHING_STALE_MS = 120_000;
/** Gone within this long of `maximumDuration`: the service's cap ended it. */
const EXPIRY_SLACK_MS = 90_000;
/** The lease outlives the reconciler function's timeout (60 s). */
const LEASE_MS = 120_000;
const DEFAULT_BUDGET_MS = 40_000;
/** TerminateMicrovm's rate is 10/s and SuspendMicrovm's 2/s: stay under. */
const TERMINATE_RATE = 8;
const SUSPEND_RATE = 2;

/**
 * The scheduled reconciler of MicroVM fleets: between deploys it holds each fleet at its desired
 * count with the same inventory, tokens and launcher as the deploy-time handler.
 *
 * One run, for one fleet:
 * 1. Fence: nothing happens unless the stack is settled (no CloudFormation operation in progress),
 *    the fleet has an inventory (a deleted fleet has none), no other run holds the fleet's lease,
 *    and every live record has the configuration the schedule describes (a stale input acts on nothing).
 * 2. Observe with ListMicrovms pages. Gone instances (TERMINATED, TERMINATING, or missing past the
 *    grace period) are replaced; those the idle policy ended after SUSPENDED are let go unless
 *    `ReplaceIdleTerminated`. Instances within `RotateBeforeSeconds` of `maximumDuration` get a
 *    replacement first (at most `MaxRotating` in flight) and are terminated once it is ready.
 * 3. Every write goes after a conditional write on the meta item (same generation, request and
 *    next slot as read): a deploy that opened a generation meanwhile makes the run change nothing.
 *    New slots are claimed by that same write, so a slot (and its token) is never used twice.
 * 4. Publish the fleet's metrics (EMF).
 */
export class FleetReconciler {
  private readonly clock: LauncherClock;
  private readonly runClient: LambdaMicrovmsClient;
  private readonly sink: MetricsSink;
  private readonly budgetMs: number;
  private readonly payloads = new Map<string, string>();

  constructor(private readonly options: ReconcilerOptions) {
    this.clock = options.clock ?? REAL_CLOCK;
    this.runClient = options.runClient ?? options.client;
    this.sink = options.metrics ?? STDOUT_SINK;
    this.budgetMs = options.budgetMs ?? DEFAULT_BUDGET_MS;
  }

  public async reconcile(input: ReconcilerInput): Promise<ReconcileReport> {
    const fleetId = input.FleetId;
    const started = this.clock.now();
    const skip = (reason: string): ReconcileReport => {
      log('reconciler run changed nothing', { fleetId, reason });
      return { fleetId, outcome: 'skipped', reason };
    };
    const state = await this.options.deployState(input.StackId);
    if (state !== 'SETTLED') return skip(`stack ${state.toLowerCase()}`);
    const store = this.options.storeFor(input.Fleet.TableName);
    const meta = await store.getMeta(fleetId);
    if (!meta) return skip('no inventory: the fleet was deleted or never created');
    if (meta.failure) return skip('the fleet\'s create failed');
    const owner = randomUUID();
    if (!await store.tryLease(fleetId, owner, started, started + LEASE_MS)) return skip('another run holds the lease');
    const throttledBefore = this.options.throttles?.() ?? 0;
    try {
      const report = await this.run(input, store, meta, started);
      if (report.outcome === 'reconciled') {
        this.publish(fleetId, report, throttledBefore, started);
      }
      return report;
    } finally {
      await store.releaseLease(fleetId, owner);
    }
  }

  private async run(input: ReconcilerInput, store: ReconcilerStore, meta: MetaRecord, started: number): Promise<ReconcileReport> {
    const fleetId = input.FleetId;
    const props = input.Fleet;
    const stepEnd = started + this.budgetMs;
    const records = await store.listSlots(fleetId);
    const version = props.ImageVersion || versionOf(records, input) || await this.latestActiveVersion(props.ImageArn);
    const hash = configHash(props, version);
    const foreign = records.filter((r) => r.configHash !== hash && r.state !== RELEASED);
    if (foreign.length) {
      log('reconciler run changed nothing', { fleetId, reason: 'configuration mismatch', records: foreign.length });
      return { fleetId, outcome: 'skipped', reason: 'the inventory holds another configuration: a deploy is pending or the schedule input is stale' };
    }

    // Observe (read only).
    const desired = toInt(props.DesiredCount, 'DesiredCount') ?? 0;
    const maxDurationMs = (toInt(props.MaximumDurationSeconds, 'MaximumDurationSeconds') ?? 28_800) * 1000;
    const rotateBeforeMs = (toInt(input.RotateBeforeSeconds, 'RotateBeforeSeconds') ?? RECONCILER_DEFAULTS.rotateBeforeSeconds) * 1000;
    const maxRotating = toInt(input.MaxRotating, 'MaxRotating') ?? RECONCILER_DEFAULTS.maxRotating;
    const replaceIdle = toBool(input.ReplaceIdleTerminated);
    const now = this.clock.now();
    const launchedRecs = records.filter((r) => r.phase === 'LAUNCHED' && r.state !== RELEASED);
    const { vms } = launchedRecs.length
      ? await observe(this.options.client, [{ imageArn: props.ImageArn, imageVersion: version }])
      : { vms: new Map<string, { state: string }>() };
    const alive: SlotRecord[] = [];
    const changed: SlotRecord[] = [];
    const drop: SlotRecord[] = [];
    const released: SlotRecord[] = records.filter((r) => r.state === RELEASED);
    const newlyReleased: SlotRecord[] = [];
    let goneExpired = 0;
    let goneTerminated = 0;
    const inFlight = records.filter((r) => r.phase === 'LAUNCHING' && now - r.recordedAt < LAUNCHING_STALE_MS);
    const stale = records.filter((r) => r.phase === 'LAUNCHING' && now - r.recordedAt >= LAUNCHING_STALE_MS);
    for (const r of launchedRecs) {
      const age = now - (r.launchedAt ?? r.recordedAt);
      const seen = vms.get(r.microvmId!);
      const observed = seen?.state ?? (age < LIST_GRACE_MS ? 'PENDING' : 'GONE');
      if (ALIVE.has(observed)) {
        const next = { ...r, state: observed, suspendPending: r.suspendPending && observed !== 'SUSPENDED' && observed !== 'SUSPENDING' ? true : undefined };
        if (next.state !== r.state || next.suspendPending !== r.suspendPending) changed.push(next);
        alive.push(next);
        continue;
      }
      // TERMINATING, TERMINATED or gone: it no longer serves. A TERMINATING instance stops on its own.
      const expired = age >= maxDurationMs - EXPIRY_SLACK_MS;
      if (!expired && props.IdlePolicy && r.state === 'SUSPENDED' && !replaceIdle) {
        newlyReleased.push({ ...r, state: RELEASED, suspendPending: undefined });
      } else {
        drop.push(r);
        if (expired) goneExpired++;
        else goneTerminated++;
      }
    }

    // Plan.
    const want = Math.max(0, desired - released.length - newlyReleased.length);
    const isReady = (r: SlotRecord) => READY.has(r.state ?? '') && !r.suspendPending;
    const due = alive.filter((r) => now - (r.launchedAt ?? r.recordedAt) >= maxDurationMs - rotateBeforeMs)
      .sort((a, b) => (a.launchedAt ?? a.recordedAt) - (b.launchedAt ?? b.recordedAt));
    const dueSet = new Set(due.map((r) => r.sk));
    const fresh = alive.filter((r) => !dueSet.has(r.sk));
    const holding = alive.length + inFlight.length + stale.length;
    const goneDeficit = Math.max(0, want - holding);
    const rotationsInFlight = fresh.filter((r) => !isReady(r)).length + inFlight.length;
    const rotationNeed = Math.max(0, Math.min(due.length, want - fresh.length - inFlight.length - stale.length - goneDeficit));
    const rotations = Math.min(rotationNeed, Math.max(0, maxRotating - rotationsInFlight));
    const launches = goneDeficit + rotations;
    const readyCount = alive.filter(isReady).length;
    // Make-before-break: an instance close to its cap goes only when the rest still hold `want` ready.
    const surplusReady = readyCount - want;
    const rotateOut = surplusReady > 0 ? due.filter(isReady).slice(0, surplusReady) : [];

    const counts = {
      desired,
      running: alive.filter((r) => r.state === 'RUNNING').length,
      suspended: alive.filter((r) => r.state === 'SUSPENDED').length,
      pending: alive.filter((r) => !isReady(r)).length + inFlight.length + stale.length,
    };
    const writes = changed.length + drop.length + newlyReleased.length;
    if (launches === 0 && rotateOut.length === 0 && stale.length === 0 && writes === 0 && !alive.some((r) => r.suspendPending && r.state === 'RUNNING')) {
      return { fleetId, outcome: 'reconciled', ...counts, ready: readyCount, launched: 0 };
    }

    // Fence: one conditional write on the meta claims the new slots (or checks nothing changed).
    const fenced = launches > 0 ? await store.claimSlots(meta, launches) : await store.metaUnchanged(meta);
    if (!fenced) {
      log('reconciler run changed nothing', { fleetId, reason: 'a deploy wrote the inventory meanwhile' });
      return { fleetId, outcome: 'skipped', reason: 'a deploy wrote the inventory meanwhile' };
    }

    // Act.
    if (drop.length) {
      log('instances gone: replacing', { fleetId, expired: goneExpired, terminated: goneTerminated });
      await store.deleteSlots(fleetId, drop.map((r) => r.sk));
    }
    if (newlyReleased.length) log('instances ended by the idle policy: let go', { fleetId, count: newlyReleased.length });
    if (changed.length || newlyReleased.length) await store.putSlots([...changed, ...newlyReleased]);

    let launched = 0;
    let failed = 0;
    if (launches > 0 || stale.length > 0) {
      const result = await this.launch(input, store, meta, version, hash, launches, stale, stepEnd);
      launched = result.launched;
      failed = result.failed;
    }
    await this.suspendWarmPool(store, alive, stepEnd);
    const rotatedOut = await this.terminate(store, fleetId, rotateOut, stepEnd);
    return {
      fleetId,
      outcome: 'reconciled',
      ...counts,
      ready: readyCount - rotatedOut,
      launched,
      replacedExpired: goneExpired,
      replacedTerminated: goneTerminated,
      replacedRotation: rotations,
      releasedIdle: newlyReleased.length,
      rotatedOut,
      failedLaunches: failed,
    };
  }

  /** Records the new slots BEFORE RunMicrovm, re-issues stale recorded tokens, records each outcome. */
  private async launch(input: ReconcilerInput, store: ReconcilerStore, meta: MetaRecord, version: string, hash: string,
    count: number, stale: SlotRecord[], stepEnd: number): Promise<{ launched: number; failed: number }> {
    const props = input.Fleet;
    const now = this.clock.now();
    const suspend = toBool(props.SuspendAfterLaunch);
    const fresh: SlotRecord[] = [];
    for (let i = 0; i < count; i++) {
      const slot = meta.nextSlot + i;
      fresh.push({
        pk: input.FleetId,
        sk: slotKey(meta.generation, slot),
        generation: meta.generation,
        slot,
        // The deploy-time handler's formula: the claimed slot makes it unique.
        clientToken: clientToken(64, input.FleetId, String(meta.generation), meta.requestId, String(slot)),
        configHash: hash,
        imageArn: props.ImageArn,
        imageVersion: version,
        phase: 'LAUNCHING',
        suspendPending: suspend || undefined,
        recordedAt: now,
      });
    }
    if (fresh.length) await store.putSlots(fresh);
    const all = [...fresh, ...stale];
    const byToken = new Map(all.map((r) => [r.clientToken, r]));
    const freshTokens = new Set(fresh.map((r) => r.clientToken));
    const request = { ...launchInput(props, version), runHookPayload: await this.payload(props) };
    const requests: LaunchRequest[] = all.map((r) => ({ clientToken: r.clientToken, input: request }));
    const launcher = new Launcher(this.runClient, { rate: Number(props.LaunchRate) || 5, clock: this.clock, random: this.options.random });
    log('launching', { fleetId: input.FleetId, count, reissued: stale.length });
    const results = await launcher.launch(requests, { sendUntil: stepEnd });
    const put: SlotRecord[] = [];
    const del: string[] = [];
    let failed = 0;
    for (const r of results) {
      const rec = byToken.get(r.clientToken)!;
      if (r.microvmId) {
        put.push({ ...rec, phase: 'LAUNCHED', microvmId: r.microvmId, endpoint: r.endpoint, state: r.state ?? 'PENDING', launchedAt: this.clock.now() });
      } else if (r.definitelyNotLaunched || (r.skipped && freshTokens.has(r.clientToken))) {
        // Refused, or never sent: nothing was launched with this token.
        del.push(rec.sk);
        if (!r.skipped) failed++;
      } else if (!r.skipped) {
        failed++; // unknown outcome: stays LAUNCHING, re-issued by a later run
      }
    }
    if (put.length) await store.putSlots(put);
    if (del.length) await store.deleteSlots(input.FleetId, del);
    const refused = results.find((r) => r.definitelyNotLaunched);
    if (refused) log('RunMicrovm refused a replacement', { fleetId: input.FleetId, error: describeError(refused.error) });
    return { launched: put.length, failed };
  }

  /** Warm pool: SuspendMicrovm each replacement once RUNNING. Returns how many were suspended. */
  private async suspendWarmPool(store: ReconcilerStore, alive: SlotRecord[], stepEnd: number): Promise<number> {
    const due = alive.filter((r) => r.suspendPending && r.state === 'RUNNING');
    if (!due.length) return 0;
    const bucket = new TokenBucket(SUSPEND_RATE, 1, this.clock);
    const done: SlotRecord[] = [];
    for (const r of due) {
      if (this.clock.now() >= stepEnd) break;
      await bucket.take();
      try {
        await this.options.client.send(new SuspendMicrovmCommand({ microvmIdentifier: r.microvmId! }));
        done.push({ ...r, state: 'SUSPENDING', suspendPending: undefined });
      } catch (err) {
        if (!isNotFound(err) && !isConflict(err)) throw err; // gone or no longer RUNNING: observed next run
      }
    }
    if (done.length) await store.putSlots(done);
    return done.length;
  }

  /** Terminates the rotated-out instances and forgets them. Returns how many. */
  private async terminate(store: ReconcilerStore, fleetId: string, recs: SlotRecord[], stepEnd: number): Promise<number> {
    if (!recs.length) return 0;
    const bucket = new TokenBucket(TERMINATE_RATE, 1, this.clock);
    const done: string[] = [];
    for (const r of recs) {
      if (this.clock.now() >= stepEnd) break;
      await bucket.take();
      try {
        await this.options.client.send(new TerminateMicrovmCommand({ microvmIdentifier: r.microvmId! }));
      } catch (err) {
        if (!isNotFound(err) && !/terminat/i.test(errorMessage(err))) throw err;
      }
      done.push(r.sk);
    }
    log('rotated out', { fleetId, count: done.length });
    await store.deleteSlots(fleetId, done);
    return done.length;
  }

  private publish(fleetId: string, report: ReconcileReport, throttledBefore: number, started: number): void {
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
    publishFleetMetrics(this.sink, fleetId, values, this.clock.now());
  }

  private async latestActiveVersion(imageArn: string): Promise<string> {
    const image = await this.options.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    if (!image.latestActiveImageVersion) throw new Error(`MicroVM image ${imageArn} has no active version (state ${image.state})`);
    return image.latestActiveImageVersion;
  }

  /** The /run payload: inline, or the secret's value (cached per container, never logged). */
  private async payload(props: ReconcilerInput['Fleet']): Promise<string | undefined> {
    const arn = props.RunHookPayloadSecretArn;
    if (!arn) return props.RunHookPayload;
    let value = this.payloads.get(arn);
    if (value === undefined) {
      const out = await (this.options.secrets ?? new SecretsManagerClient({})).send(new GetSecretValueCommand({ SecretId: arn }));
      if (out.SecretString === undefined) throw new Error(`secret ${arn} has no SecretString: the /run payload must be text`);
      value = out.SecretString;
      this.payloads.set(arn, value);
    }
    return value;
  }
}

/** Without a pinned version: the version the fleet's records of this configuration run (the last deploy resolved it). */
function versionOf(records: SlotRecord[], input: ReconcilerInput): string | undefined {
  const match = records.filter((r) => r.configHash === configHash(input.Fleet, r.imageVersion));
  return match.sort((a, b) => b.sk.localeCompare(a.sk))[0]?.imageVersion;
}
