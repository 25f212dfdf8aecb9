import {
  GetMicrovmCommand,
  GetMicrovmImageCommand,
  GetMicrovmImageVersionCommand,
  ResumeMicrovmCommand,
  SuspendMicrovmCommand,
  TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { configHash, FleetSettings, fleetSettings, launchInput } from './fleet-config';
import { Fence, Inventory, MetaRecord, owns, SlotRecord, slotKey } from './inventory';
import { describeError, LaunchRequest, LaunchResult, Launcher, Pace, SharedPace, TokenBucket } from './launcher';
import { instanceCounts, MetricsSink, publishFleetMetrics, STDOUT_SINK } from './metrics';
import { plan, Plan } from './plan';
import {
  DEFAULT_LAUNCH_RATE, FLEET_ATTRIBUTE_MAX_INSTANCES, FleetAttr, FleetProps, MAX_HANDLER_WAIT_SECONDS, MAX_RUN_HOOK_PAYLOAD_BYTES,
  SERVICE_DEFAULT_MEMORY_MIB,
} from '../../src/private/wire';
import type { Clock } from '../shared/clock';
import { classifyError, errorMessage, errorName } from '../shared/errors';
import { CustomResourceHandler, ProvisioningError, STEP_BUDGET_MS } from '../shared/framework';
import type { IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse, Steps } from '../shared/framework';
import { log } from '../shared/log';
import { listMicrovms, READY_MICROVM_STATES } from '../shared/microvm-states';
import type { MicrovmsApi } from '../shared/microvms-client';
import { clientToken } from '../shared/tokens';

type ReconcileProgress = { readonly op: 'reconcile'; readonly deadline: number; readonly generation: number; readonly version: string };
type DeleteProgress = { readonly op: 'delete'; readonly deadline: number; readonly generation: number; readonly fleetId: string };
type FleetProgress = ReconcileProgress | DeleteProgress;
type Event = OnEventRequest<FleetProps>;
type CompleteEvent = IsCompleteRequest<FleetProps, FleetProgress>;

/** An instance missing from ListMicrovms this long after launch is gone (the list is eventually consistent). */
const LIST_GRACE_MS = 60_000;
/** Within a step, readiness is observed again this often while the fleet waits for instances. */
const ROUND_MS = 1_500;
/**
 * When everything has been sent and the fleet only waits for states (the last launches booting,
 * the last terminations stopping), a step keeps observing, sending nothing, this long past its
 * budget (at most a fifteenth of it), inside the function's timeout: the operation answers in this
 * poll instead of 15 s later in the next one.
 */
const OBSERVE_GRACE_MS = 7_000;
/**
 * Launches recorded ahead of the launcher: this many seconds of its rate, so its queue outlasts a
 * round even when rounds run slow (a rolling update's planner bounds it further by the batch).
 */
const LAUNCH_QUEUE_SECONDS = 12;
/** Within a step, every instance is observed at least this often (the rest of the rounds observe only the changing ones). */
const FULL_OBSERVE_MS = 30_000;
/** Up to this many changing instances are observed with GetMicrovm each; more, with ListMicrovms pages. */
const MAX_GETS_PER_ROUND = 100;
/** GetMicrovm calls per second (the service's limit is 100/s, shared with the apps' reads). */
const GET_RATE = 50;
/** The service's TerminateMicrovm rate is 10/s, SuspendMicrovm 2/s, ResumeMicrovm 5/s. */
const TERMINATE_RATE = 10;
const SUSPEND_RATE = 2;
const RESUME_RATE = 5;
const MAX_IDS_IN_MESSAGE = 10;

export interface FleetHandlerOptions {
  /** Epoch ms and waiting; tests pass the emulator's manual clock. */
  readonly clock?: Clock;
  /** The client RunMicrovm goes through: it must not retry on its own (maxAttempts 1). @default the main client */
  readonly runClient?: MicrovmsApi;
  readonly secrets?: SecretsManagerClient;
  /** Work per isComplete call before it returns (in-flight calls finish after it). */
  readonly stepBudgetMs?: number;
  /**
   * How RunMicrovm and TerminateMicrovm calls are paced:
   * - 'shared': on one schedule per operation kept in the stack's inventory table (SharedPace):
   *   the fleets of a stack deploying at once keep to one rate together, a fleet alone gets it all;
   * - 'adaptive': each fleet at its own rate, halved on a throttle (LauncherOptions.adaptive);
   * - 'alone': each fleet at its own rate, as if no other fleet launched.
   * Measured side by side in bench/fleet-deploy.ts. @default 'shared'
   */
  readonly pacing?: 'shared' | 'adaptive' | 'alone';
  readonly random?: () => number;
  /** Where the fleet's metrics (EMF lines) go. @default stdout, which CloudWatch Logs turns into metrics */
  readonly metrics?: MetricsSink;
}

/** What the current request asks for. */
interface Target extends Fence {
  readonly fleetId: string;
  readonly props: FleetProps;
  readonly settings: FleetSettings;
  readonly version: string;
  readonly hash: string;
}

/**
 * Calls a step runs in the background while its rounds keep observing, and the slots they are
 * for: a round never sends a second call for a slot whose call is in flight.
 */
class Background {
  public readonly launching = new Set<string>();
  public readonly terminating = new Set<string>();
  /**
   * Slots whose TerminateMicrovm this step has had accepted: never terminated again in the step,
   * even when a full observation listed before the call lands after it and says RUNNING.
   */
  public readonly terminated = new Set<string>();
  public readonly suspending = new Set<string>();
  public readonly resuming = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private failure?: { readonly err: unknown };

  public run(work: () => Promise<void>): void {
    const p: Promise<void> = work()
      .catch((err) => { this.failure ??= { err }; })
      .finally(() => { this.running.delete(p); });
    this.running.add(p);
  }

  /** Throws the first failure of the background work. */
  public check(): void {
    if (this.failure) throw this.failure.err;
  }

  /** Waits for everything in flight (nothing new is sent after the step's end). */
  public async settle(): Promise<void> {
    while (this.running.size) await Promise.all([...this.running]);
  }
}

/** What one isComplete step shares across its rounds: one pace per operation. */
interface StepWork {
  readonly background: Background;
  readonly launcher: Launcher;
  readonly buckets: { readonly terminate: Pace; readonly suspend: Pace; readonly resume: Pace };
  /** Epoch ms after which nothing new is sent. */
  readonly stepEnd: number;
  /** Epoch ms until which rounds may go on observing past `stepEnd` when nothing is left to send. */
  readonly observeEnd: number;
  /** The last round's plan still had calls to make (launches, terminations, suspends, resumes). */
  sendsPending: boolean;
  /** When every instance was last observed (epoch ms; 0: not yet in this step). */
  observedAllAt: number;
  /** The records as last observed in this call (for the metrics). */
  observed?: SlotRecord[];
  /** MicroVMs launched, and RunMicrovm requests that launched nothing, in this call (for the metrics). */
  launched: number;
  failedLaunches: number;
}

/** Which instances a round observes: all of them, or only those whose state is about to change. */
type ObserveScope = 'all' | 'changing';

/**
 * Custom::LambdaMicroVmFleet: N MicroVMs from one image version, driven by an inventory (a DynamoDB
 * table the stack owns) so that every retried, restarted or superseded call converges.
 *
 * - Every request opens a generation in the inventory's meta item with a conditional write (a
 *   retried onEvent finds and reuses its own). The generation is the fence: a poll whose request no
 *   longer owns it (CloudFormation cancelled or superseded the request and left its waiter running)
 *   stops without acting, before every launch batch as well as at the start of every round.
 * - Each isComplete works for most of its budget in rounds: re-issue the recorded tokens of launches
 *   whose outcome is unknown; observe states with ListMicrovms pages; ask the planner (plan.ts) what
 *   to launch, terminate, suspend, resume and drop; act; observe again after 1.5 s. It answers as
 *   soon as the plan has converged, so short operations finish in the step that does them.
 * - A failed Create records the failure, terminates everything it launched, and only then reports
 *   it. The Provider framework skips the Delete only after an onEvent failure: after an isComplete
 *   failure or a waiter timeout it reports FAILED with the real physical id, and CloudFormation's
 *   rollback sends a real Delete, which then finds nothing left.
 * - Delete opens its own generation (stopping any waiter of the request it cancels), terminates every
 *   inventoried instance, waits until they stop, and clears the inventory. A Delete with an id
 *   CloudFormation generated (the Create never answered) empties the fleet that Create would have made.
 */
export class FleetHandler extends CustomResourceHandler<FleetProps, FleetProgress> {
  // Each step checks its own deadline: it works in rounds, and a Create cleans up before it reports.
  protected readonly steps: Steps<FleetProps, FleetProgress> = {
    delete: { check: (event, progress) => this.deleteStep(event, progress) },
    reconcile: { check: (event, progress) => this.reconcileStep(event, progress) },
  };

  private readonly runClient: MicrovmsApi;
  private readonly stepBudgetMs: number;
  private readonly random: () => number;
  /** The /run payloads read for one request only: the next deploy reads the secret again. */
  private payloads: { requestId?: string; values: Map<string, string> } = { values: new Map() };

  constructor(
    private readonly client: MicrovmsApi,
    private readonly inventoryFor: (tableName: string) => Inventory,
    private readonly options: FleetHandlerOptions = {},
  ) {
    super({ clock: options.clock });
    this.runClient = options.runClient ?? client;
    this.stepBudgetMs = options.stepBudgetMs ?? STEP_BUDGET_MS;
    this.random = options.random ?? Math.random;
  }

  private observeGraceMs(): number {
    return Math.min(OBSERVE_GRACE_MS, this.stepBudgetMs / 15);
  }

  /** The stack-wide schedule of an operation (pacing 'shared', the default); undefined: each fleet paces itself. */
  private sharedPace(inventory: Inventory, operation: string, rate: number, sharedRate: number): Pace | undefined {
    return (this.options.pacing ?? 'shared') === 'shared' ? new SharedPace(inventory, operation, rate, this.clock, sharedRate) : undefined;
  }

  /** TerminateMicrovm's pace: shared by the stack's fleets, or this fleet's own (burst 2: timer overshoot is made up). */
  private terminatePace(inventory: Inventory): Pace {
    return this.sharedPace(inventory, 'TerminateMicrovm', TERMINATE_RATE, TERMINATE_RATE) ?? new TokenBucket(TERMINATE_RATE, 2, this.clock);
  }

  /** The fence: a poll whose request no longer owns the fleet's generation stops before it acts. */
  protected async isSuperseded(event: CompleteEvent, progress: FleetProgress): Promise<string | undefined> {
    const fleetId = progress.op === 'delete' ? progress.fleetId : event.PhysicalResourceId!;
    const meta = await this.inventoryFor(event.ResourceProperties.TableName).getMeta(fleetId);
    // A delete's meta item is gone once another poll of it finished: draining again is harmless.
    if (progress.op === 'delete' && !meta) return undefined;
    return owns(meta, { generation: progress.generation, requestId: event.RequestId }) ? undefined : supersededBy(meta);
  }

  protected async onDelete(event: Event): Promise<OnEventResponse<FleetProgress>> {
    const physicalId = event.PhysicalResourceId!;
    // An id CloudFormation generated: our Create never answered (cancelled), but may have launched.
    const fleetId = physicalId.startsWith('fleet-') ? physicalId : this.fleetIdOf(event);
    const inventory = this.inventoryFor(event.ResourceProperties.TableName);
    const fence = await this.openGeneration(inventory, fleetId, event.RequestId);
    log('fleet delete', { fleetId, generation: fence.generation, generatedId: physicalId !== fleetId });
    const deadline = this.clock.now() + this.deleteTimeoutMs(event.ResourceProperties);
    return { PhysicalResourceId: physicalId, Progress: { op: 'delete', deadline, fleetId, generation: fence.generation } };
  }

  protected async onUpdate(event: Event): Promise<OnEventResponse<FleetProgress>> {
    return this.onCreate(event);
  }

  /** Create and Update open a new generation: the target configuration isComplete reconciles to. */
  protected async onCreate(event: Event): Promise<OnEventResponse<FleetProgress>> {
    const props = event.ResourceProperties;
    fleetSettings(props); // a malformed property fails here, before anything is written
    const fleetId = event.RequestType === 'Create' ? this.fleetIdOf(event) : event.PhysicalResourceId!;
    const version = props.ImageVersion || await this.latestActiveVersion(props.ImageArn);
    const fence = await this.openGeneration(this.inventoryFor(props.TableName), fleetId, event.RequestId);
    log('fleet generation opened', { fleetId, generation: fence.generation, imageVersion: version });
    const deadline = this.clock.now() + this.timeoutMs(props);
    return { PhysicalResourceId: fleetId, Progress: { op: 'reconcile', deadline, generation: fence.generation, version } };
  }

  private fleetIdOf(event: Event): string {
    return `fleet-${clientToken(24, event.StackId, event.LogicalResourceId)}`;
  }

  /** Takes the fence for this request (a retried onEvent finds its own generation). */
  private async openGeneration(inventory: Inventory, fleetId: string, requestId: string): Promise<MetaRecord> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const meta = await inventory.getMeta(fleetId);
      if (meta?.requestId === requestId) return meta;
      const next: MetaRecord = { pk: fleetId, sk: 'meta', generation: (meta?.generation ?? 0) + 1, requestId, nextSlot: 0 };
      if (await inventory.putMetaIf(next, meta)) return next;
    }
    throw new ProvisioningError(`MicroVmFleet ${fleetId}: another request kept changing the fleet's inventory; retry the deploy.`);
  }

  private timeoutMs(props: FleetProps): number {
    return fleetSettings(props).timeoutSeconds * 1000;
  }

  /** A Delete never fails on the properties it carries (they may come from an older construct): it empties the fleet. */
  private deleteTimeoutMs(props: FleetProps): number {
    try {
      return this.timeoutMs(props);
    } catch (err) {
      log('delete: the properties carry no valid timeout; the provider\'s own limit applies', { error: errorName(err) });
      return MAX_HANDLER_WAIT_SECONDS * 1000;
    }
  }

  // ----------------------------------------------------------------------------------------------
  // Create / Update

  private async reconcileStep(event: CompleteEvent, progress: ReconcileProgress): Promise<IsCompleteResponse> {
    const props = event.ResourceProperties;
    const version = progress.version;
    const target: Target = {
      fleetId: event.PhysicalResourceId!,
      props,
      settings: fleetSettings(props),
      version,
      hash: configHash(props, version),
      generation: progress.generation,
      requestId: event.RequestId,
    };
    const inventory = this.inventoryFor(props.TableName);
    const stepEnd = this.clock.now() + this.stepBudgetMs;
    const work: StepWork = {
      background: new Background(),
      launcher: new Launcher(this.runClient, {
        rate: target.settings.launchRate,
        clock: this.clock,
        random: this.random,
        adaptive: this.options.pacing === 'adaptive',
        pace: this.sharedPace(inventory, 'RunMicrovm', target.settings.launchRate, DEFAULT_LAUNCH_RATE),
      }),
      buckets: {
        terminate: this.terminatePace(inventory),
        suspend: new TokenBucket(SUSPEND_RATE, 1, this.clock),
        resume: new TokenBucket(RESUME_RATE, 1, this.clock),
      },
      stepEnd,
      observeEnd: stepEnd + this.observeGraceMs(),
      sendsPending: true,
      observedAllAt: 0,
      launched: 0,
      failedLaunches: 0,
    };
    try {
      return await this.reconcileCalls(event, progress, target, inventory, work);
    } finally {
      this.publishMetrics(target, work);
    }
  }

  /**
   * The fleet's metrics as this deploy sees them (issue 14: published by the reconciler and the
   * provider alike, lambda/fleet/metrics.ts): the gauges from the last observation of this call, and
   * what it launched. One EMF line per isComplete call that observed the fleet.
   */
  private publishMetrics(target: Target, work: StepWork): void {
    if (!work.observed) return;
    const counts = instanceCounts(work.observed);
    publishFleetMetrics(this.options.metrics ?? STDOUT_SINK, target.fleetId, {
      DesiredCount: target.settings.desired,
      ReadyCount: counts.ready,
      RunningCount: counts.running,
      SuspendedCount: counts.suspended,
      PendingCount: counts.pending,
      Launched: work.launched,
      FailedLaunches: work.failedLaunches,
    }, this.clock.now());
  }

  private async reconcileCalls(event: CompleteEvent, progress: ReconcileProgress, target: Target, inventory: Inventory,
    work: StepWork): Promise<IsCompleteResponse> {
    const stepEnd = work.stepEnd;
    for (;;) {
      const meta = await inventory.getMeta(target.fleetId);
      if (!owns(meta, target)) {
        await work.background.settle();
        return this.superseded(target, meta);
      }
      if (event.RequestType === 'Create' && meta!.failure) {
        await work.background.settle();
        return this.cleanUpFailedCreate(event, target, inventory, meta!, stepEnd);
      }
      try {
        work.background.check();
        if (this.clock.now() > progress.deadline) {
          throw new ProvisioningError(`MicroVmFleet ${target.fleetId} did not converge in time: ${await this.summary(inventory, target)}. ` +
            'Raise `timeout`, lower `desiredCount`, or raise `launchRate` (and the RunMicrovm rate quota).');
        }
        const response = await this.reconcileRound(event, target, inventory, meta!, work);
        const end = work.sendsPending ? stepEnd : work.observeEnd;
        if (response || this.clock.now() + ROUND_MS >= end) {
          await work.background.settle();
          work.background.check();
          return response ?? { IsComplete: false };
        }
      } catch (err) {
        await work.background.settle();
        if (event.RequestType !== 'Create') throw asProvisioningError(err);
        // Clean up before reporting: the rollback's Delete then finds nothing left.
        const failure = asProvisioningError(err).message;
        log('create failed: terminating what was launched', { fleetId: target.fleetId, error: errorName(err) });
        if (!await inventory.putMetaIf({ ...meta!, failure }, target)) return this.superseded(target, await inventory.getMeta(target.fleetId));
        continue;
      }
      await this.clock.sleep(ROUND_MS);
    }
  }

  /** A newer request took the fleet during this step: it stops without acting further. */
  private superseded(target: Fence & { fleetId: string }, meta: MetaRecord | undefined): never {
    log('stale waiter: a later request owns the resource, stopping without acting', { fleetId: target.fleetId, generation: target.generation, current: meta?.generation });
    throw new ProvisioningError(`request ${target.requestId} was superseded (${supersededBy(meta)}): stopped without acting.`);
  }

  /**
   * One round: observe, plan, act. Launches, terminations, suspends and resumes run in the
   * background at their own pace while the following rounds keep observing; a round never sends
   * twice for a slot whose call is still in flight. Answers only when the fleet has converged.
   */
  private async reconcileRound(event: CompleteEvent, target: Target, inventory: Inventory, meta: MetaRecord,
    work: StepWork): Promise<IsCompleteResponse | undefined> {
    const fleetId = target.fleetId;
    const busy = work.background;
    let records = await inventory.listSlots(fleetId);
    // Launches whose outcome is unknown (a crash, or retries exhausted): re-issue the recorded tokens.
    records = await this.resolveLaunching(event, inventory, records, work.stepEnd, work.launcher, busy.launching);
    const full = this.clock.now() - work.observedAllAt >= FULL_OBSERVE_MS;
    records = await this.observeStates(inventory, records, full ? 'all' : 'changing');
    if (full) work.observedAllAt = this.clock.now();
    work.observed = records;
    // What this step already asked for counts as done for the plan.
    const stopping = (r: SlotRecord) => busy.terminating.has(r.sk) || (busy.terminated.has(r.sk) && !['TERMINATED', 'GONE'].includes(r.state ?? ''));
    const planned = records.map((r) => (stopping(r) ? { ...r, state: 'TERMINATING' }
      : busy.suspending.has(r.sk) && r.state === 'RUNNING' ? { ...r, state: 'SUSPENDING' } : r));

    const p = plan({
      slots: planned,
      target: {
        generation: target.generation,
        configHash: target.hash,
        desired: target.settings.desired,
        updatePolicy: target.settings.updatePolicy,
        batchSize: target.settings.batchSize,
        suspendAfterLaunch: target.settings.suspendAfterLaunch,
      },
      fenceGeneration: meta.generation,
      limits: { launchRate: target.settings.launchRate, capacity: meta.capacity },
    });
    for (const reason of p.reasons) log('plan', { fleetId, reason });
    if (p.drop.length) {
      log('instances found stopped: dropped from the inventory, replaced', { fleetId, count: p.drop.length });
      await inventory.deleteSlots(fleetId, p.drop);
    }
    if (p.converged) {
      const current = records.filter((r) => r.configHash === target.hash && !p.drop.includes(r.sk));
      log('fleet converged', { fleetId, instances: current.length });
      return { IsComplete: true, Data: this.attributes(target, current) };
    }
    if (p.quotaBlocked) {
      throw await this.quotaError(undefined, target, records.filter((r) => r.phase === 'LAUNCHED' && r.state !== 'TERMINATING').length);
    }
    work.sendsPending = p.launches > 0 || p.terminate.length > 0 || p.suspend.length > 0 || p.resume.length > 0
      || records.some((r) => r.phase === 'LAUNCHING');
    this.act(p, records, inventory, fleetId, work);
    // Launches are recorded (and so counted in flight) ahead of the launcher, at most 12 seconds of
    // its rate. A queued launch holds no memory; a rolling batch counts it, so the default batch (10
    // seconds of the rate) still leaves launches really sent in flight. A queue of 3 seconds for
    // replacements ran dry between slow rounds (issue 13: rolling 1000 at 0.74 of ideal, 4.3 launches/s).
    const chunk = Math.max(1, Math.ceil(target.settings.launchRate * LAUNCH_QUEUE_SECONDS));
    const launches = Math.min(p.launches, Math.max(0, chunk - busy.launching.size));
    if (launches > 0 && this.clock.now() < work.stepEnd) {
      // Recorded now (the next round counts them in flight); sent in the background.
      const fresh = await this.recordLaunches(event, target, inventory, records, launches);
      for (const r of fresh) busy.launching.add(r.clientToken);
      busy.run(() => this.sendLaunches(event, target, inventory, records, fresh, work)
        .finally(() => fresh.forEach((r) => busy.launching.delete(r.clientToken))));
    }
    log('waiting for instances', { fleetId, ...p.counts, desired: target.settings.desired });
    return undefined;
  }

  /** Starts the terminations, suspends and resumes of a plan in the background, each at the service's pace. */
  private act(p: Plan, records: SlotRecord[], inventory: Inventory, fleetId: string, work: StepWork): void {
    const busy = work.background;
    const bySk = new Map(records.map((r) => [r.sk, r]));
    const pick = (sks: readonly string[], inFlight: Set<string>) => sks.map((sk) => bySk.get(sk)!)
      .filter((r) => r.phase === 'LAUNCHED' && !inFlight.has(r.sk));
    const start = (what: string, recs: SlotRecord[], inFlight: Set<string>, call: () => Promise<SlotRecord[]>) => {
      if (!recs.length) return;
      log(what, { fleetId, count: recs.length });
      recs.forEach((r) => inFlight.add(r.sk));
      busy.run(async () => {
        try {
          const done = await call();
          if (done.length) await inventory.putSlots(done);
        } finally {
          recs.forEach((r) => inFlight.delete(r.sk));
        }
      });
    };
    const terminate = pick(p.terminate, busy.terminating).filter((r) => !busy.terminated.has(r.sk));
    // Kept on record as TERMINATING (they still hold memory) until observed stopped.
    start('terminating', terminate, busy.terminating, async () => {
      const done = await this.terminate(terminate, work.buckets.terminate, work.stepEnd);
      done.forEach((r) => busy.terminated.add(r.sk));
      return done.map((r) => ({ ...r, state: 'TERMINATING' }));
    });
    const suspend = pick(p.suspend, busy.suspending);
    start('suspending (warm pool)', suspend, busy.suspending, async () => (await this.transition(suspend, work.buckets.suspend, work.stepEnd,
      (id) => new SuspendMicrovmCommand({ microvmIdentifier: id }))).map((r) => ({ ...r, state: 'SUSPENDING' })));
    const resume = pick(p.resume, busy.resuming);
    // Stays SUSPENDED on record until observed RUNNING (the resume hook runs first).
    start('resuming (warm pool off)', resume, busy.resuming, async () => {
      await this.transition(resume, work.buckets.resume, work.stepEnd, (id) => new ResumeMicrovmCommand({ microvmIdentifier: id }));
      return [];
    });
  }

  private async cleanUpFailedCreate(event: CompleteEvent, target: Target, inventory: Inventory, meta: MetaRecord,
    stepEnd: number): Promise<IsCompleteResponse> {
    const { done, terminated } = await this.drain(event, inventory, target.fleetId, stepEnd);
    if (!done) return { IsComplete: false };
    await inventory.deleteMeta(target.fleetId);
    throw new ProvisioningError(`${meta.failure} Every MicroVM this deploy launched was terminated${terminated ? ` (${terminated} in the last step)` : ''}; the inventory is empty.`);
  }

  /** Reserves slots under the fence and records them LAUNCHING, BEFORE any RunMicrovm. */
  private async recordLaunches(event: CompleteEvent, target: Target, inventory: Inventory, records: SlotRecord[],
    count: number): Promise<SlotRecord[]> {
    const props = target.props;
    // Reserve the slot numbers under the fence: a slot (and so a token) is never used twice.
    const meta = await inventory.getMeta(target.fleetId);
    if (!owns(meta, target)) this.superseded(target, meta);
    const inGen = records.filter((r) => r.generation === target.generation).map((r) => r.slot);
    const base = Math.max(meta!.nextSlot, inGen.length ? Math.max(...inGen) + 1 : 0);
    if (!await inventory.putMetaIf({ ...meta!, nextSlot: base + count }, target)) this.superseded(target, await inventory.getMeta(target.fleetId));
    const now = this.clock.now();
    const fresh: SlotRecord[] = [];
    for (let i = 0; i < count; i++) {
      const slot = base + i;
      fresh.push({
        pk: target.fleetId,
        sk: slotKey(target.generation, slot),
        generation: target.generation,
        slot,
        clientToken: clientToken(64, target.fleetId, String(target.generation), event.RequestId, String(slot)),
        configHash: target.hash,
        imageArn: props.ImageArn,
        imageVersion: target.version,
        phase: 'LAUNCHING',
        recordedAt: now,
      });
    }
    await inventory.putSlots(fresh);
    return fresh;
  }

  /**
   * Sends recorded launches. The fence is read again first: a Delete that took the fleet in between
   * finds these records and resolves them itself; nothing is sent from here.
   */
  private async sendLaunches(event: CompleteEvent, target: Target, inventory: Inventory, records: SlotRecord[], fresh: SlotRecord[],
    work: StepWork): Promise<void> {
    const props = target.props;
    const after = await inventory.getMeta(target.fleetId);
    if (!owns(after, target)) {
      await inventory.deleteSlots(target.fleetId, fresh.map((r) => r.sk));
      this.superseded(target, after);
    }
    log('launching', { fleetId: target.fleetId, count: fresh.length, generation: target.generation });
    const input = { ...launchInput(props, target.version), runHookPayload: await this.payload(props, event.RequestId) };
    const requests = fresh.map((r) => ({ clientToken: r.clientToken, input }));
    const results = await this.runBatch(inventory, fresh, requests, work.stepEnd, work.launcher, true, target);
    work.launched += results.filter((r) => r.microvmId).length;
    work.failedLaunches += results.filter((r) => r.definitelyNotLaunched).length;
    const launchedBefore = records.filter((r) => r.phase === 'LAUNCHED' && r.state !== 'TERMINATING').length;
    const quota = results.find((r) => r.error && classifyError(r.error) === 'quota');
    if (quota) {
      // Learn how many instances the account's memory quota lets this fleet hold; the planner
      // launches no more than that, and replaces terminate-first when it must.
      const held = (await inventory.listSlots(target.fleetId)).filter((r) => r.phase === 'LAUNCHED' && !['TERMINATING', 'TERMINATED', 'GONE'].includes(r.state ?? '')).length;
      log('RunMicrovm refused by the memory quota: fleet capacity learned', { fleetId: target.fleetId, capacity: held });
      const m = await inventory.getMeta(target.fleetId);
      if (owns(m, target)) await inventory.putMetaIf({ ...m!, capacity: held }, target);
      const replaceable = records.some((r) => r.configHash !== target.hash && r.phase === 'LAUNCHED' && r.state !== 'TERMINATING');
      if (!replaceable) throw await this.quotaError(quota.error, target, launchedBefore + results.filter((r) => r.microvmId).length);
    }
    const refused = results.find((r) => r.definitelyNotLaunched && classifyError(r.error) !== 'quota');
    if (refused) {
      throw new ProvisioningError(`RunMicrovm refused to launch a MicroVM of ${props.ImageArn} version ${target.version}: ${describeError(refused.error)}. ` +
        'Check that the version is ACTIVE and SUCCESSFUL, that the connectors are ACTIVE, and the fleet\'s settings.');
    }
  }

  /**
   * Sends the requests through the rate limiter and records each outcome as it settles (in chunks):
   * launched → LAUNCHED with the id; refused or never sent → record removed; unknown → stays LAUNCHING.
   */
  private async runBatch(inventory: Inventory, recs: SlotRecord[], requests: LaunchRequest[], stepEnd: number,
    launcher: Launcher, fresh: boolean, fence?: Fence): Promise<LaunchResult[]> {
    const byToken = new Map(recs.map((r) => [r.clientToken, r]));
    let toPut: SlotRecord[] = [];
    let toDelete: string[] = [];
    const flush = async () => {
      const p = toPut;
      const d = toDelete;
      toPut = [];
      toDelete = [];
      // A request superseded meanwhile writes nothing back: the request that took the fleet
      // resolved these records' tokens itself (they were recorded before the fence was re-read).
      if (fence && !owns(await inventory.getMeta(recs[0].pk), fence)) return;
      if (p.length) await inventory.putSlots(p);
      if (d.length) await inventory.deleteSlots(recs[0].pk, d);
    };
    const callsBefore = launcher.calls;
    const results = await launcher.launch(requests, {
      sendUntil: stepEnd,
      onResult: async (r) => {
        const rec = byToken.get(r.clientToken)!;
        if (r.microvmId) {
          toPut.push({ ...rec, phase: 'LAUNCHED', microvmId: r.microvmId, endpoint: r.endpoint, state: r.state ?? 'PENDING', launchedAt: this.clock.now() });
        } else if (r.definitelyNotLaunched) {
          toDelete.push(rec.sk);
        }
        if (toPut.length + toDelete.length >= 25) await flush();
      },
    });
    // Fresh tokens never sent (time budget or a quota stop) launched nothing; a re-issue not sent
    // this time stays LAUNCHING: an earlier process may have sent it.
    if (fresh) for (const r of results) if (r.skipped) toDelete.push(byToken.get(r.clientToken)!.sk);
    await flush();
    const launched = results.filter((r) => r.microvmId).length;
    log('launch batch settled', { launched, refused: results.filter((r) => r.definitelyNotLaunched).length, unknown: results.filter((r) => !r.microvmId && !r.definitelyNotLaunched && !r.skipped).length, skipped: results.filter((r) => r.skipped).length, calls: launcher.calls - callsBefore });
    return results;
  }

  private async quotaError(err: unknown, target: Target, holding: number): Promise<ProvisioningError> {
    let memory = SERVICE_DEFAULT_MEMORY_MIB;
    try {
      const v = await this.client.send(new GetMicrovmImageVersionCommand({ imageIdentifier: target.props.ImageArn, imageVersion: target.version }));
      memory = v.resources?.[0]?.minimumMemoryInMiB ?? SERVICE_DEFAULT_MEMORY_MIB;
    } catch (e) {
      log('could not read the image memory size', { error: errorName(e) });
    }
    const e = (err ?? {}) as { serviceCode?: string; quotaCode?: string };
    const code = e.quotaCode ? ` (quota ${e.serviceCode ?? 'lambda'}/${e.quotaCode})` : '';
    const gib = (mib: number) => `${(mib / 1024).toFixed(mib % 1024 ? 1 : 0)} GiB`;
    const desired = target.settings.desired;
    const need = desired * memory;
    const message = err ? errorMessage(err) : 'RunMicrovm was refused earlier in this deploy.';
    return new ProvisioningError(
      `ServiceQuotaExceededException${code}: ${message} The account's MicroVM memory quota counts every RUNNING or SUSPENDED MicroVM in the Region. ` +
      `This fleet needs ${desired} × ${memory} MiB = ${gib(need)} ` +
      `and held ${holding} × ${memory} MiB = ${gib(holding * memory)} when the service refused; the rest of the quota (default 400 GB, 1,024 GB in us-east-1, us-east-2, us-west-2 and ap-northeast-1) is used by other MicroVMs. ` +
      'Lower desiredCount or the image memory, terminate other MicroVMs, or request a quota increase in Service Quotas.');
  }

  // ----------------------------------------------------------------------------------------------
  // Shared steps

  /** Re-issues the recorded tokens of LAUNCHING records, with the configuration they were recorded with. */
  private async resolveLaunching(event: CompleteEvent, inventory: Inventory, records: SlotRecord[], stepEnd: number,
    launcher: Launcher, inFlight: ReadonlySet<string> = new Set()): Promise<SlotRecord[]> {
    const launching = records.filter((r) => r.phase === 'LAUNCHING' && !inFlight.has(r.clientToken));
    if (!launching.length) return records;
    const fleetId = launching[0].pk;
    const candidates = [event.ResourceProperties, event.OldResourceProperties].filter((p): p is FleetProps => !!p);
    const requests: LaunchRequest[] = [];
    const unresolvable: SlotRecord[] = [];
    for (const r of launching) {
      const props = candidates.find((p) => p.ImageArn === r.imageArn && configHash(p, r.imageVersion) === r.configHash);
      if (!props) {
        unresolvable.push(r);
        continue;
      }
      const runHookPayload = await this.payload(props, event.RequestId);
      requests.push({ clientToken: r.clientToken, input: { ...launchInput(props, r.imageVersion), runHookPayload } });
    }
    if (unresolvable.length) {
      // Two configurations back, with a crash in between: the request cannot be rebuilt byte for byte.
      log('launch records of an older configuration cannot be re-issued; dropped', { count: unresolvable.length });
      await inventory.deleteSlots(fleetId, unresolvable.map((r) => r.sk));
    }
    if (requests.length) {
      log('re-issuing recorded launch tokens', { count: requests.length });
      const results = await this.runBatch(inventory, launching, requests, stepEnd, launcher, false);
      const conflict = results.find((r) => r.error && classifyError(r.error) === 'conflict');
      if (conflict) {
        throw new ProvisioningError(`re-issuing a recorded launch token was refused because the token was already used with other parameters (${describeError(conflict.error)}): ` +
          'the /run payload secret probably changed between a launch and its retry, so that MicroVM cannot be identified. ' +
          `Find it with ListMicrovms (image ${launching[0].imageArn}) and terminate it by hand, then retry.`);
      }
    }
    return inventory.listSlots(fleetId);
  }

  /**
   * Observes the instances and records the states seen; an instance no longer listed past the grace
   * period is GONE (the planner drops and replaces it). Every instance is observed when `watch` says
   * so (at most every 30 s within a step, and always on a delete), by ListMicrovms pages per (image,
   * version); in between, only the instances whose state is about to change (PENDING, SUSPENDING,
   * TERMINATING, ...), by GetMicrovm each when they are few, so that a large fleet's settled
   * instances are not listed again every round.
   */
  private async observeStates(inventory: Inventory, records: SlotRecord[], watch: ObserveScope = 'all'): Promise<SlotRecord[]> {
    const launched = records.filter((r) => r.phase === 'LAUNCHED');
    const watched = watch === 'all' ? launched : launched.filter((r) => !READY_MICROVM_STATES.has(r.state ?? ''));
    if (!watched.length) return records;
    const vms = new Map<string, string>();
    if (watch === 'changing' && watched.length <= MAX_GETS_PER_ROUND) {
      await paced(watched, new TokenBucket(GET_RATE, GET_RATE, this.clock), this.clock, Infinity, async (r) => {
        try {
          const vm = await this.client.send(new GetMicrovmCommand({ microvmIdentifier: r.microvmId! }));
          if (vm.state) vms.set(r.microvmId!, vm.state);
        } catch (err) {
          if (classifyError(err) !== 'notFound') throw err;
        }
      }, 16);
    } else {
      const groups = new Map(watched.map((r) => [`${r.imageArn}\u0000${r.imageVersion}`, r]));
      for (const g of groups.values()) {
        for (const vm of await listMicrovms(this.client, { imageArn: g.imageArn, imageVersion: g.imageVersion, liveOnly: false })) {
          if (vm.microvmId && vm.state) vms.set(vm.microvmId, vm.state);
        }
      }
    }
    const now = this.clock.now();
    const watchedSks = new Set(watched.map((r) => r.sk));
    const changed: SlotRecord[] = [];
    const out = records.map((r) => {
      if (!watchedSks.has(r.sk)) return r;
      const seen = vms.get(r.microvmId!);
      const state = seen ?? (now - (r.launchedAt ?? r.recordedAt) < LIST_GRACE_MS ? r.state ?? 'PENDING' : 'GONE');
      if (state === r.state) return r;
      const next = { ...r, state };
      changed.push(next);
      return next;
    });
    if (changed.length) await inventory.putSlots(changed.filter((r) => r.state !== 'GONE' && r.state !== 'TERMINATED'));
    return out;
  }

  /** TerminateMicrovm at the service's pace; returns the records whose instances are stopping or gone. */
  private async terminate(records: SlotRecord[], bucket: Pace, stepEnd: number): Promise<SlotRecord[]> {
    // Already gone, or already TERMINATED: nothing more to do for it.
    return this.transition(records, bucket, stepEnd, (id) => new TerminateMicrovmCommand({ microvmIdentifier: id }),
      (err) => classifyError(err) === 'notFound');
  }

  /**
   * One call per instance at `rate`, sending nothing after `until`; returns the records whose call
   * was accepted (or whose refusal `settled` says needs nothing more). An instance gone or in
   * another state is observed again in the next round.
   */
  private async transition(records: SlotRecord[], bucket: Pace, until: number, command: (microvmId: string) => any,
    settled: (err: unknown) => boolean = () => false): Promise<SlotRecord[]> {
    const done: SlotRecord[] = [];
    await paced(records, bucket, this.clock, until, async (r) => {
      try {
        await this.client.send(command(r.microvmId!));
      } catch (err) {
        if (settled(err)) {
          done.push(r);
          return;
        }
        // Gone, or no longer in that state: observed again in the next round.
        if (['notFound', 'conflict', 'busy'].includes(classifyError(err))) return;
        throw err;
      }
      done.push(r);
    });
    return done;
  }

  // ----------------------------------------------------------------------------------------------
  // Delete (and the clean-up of a failed Create)

  private async deleteStep(event: CompleteEvent, progress: DeleteProgress): Promise<IsCompleteResponse> {
    const inventory = this.inventoryFor(event.ResourceProperties.TableName);
    const fleetId = progress.fleetId;
    const fence: Fence = { generation: progress.generation, requestId: event.RequestId };
    const stepEnd = this.clock.now() + this.stepBudgetMs;
    const observeEnd = stepEnd + this.observeGraceMs();
    for (;;) {
      const meta = await inventory.getMeta(fleetId);
      // The meta item is gone once a delete finished: another poll of this delete did the work.
      if (meta && !owns(meta, fence)) this.superseded({ ...fence, fleetId }, meta);
      const { done, remaining, terminated } = await this.drain(event, inventory, fleetId, stepEnd);
      if (done) {
        await inventory.deleteMeta(fleetId);
        return { IsComplete: true };
      }
      if (this.clock.now() > progress.deadline) {
        throw new ProvisioningError(`MicroVmFleet ${fleetId} could not stop every instance in time: ${remaining.length} left ` +
          `(${remaining.slice(0, MAX_IDS_IN_MESSAGE).map((r) => `${r.microvmId ?? 'launching'} ${r.state ?? ''}`.trim()).join(', ')}). ` +
          'Retry the delete; TerminateMicrovm is idempotent.');
      }
      // Past the budget, only to see the last instances stop: nothing is left to send.
      const onlyStopping = remaining.every((r) => r.phase === 'LAUNCHED' && r.state === 'TERMINATING');
      if (this.clock.now() + ROUND_MS >= (onlyStopping ? observeEnd : stepEnd)) return { IsComplete: false };
      if (!terminated) await this.clock.sleep(ROUND_MS);
    }
  }

  /**
   * One round of emptying the fleet: resolve unknown launches, terminate whatever still runs,
   * drop records whose instances have stopped. Done when the inventory is empty.
   */
  private async drain(event: CompleteEvent, inventory: Inventory, fleetId: string, stepEnd: number):
  Promise<{ done: boolean; terminated: number; remaining: SlotRecord[] }> {
    let records = await inventory.listSlots(fleetId);
    if (records.some((r) => r.phase === 'LAUNCHING')) {
      const rate = Number(event.ResourceProperties.LaunchRate);
      const launcher = new Launcher(this.runClient, { rate: rate > 0 ? rate : 1, clock: this.clock, random: this.random });
      records = await this.resolveLaunching(event, inventory, records, stepEnd, launcher);
    }
    // Terminate first (TerminateMicrovm is idempotent and a stopped instance answers notFound), then
    // observe: the first round of a large delete sends its calls without listing the fleet first.
    const running = records.filter((r) => r.phase === 'LAUNCHED' && !['TERMINATING', 'TERMINATED', 'GONE'].includes(r.state ?? ''));
    let terminated = 0;
    if (running.length) {
      log('terminating', { fleetId, count: running.length });
      const done = await this.terminate(running, this.terminatePace(inventory), stepEnd);
      terminated = done.length;
      if (done.length) {
        const stopping = new Map(done.map((r) => [r.sk, { ...r, state: 'TERMINATING' }]));
        await inventory.putSlots([...stopping.values()]);
        records = records.map((r) => stopping.get(r.sk) ?? r);
      }
    }
    records = await this.observeStates(inventory, records);
    const stopped = records.filter((r) => r.state === 'TERMINATED' || r.state === 'GONE');
    if (stopped.length) await inventory.deleteSlots(fleetId, stopped.map((r) => r.sk));
    const remaining = records.filter((r) => !stopped.includes(r));
    return { done: remaining.length === 0, terminated, remaining };
  }

  // ----------------------------------------------------------------------------------------------

  private async latestActiveVersion(imageArn: string): Promise<string> {
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    if (!image.latestActiveImageVersion) {
      throw new ProvisioningError(`MicroVM image ${imageArn} has no active version to launch (state ${image.state}): build it first, or set imageVersion.`);
    }
    return image.latestActiveImageVersion;
  }

  /**
   * The /run payload: inline, or read from Secrets Manager once per CloudFormation request (so a
   * rotated secret reaches the next deploy's launches, whichever Lambda container serves it), never logged.
   */
  private async payload(props: FleetProps, requestId: string): Promise<string | undefined> {
    if (!props.RunHookPayloadSecretArn) return props.RunHookPayload;
    const arn = props.RunHookPayloadSecretArn;
    if (this.payloads.requestId !== requestId) this.payloads = { requestId, values: new Map() };
    let value = this.payloads.values.get(arn);
    if (value === undefined) {
      const secrets = this.options.secrets ?? new SecretsManagerClient({});
      const out = await secrets.send(new GetSecretValueCommand({ SecretId: arn }));
      if (out.SecretString === undefined) {
        throw new ProvisioningError(`secret ${arn} has no SecretString: the /run payload must be text (at most ${MAX_RUN_HOOK_PAYLOAD_BYTES} bytes).`);
      }
      value = out.SecretString;
      const bytes = Buffer.byteLength(value, 'utf8');
      if (bytes > MAX_RUN_HOOK_PAYLOAD_BYTES) {
        throw new ProvisioningError(`secret ${arn} holds ${bytes} bytes; RunMicrovm takes a /run payload of at most ${MAX_RUN_HOOK_PAYLOAD_BYTES} bytes: shorten it, or pass a reference the instance resolves.`);
      }
      this.payloads.values.set(arn, value);
    }
    return value;
  }

  private attributes(target: Target, current: SlotRecord[]): Record<string, string> {
    const sorted = [...current].sort((a, b) => a.sk.localeCompare(b.sk));
    const small = sorted.length <= FLEET_ATTRIBUTE_MAX_INSTANCES;
    return {
      [FleetAttr.FLEET_ID]: target.fleetId,
      [FleetAttr.IMAGE_VERSION]: target.version,
      [FleetAttr.INSTANCE_COUNT]: String(sorted.length),
      [FleetAttr.INSTANCE_IDS]: small ? sorted.map((r) => r.microvmId).join(',') : '',
      [FleetAttr.ENDPOINTS]: small ? sorted.map((r) => r.endpoint).join(',') : '',
    };
  }

  private async summary(inventory: Inventory, target: Target): Promise<string> {
    const records = await inventory.listSlots(target.fleetId);
    const counts: Record<string, number> = {};
    for (const r of records) {
      const k = `${r.configHash === target.hash ? 'target' : 'old'} ${r.phase === 'LAUNCHING' ? 'LAUNCHING' : r.state}`;
      counts[k] = (counts[k] ?? 0) + 1;
    }
    return `${target.settings.desired} desired; inventory: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ') || 'empty'}`;
  }
}

/** Runs `fn` over `items` at the bucket's pace, up to 16 at once (covers the latency at 10/s), sending nothing after `until`. */
async function paced<T>(items: T[], bucket: Pace, clock: Clock, until: number,
  fn: (item: T) => Promise<void>, concurrency = 16): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      if (clock.now() >= until) return; // the rest waits for the next round or poll
      const i = next++;
      if (i >= items.length) return;
      await bucket.take();
      await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

function supersededBy(meta: MetaRecord | undefined): string {
  return meta ? `generation ${meta.generation} of request ${meta.requestId} owns the fleet` : 'the fleet was deleted';
}

function asProvisioningError(err: unknown): Error {
  if (err instanceof ProvisioningError) return err;
  return new ProvisioningError(`MicroVmFleet: ${describeError(err)}`);
}
