import {
  GetMicrovmImageCommand,
  GetMicrovmImageVersionCommand,
  LambdaMicrovmsClient,
  SuspendMicrovmCommand,
  TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { configHash, launchInput } from './fleet-config';
import { Inventory, MetaRecord, SlotRecord, slotKey } from './inventory';
import {
  describeError,
  isQuotaExceeded,
  LaunchRequest,
  LaunchResult,
  Launcher,
  LauncherClock,
  observe,
  TokenBucket,
} from './launcher';
import { FLEET_ATTRIBUTE_MAX_INSTANCES, FleetAttr, FleetProps } from '../../src/private/wire';
import { errorMessage, errorName, isConflict, isNotFound } from '../shared/errors';
import { CustomResourceHandler, ProvisioningError } from '../shared/framework';
import type { IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse, Steps } from '../shared/framework';
import { log } from '../shared/log';
import { toBool, toInt } from '../shared/props';
import { clientToken } from '../shared/tokens';

type Event = OnEventRequest<FleetProps>;
type CompleteEvent = IsCompleteRequest<FleetProps>;
type ReconcileProgress = { readonly op: 'reconcile'; readonly deadline: number; readonly generation: number; readonly version: string };
type FleetProgress = { readonly op: 'done' | 'delete'; readonly deadline: number } | ReconcileProgress;

/** States in which an instance holds memory and serves (or will, on resume). */
const ALIVE = new Set(['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED']);
/** A launched instance counts toward the desired count once in one of these. */
const READY = new Set(['RUNNING', 'SUSPENDED']);
/** An instance missing from ListMicrovms this long after launch is gone (the list is eventually consistent). */
const LIST_GRACE_MS = 60_000;
const DEFAULT_TIMEOUT_SECONDS = 3300;
/** Of the isComplete function's 2 minutes: room for the in-flight calls and the final writes. */
const DEFAULT_STEP_BUDGET_MS = 75_000;
/** The service's TerminateMicrovm rate is 10/s and SuspendMicrovm 2/s: stay just under. */
const TERMINATE_RATE = 8;
const SUSPEND_RATE = 2;
const DEFAULT_MEMORY_MIB = 2048;
const MAX_PAYLOAD_BYTES = 4096;
const MAX_IDS_IN_MESSAGE = 10;

export interface FleetHandlerOptions {
  /** Epoch ms and waiting; tests pass the emulator's manual clock. */
  readonly clock?: LauncherClock;
  /** The client RunMicrovm goes through: it must not retry on its own (maxAttempts 1). @default the main client */
  readonly runClient?: LambdaMicrovmsClient;
  readonly secrets?: SecretsManagerClient;
  /** Work per isComplete call before it returns (in-flight calls finish after it). */
  readonly stepBudgetMs?: number;
  readonly random?: () => number;
}

/** What the current request asks for. */
interface Target {
  readonly fleetId: string;
  readonly props: FleetProps;
  readonly desired: number;
  readonly version: string;
  readonly hash: string;
  readonly generation: number;
}

/**
 * Custom::LambdaMicroVmFleet: N MicroVMs from one image version, driven by an inventory (a DynamoDB
 * table the stack owns) so that every retried or restarted call converges.
 *
 * - onEvent opens a generation (a retried onEvent finds and reuses it) and resolves the version.
 * - Each isComplete is one step of a state machine read from the inventory: re-issue the recorded
 *   tokens of launches whose outcome is unknown; observe states with ListMicrovms pages; drop
 *   instances found terminated (idle policy, 8-hour cap); suspend warm-pool instances; terminate
 *   surplus and replaced instances; launch what is missing at the configured rate (the token is
 *   recorded BEFORE RunMicrovm). It completes when the desired count of the target configuration
 *   is ready and nothing else is left.
 * - A failed Create records the failure, terminates everything it launched over the following
 *   polls, and only then reports the failure: the framework sends no Delete after a failed Create.
 * - Delete terminates every inventoried instance, waits until they stop, and clears the inventory.
 */
export class FleetHandler extends CustomResourceHandler<FleetProps, FleetProgress> {
  protected readonly steps: Steps<FleetProps, FleetProgress> = {
    done: { check: async () => ({ IsComplete: true }) },
    delete: { check: (event, progress) => this.deleteStep(event, progress) },
    reconcile: { check: (event, progress) => this.reconcileOrCleanUp(event, progress) },
  };

  private readonly runClient: LambdaMicrovmsClient;
  private readonly stepBudgetMs: number;
  private readonly random: () => number;
  private readonly payloads = new Map<string, string>();

  constructor(
    private readonly client: LambdaMicrovmsClient,
    private readonly inventoryFor: (tableName: string) => Inventory,
    private readonly options: FleetHandlerOptions = {},
  ) {
    super({ clock: options.clock });
    this.runClient = options.runClient ?? client;
    this.stepBudgetMs = options.stepBudgetMs ?? DEFAULT_STEP_BUDGET_MS;
    this.random = options.random ?? Math.random;
  }

  protected async onDelete(event: Event): Promise<OnEventResponse<FleetProgress>> {
    const fleetId = event.PhysicalResourceId!;
    if (!fleetId.startsWith('fleet-')) return { PhysicalResourceId: fleetId, Progress: { op: 'done', deadline: 0 } };
    return { PhysicalResourceId: fleetId, Progress: { op: 'delete', deadline: this.clock.now() + this.timeoutMs(event.ResourceProperties) } };
  }

  protected async onUpdate(event: Event): Promise<OnEventResponse<FleetProgress>> {
    return this.onCreate(event);
  }

  /** Create and Update open a new generation: the target configuration isComplete reconciles to. */
  protected async onCreate(event: Event): Promise<OnEventResponse<FleetProgress>> {
    const props = event.ResourceProperties;
    const timeout = this.timeoutMs(props);
    const fleetId = event.RequestType === 'Create'
      ? `fleet-${clientToken(24, event.StackId, event.LogicalResourceId)}`
      : event.PhysicalResourceId!;
    const desired = toInt(props.DesiredCount, 'DesiredCount') ?? 0;
    if (desired < 0) throw new ProvisioningError(`DesiredCount must be 0 or more, got ${desired}`);

    const version = props.ImageVersion || await this.latestActiveVersion(props.ImageArn);
    const inventory = this.inventoryFor(props.TableName);
    const meta = await inventory.getMeta(fleetId);
    let generation: number;
    if (meta && meta.requestId === event.RequestId) {
      generation = meta.generation; // a retried onEvent: same generation, same tokens
    } else {
      generation = (meta?.generation ?? 0) + 1;
      await inventory.putMeta({ pk: fleetId, sk: 'meta', generation, requestId: event.RequestId, nextSlot: 0 });
    }
    log('fleet generation opened', { fleetId, generation, desired, imageVersion: version });
    return { PhysicalResourceId: fleetId, Progress: { op: 'reconcile', deadline: this.clock.now() + timeout, generation, version } };
  }

  private timeoutMs(props: FleetProps): number {
    return (toInt(props.TimeoutSeconds, 'TimeoutSeconds') ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
  }

  // ----------------------------------------------------------------------------------------------
  // Create / Update

  private async reconcileOrCleanUp(event: CompleteEvent, progress: ReconcileProgress): Promise<IsCompleteResponse> {
    const props = event.ResourceProperties;
    const fleetId = event.PhysicalResourceId!;
    const inventory = this.inventoryFor(props.TableName);
    const meta = await inventory.getMeta(fleetId);
    const generation = progress.generation as number;
    if (event.RequestType === 'Create' && meta?.failure && meta.generation === generation) {
      return this.cleanUpFailedCreate(event, inventory, meta);
    }
    const target: Target = {
      fleetId,
      props,
      desired: toInt(props.DesiredCount, 'DesiredCount') ?? 0,
      version: progress.version as string,
      hash: configHash(props, progress.version as string),
      generation,
    };
    try {
      if (this.clock.now() > progress.deadline) {
        throw new ProvisioningError(`MicroVmFleet ${fleetId} did not converge in time: ${await this.summary(inventory, target)}. ` +
          'Raise `timeout`, lower `desiredCount`, or raise `launchRate` (and the RunMicrovm rate quota).');
      }
      return await this.reconcileStep(event, target, inventory, meta);
    } catch (err) {
      if (event.RequestType !== 'Create') throw asProvisioningError(err);
      // A failed Create gets no Delete from the framework: clean up first, report afterwards.
      const failure = asProvisioningError(err).message;
      log('create failed: terminating what was launched', { fleetId, error: errorName(err) });
      const m: MetaRecord = { ...(meta ?? { pk: fleetId, sk: 'meta', generation, requestId: event.RequestId, nextSlot: 0 }), failure };
      await inventory.putMeta(m);
      return this.cleanUpFailedCreate(event, inventory, m);
    }
  }

  private async cleanUpFailedCreate(event: CompleteEvent, inventory: Inventory, meta: MetaRecord): Promise<IsCompleteResponse> {
    const { done, terminated } = await this.drain(event, inventory);
    if (!done) return { IsComplete: false };
    await inventory.deleteMeta(event.PhysicalResourceId!);
    throw new ProvisioningError(`${meta.failure} Every MicroVM this deploy launched was terminated${terminated ? ` (${terminated} in the last step)` : ''}; the inventory is empty.`);
  }

  private async reconcileStep(event: CompleteEvent, target: Target, inventory: Inventory, meta: MetaRecord | undefined): Promise<IsCompleteResponse> {
    const stepEnd = this.clock.now() + this.stepBudgetMs;
    const props = target.props;
    let records = await inventory.listSlots(target.fleetId);

    // 1. Launches whose outcome is unknown (a crash, or retries exhausted): re-issue the recorded tokens.
    records = await this.resolveLaunching(event, inventory, records, stepEnd);

    // 2. Observe, drop the dead, suspend warm-pool instances.
    records = await this.observeAndPrune(inventory, records, target.fleetId);
    records = await this.suspendPending(inventory, records, stepEnd);

    // 3. Plan.
    const isReady = (r: SlotRecord) => r.phase === 'LAUNCHED' && !r.suspendPending && READY.has(r.state ?? '');
    // Stopping on their own (idle policy, 8-hour cap): neither counted nor terminated; dropped once stopped.
    const dying = records.filter((r) => r.state === 'TERMINATING');
    const current = records.filter((r) => r.configHash === target.hash && r.state !== 'TERMINATING');
    const old = records.filter((r) => r.configHash !== target.hash && r.state !== 'TERMINATING');
    const readyCurrent = current.filter(isReady).length;
    const toTerminate: SlotRecord[] = [];
    if (current.length > target.desired) {
      toTerminate.push(...byExpendability(current, isReady).slice(0, current.length - target.desired));
    }
    const keepOld = Math.min(old.length, Math.max(0, target.desired - readyCurrent));
    toTerminate.push(...byExpendability(old, isReady).slice(0, old.length - keepOld));
    let launches = Math.max(0, target.desired - current.length);
    if (old.length > 0 && props.UpdatePolicy !== 'REPLACE_ALL') {
      const batch = toInt(props.BatchSize, 'BatchSize') ?? 1;
      const inFlight = current.filter((r) => !isReady(r)).length;
      launches = Math.min(launches, Math.max(0, batch - inFlight));
    }

    if (toTerminate.length === 0 && launches === 0) {
      const pending = records.filter((r) => !isReady(r)).length;
      if (pending === 0 && dying.length === 0 && old.length === 0 && current.length === target.desired) {
        log('fleet converged', { fleetId: target.fleetId, instances: current.length });
        return { IsComplete: true, Data: this.attributes(target, current) };
      }
      log('waiting for instances', { fleetId: target.fleetId, ready: readyCurrent, desired: target.desired, pending, old: old.length });
      return { IsComplete: false };
    }

    // 4. Act: terminate first (frees memory quota for the launches), then launch.
    if (toTerminate.length) {
      log('terminating', { fleetId: target.fleetId, count: toTerminate.length });
      const done = await this.terminate(toTerminate, stepEnd);
      await inventory.deleteSlots(target.fleetId, done.map((r) => r.sk));
    }
    if (launches > 0 && this.clock.now() < stepEnd) {
      await this.launchNew(event, target, inventory, meta, records, launches, stepEnd);
    }
    return { IsComplete: false };
  }

  private async launchNew(event: CompleteEvent, target: Target, inventory: Inventory, meta: MetaRecord | undefined,
    records: SlotRecord[], count: number, stepEnd: number): Promise<void> {
    const props = target.props;
    const inGen = records.filter((r) => r.generation === target.generation).map((r) => r.slot);
    const base = Math.max(meta?.generation === target.generation ? meta.nextSlot : 0, inGen.length ? Math.max(...inGen) + 1 : 0);
    // Reserve the slot numbers first: a slot (and so a token) is never used twice, even if its record is later removed.
    await inventory.putMeta({
      ...(meta ?? { pk: target.fleetId, sk: 'meta', generation: target.generation, requestId: event.RequestId }),
      generation: target.generation,
      nextSlot: base + count,
      failure: undefined,
    } as MetaRecord);
    const now = this.clock.now();
    const suspend = toBool(props.SuspendAfterLaunch);
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
        suspendPending: suspend || undefined,
        recordedAt: now,
      });
    }
    // Recorded BEFORE RunMicrovm.
    await inventory.putSlots(fresh);
    log('launching', { fleetId: target.fleetId, count, generation: target.generation });
    const input = { ...launchInput(props, target.version), runHookPayload: await this.payload(props) };
    const results = await this.runBatch(inventory, fresh, fresh.map((r) => ({ clientToken: r.clientToken, input })), stepEnd, props, true);
    await this.failOnRefusal(results, target, records.filter((r) => r.phase === 'LAUNCHED').length);
  }

  /**
   * Sends the requests through the rate limiter and records each outcome as it settles (in chunks):
   * launched → LAUNCHED with the id; refused or never sent → record removed; unknown → stays LAUNCHING.
   */
  private async runBatch(inventory: Inventory, recs: SlotRecord[], requests: LaunchRequest[], stepEnd: number,
    props: FleetProps, fresh: boolean): Promise<LaunchResult[]> {
    const byToken = new Map(recs.map((r) => [r.clientToken, r]));
    const launcher = new Launcher(this.runClient, {
      rate: Number(props.LaunchRate) || 5,
      clock: this.clock,
      random: this.random,
    });
    let toPut: SlotRecord[] = [];
    let toDelete: string[] = [];
    const flush = async () => {
      const p = toPut;
      const d = toDelete;
      toPut = [];
      toDelete = [];
      if (p.length) await inventory.putSlots(p);
      if (d.length) await inventory.deleteSlots(recs[0].pk, d);
    };
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
    log('launch batch settled', { launched, refused: results.filter((r) => r.definitelyNotLaunched).length, unknown: results.filter((r) => !r.microvmId && !r.definitelyNotLaunched && !r.skipped).length, skipped: results.filter((r) => r.skipped).length, calls: launcher.calls });
    return results;
  }

  /** Quota, validation, access and not-found refusals fail the deploy; unknown outcomes are re-issued next poll. */
  private async failOnRefusal(results: LaunchResult[], target: Target, launchedBefore: number): Promise<void> {
    const quota = results.find((r) => r.error && isQuotaExceeded(r.error));
    if (quota) throw await this.quotaError(quota.error, target, launchedBefore + results.filter((r) => r.microvmId).length);
    const refused = results.find((r) => r.definitelyNotLaunched);
    if (refused) {
      throw new ProvisioningError(`RunMicrovm refused to launch a MicroVM of ${target.props.ImageArn} version ${target.version}: ${describeError(refused.error)}. ` +
        'Check that the version is ACTIVE and SUCCESSFUL, that the connectors are ACTIVE, and the fleet\'s settings.');
    }
  }

  private async quotaError(err: unknown, target: Target, holding: number): Promise<ProvisioningError> {
    let memory = DEFAULT_MEMORY_MIB;
    try {
      const v = await this.client.send(new GetMicrovmImageVersionCommand({ imageIdentifier: target.props.ImageArn, imageVersion: target.version }));
      memory = v.resources?.[0]?.minimumMemoryInMiB ?? DEFAULT_MEMORY_MIB;
    } catch (e) {
      log('could not read the image memory size', { error: errorName(e) });
    }
    const e = err as { serviceCode?: string; quotaCode?: string };
    const code = e.quotaCode ? ` (quota ${e.serviceCode ?? 'lambda'}/${e.quotaCode})` : '';
    const gib = (mib: number) => `${(mib / 1024).toFixed(mib % 1024 ? 1 : 0)} GiB`;
    const need = target.desired * memory;
    const batch = target.props.UpdatePolicy === 'REPLACE_ALL' ? target.desired : (toInt(target.props.BatchSize, 'BatchSize') ?? 1);
    return new ProvisioningError(
      `ServiceQuotaExceededException${code}: ${errorMessage(err)} The account's MicroVM memory quota counts every RUNNING or SUSPENDED MicroVM in the Region. ` +
      `This fleet needs ${target.desired} × ${memory} MiB = ${gib(need)} (up to ${target.desired + batch} × ${memory} MiB = ${gib((target.desired + batch) * memory)} while replacing instances) ` +
      `and held ${holding} × ${memory} MiB = ${gib(holding * memory)} when the service refused; the rest of the quota (default 400 GB, 1,024 GB in us-east-1, us-east-2, us-west-2 and ap-northeast-1) is used by other MicroVMs. ` +
      'Lower desiredCount or the image memory, terminate other MicroVMs, or request a quota increase in Service Quotas.');
  }

  // ----------------------------------------------------------------------------------------------
  // Shared steps

  /** Re-issues the recorded tokens of LAUNCHING records, with the configuration they were recorded with. */
  private async resolveLaunching(event: CompleteEvent, inventory: Inventory, records: SlotRecord[], stepEnd: number): Promise<SlotRecord[]> {
    const launching = records.filter((r) => r.phase === 'LAUNCHING');
    if (!launching.length) return records;
    const candidates = [event.ResourceProperties, event.OldResourceProperties].filter((p): p is FleetProps => !!p);
    const requests: LaunchRequest[] = [];
    const unresolvable: SlotRecord[] = [];
    for (const r of launching) {
      const props = candidates.find((p) => p.ImageArn === r.imageArn && configHash(p, r.imageVersion) === r.configHash);
      if (!props) {
        unresolvable.push(r);
        continue;
      }
      requests.push({ clientToken: r.clientToken, input: { ...launchInput(props, r.imageVersion), runHookPayload: await this.payload(props) } });
    }
    if (unresolvable.length) {
      // Two configurations back, with a crash in between: the request cannot be rebuilt byte for byte.
      log('launch records of an older configuration cannot be re-issued; dropped', { count: unresolvable.length });
      await inventory.deleteSlots(event.PhysicalResourceId!, unresolvable.map((r) => r.sk));
    }
    if (requests.length) {
      log('re-issuing recorded launch tokens', { count: requests.length });
      const results = await this.runBatch(inventory, launching, requests, stepEnd, event.ResourceProperties, false);
      const conflict = results.find((r) => r.error && isConflict(r.error));
      if (conflict) {
        throw new ProvisioningError(`re-issuing a recorded launch token was refused because the token was already used with other parameters (${describeError(conflict.error)}): ` +
          'the /run payload secret probably changed between a launch and its retry, so that MicroVM cannot be identified. ' +
          `Find it with ListMicrovms (image ${launching[0].imageArn}) and terminate it by hand, then retry.`);
      }
      const quota = results.find((r) => r.error && isQuotaExceeded(r.error));
      if (quota && event.RequestType !== 'Delete') {
        const props = event.ResourceProperties;
        const version = launching[0].imageVersion;
        throw await this.quotaError(quota.error, {
          fleetId: event.PhysicalResourceId!, props, desired: toInt(props.DesiredCount, 'DesiredCount') ?? 0, version, hash: '', generation: 0,
        }, records.filter((r) => r.phase === 'LAUNCHED').length);
      }
    }
    return inventory.listSlots(event.PhysicalResourceId!);
  }

  /** One ListMicrovms pass per (image, version); the dead are dropped from the inventory (and replaced by the plan). */
  private async observeAndPrune(inventory: Inventory, records: SlotRecord[], fleetId: string): Promise<SlotRecord[]> {
    const launched = records.filter((r) => r.phase === 'LAUNCHED');
    if (!launched.length) return records;
    const { vms } = await observe(this.client, launched.map((r) => ({ imageArn: r.imageArn, imageVersion: r.imageVersion })));
    const now = this.clock.now();
    const keep: SlotRecord[] = [];
    const changed: SlotRecord[] = [];
    const dead: SlotRecord[] = [];
    for (const r of records) {
      if (r.phase !== 'LAUNCHED') {
        keep.push(r);
        continue;
      }
      const seen = vms.get(r.microvmId!);
      const state = seen?.state ?? (now - (r.launchedAt ?? r.recordedAt) < LIST_GRACE_MS ? 'PENDING' : 'GONE');
      // TERMINATING stays on record (it still holds memory) until the service reports it stopped.
      if (!ALIVE.has(state) && state !== 'TERMINATING') {
        dead.push(r);
        continue;
      }
      const next = { ...r, state, suspendPending: r.suspendPending && state !== 'SUSPENDED' && state !== 'SUSPENDING' ? true : undefined };
      if (next.state !== r.state || next.suspendPending !== r.suspendPending) changed.push(next);
      keep.push(next);
    }
    if (dead.length) {
      log('instances found stopped: replaced, not counted', { fleetId, count: dead.length, ids: dead.slice(0, MAX_IDS_IN_MESSAGE).map((r) => r.microvmId) });
      await inventory.deleteSlots(fleetId, dead.map((r) => r.sk));
    }
    if (changed.length) await inventory.putSlots(changed);
    return keep;
  }

  /** Warm pool: SuspendMicrovm each new instance once RUNNING. */
  private async suspendPending(inventory: Inventory, records: SlotRecord[], stepEnd: number): Promise<SlotRecord[]> {
    const due = records.filter((r) => r.suspendPending && r.state === 'RUNNING');
    if (!due.length) return records;
    const bucket = new TokenBucket(SUSPEND_RATE, 1, this.clock);
    const updated = new Map<string, SlotRecord>();
    await paced(due, bucket, this.clock, stepEnd, async (r) => {
      try {
        await this.client.send(new SuspendMicrovmCommand({ microvmIdentifier: r.microvmId! }));
        updated.set(r.sk, { ...r, state: 'SUSPENDING', suspendPending: undefined });
      } catch (err) {
        if (isNotFound(err)) return; // gone: the next observation drops it
        if (isConflict(err)) return; // no longer RUNNING: observed again next poll
        throw err;
      }
    });
    if (updated.size) await inventory.putSlots([...updated.values()]);
    return records.map((r) => updated.get(r.sk) ?? r);
  }

  /** TerminateMicrovm at the service's pace; returns the records whose instances are stopping or gone. */
  private async terminate(records: SlotRecord[], stepEnd: number): Promise<SlotRecord[]> {
    const bucket = new TokenBucket(TERMINATE_RATE, 1, this.clock);
    const done: SlotRecord[] = [];
    await paced(records, bucket, this.clock, stepEnd, async (r) => {
      if (r.phase !== 'LAUNCHED') return;
      try {
        await this.client.send(new TerminateMicrovmCommand({ microvmIdentifier: r.microvmId! }));
      } catch (err) {
        // Already gone, or already TERMINATED (the service answers 400 to mutations of a terminated VM).
        if (!isNotFound(err) && !/terminat/i.test(errorMessage(err))) throw err;
      }
      done.push(r);
    });
    return done;
  }

  // ----------------------------------------------------------------------------------------------
  // Delete (and the clean-up of a failed Create)

  private async deleteStep(event: CompleteEvent, progress: FleetProgress): Promise<IsCompleteResponse> {
    const inventory = this.inventoryFor(event.ResourceProperties.TableName);
    const { done, remaining } = await this.drain(event, inventory);
    if (done) {
      await inventory.deleteMeta(event.PhysicalResourceId!);
      return { IsComplete: true };
    }
    if (this.clock.now() > progress.deadline) {
      throw new ProvisioningError(`MicroVmFleet ${event.PhysicalResourceId} could not stop every instance in time: ${remaining.length} left ` +
        `(${remaining.slice(0, MAX_IDS_IN_MESSAGE).map((r) => `${r.microvmId ?? 'launching'} ${r.state ?? ''}`.trim()).join(', ')}). ` +
        'Retry the delete; TerminateMicrovm is idempotent.');
    }
    return { IsComplete: false };
  }

  /**
   * One step of emptying the fleet: resolve unknown launches, terminate whatever still runs,
   * drop records whose instances have stopped. Done when the inventory is empty.
   */
  private async drain(event: CompleteEvent, inventory: Inventory): Promise<{ done: boolean; terminated: number; remaining: SlotRecord[] }> {
    const fleetId = event.PhysicalResourceId!;
    const stepEnd = this.clock.now() + this.stepBudgetMs;
    let records = await inventory.listSlots(fleetId);
    records = await this.resolveLaunching(event, inventory, records, stepEnd);
    records = await this.observeAndPrune(inventory, records, fleetId);
    const running = records.filter((r) => r.phase === 'LAUNCHED' && r.state !== 'TERMINATING');
    let terminated = 0;
    if (running.length) {
      log('terminating', { fleetId, count: running.length });
      const done = await this.terminate(running, stepEnd);
      terminated = done.length;
      if (done.length) await inventory.putSlots(done.map((r) => ({ ...r, state: 'TERMINATING', suspendPending: undefined })));
    }
    const remaining = await inventory.listSlots(fleetId);
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

  /** The /run payload: inline, or read from Secrets Manager (cached per invocation, never logged). */
  private async payload(props: FleetProps): Promise<string | undefined> {
    if (!props.RunHookPayloadSecretArn) return props.RunHookPayload;
    const arn = props.RunHookPayloadSecretArn;
    let value = this.payloads.get(arn);
    if (value === undefined) {
      const secrets = this.options.secrets ?? new SecretsManagerClient({});
      const out = await secrets.send(new GetSecretValueCommand({ SecretId: arn }));
      if (out.SecretString === undefined) {
        throw new ProvisioningError(`secret ${arn} has no SecretString: the /run payload must be text (at most ${MAX_PAYLOAD_BYTES} bytes).`);
      }
      value = out.SecretString;
      const bytes = Buffer.byteLength(value, 'utf8');
      if (bytes > MAX_PAYLOAD_BYTES) {
        throw new ProvisioningError(`secret ${arn} holds ${bytes} bytes; RunMicrovm takes a /run payload of at most ${MAX_PAYLOAD_BYTES} bytes: shorten it, or pass a reference the instance resolves.`);
      }
      this.payloads.set(arn, value);
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
    return `${target.desired} desired; inventory: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(', ') || 'empty'}`;
  }
}

/** Least useful first: not ready, then the newest slots. */
function byExpendability(records: SlotRecord[], isReady: (r: SlotRecord) => boolean): SlotRecord[] {
  return [...records].sort((a, b) => Number(isReady(a)) - Number(isReady(b)) || b.sk.localeCompare(a.sk));
}

/** Runs `fn` over `items` at the bucket's pace, up to 8 at once, sending nothing after `until`. */
async function paced<T>(items: T[], bucket: TokenBucket, clock: LauncherClock, until: number,
  fn: (item: T) => Promise<void>, concurrency = 8): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      if (clock.now() >= until) return; // the rest waits for the next poll
      const i = next++;
      if (i >= items.length) return;
      await bucket.take();
      await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

function asProvisioningError(err: unknown): Error {
  if (err instanceof ProvisioningError) return err;
  return new ProvisioningError(`MicroVmFleet: ${describeError(err)}`);
}
