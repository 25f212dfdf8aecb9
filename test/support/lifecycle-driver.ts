import { randomUUID } from 'node:crypto';
import type { IsCompleteResponse, OnEventRequest, OnEventResponse, RequestType } from '../../lambda/shared/framework';

/**
 * Plays CloudFormation and aws-cdk-lib's Provider framework against a handler, with the rules the
 * real ones follow (docs/architecture.md, "The Provider framework as it really behaves"):
 *
 * - onEvent, then isComplete at once and every `queryIntervalMs` until complete or `totalTimeoutMs`.
 * - Only an **onEvent** failure on Create answers with the framework's CREATE_FAILED marker id, and
 *   the Delete of that id is skipped. An **isComplete** failure (or a crash of isComplete, or the
 *   waiter's timeout) answers FAILED with the REAL physical id: the rollback's Delete reaches the
 *   handler with it.
 * - A failed Update keeps the old physical id; its rollback is an Update back to the old properties
 *   with the old id. A successful Update's rollback is an Update back to the old properties with the
 *   NEW id; when the handler then answers another id (the old one), the id it leaves is deleted in
 *   the rollback's cleanup. After a successful Update with a new id, the old id is deleted in the
 *   stack's cleanup.
 * - Cancellation: CloudFormation may move on (a Delete, or a rollback Update) while the waiter of a
 *   request still runs. `start*` returns that waiter; it keeps polling after CloudFormation moved
 *   on (a stale waiter) when the test polls it.
 * - A Delete of a resource that never reported an id carries one CloudFormation generated
 *   (`<stack>-<logical id>-<12 characters>`).
 * - onEvent may run again after a crash, before or after its call reached the service.
 *
 * `wait` is how time passes between polls: tests advance the emulator's clock instead of sleeping.
 * Property values are turned into strings, as CloudFormation does, and every response is checked
 * against CloudFormation's 4 KB response limit.
 */
export interface Handler {
  onEvent(event: any): Promise<OnEventResponse | undefined>;
  isComplete(event: any): Promise<IsCompleteResponse>;
}

export interface LifecycleDriverOptions {
  readonly handler: Handler;
  readonly resourceType: string;
  readonly logicalResourceId?: string;
  readonly stackId?: string;
  readonly queryIntervalMs?: number;
  readonly totalTimeoutMs?: number;
  readonly wait: (ms: number) => Promise<void>;
}

export interface LifecycleResult {
  readonly status: 'SUCCESS' | 'FAILED';
  readonly physicalResourceId?: string;
  readonly data: Record<string, string>;
  readonly reason?: string;
  /** isComplete calls made. */
  readonly polls: number;
}

/** How onEvent is delivered. */
export interface DeliveryOptions {
  /**
   * 'afterService': onEvent ran (its calls reached the service) but its answer was lost, and the
   * framework runs it again with the same request. 'beforeService': the first run crashed before
   * any call; the framework runs it again.
   */
  readonly crash?: 'beforeService' | 'afterService';
  /** isComplete crashes (the Lambda function dies) on this poll (1-based): the waiter fails. */
  readonly crashIsCompleteOnPoll?: number;
}

/** The framework's physical id after a failed onEvent on Create; a Delete carrying it is skipped. */
export const CREATE_FAILED_MARKER = 'AWSCDK::CustomResourceProviderFramework::CREATE_FAILED';
const MAX_RESPONSE_BYTES = 4096;

/** A running request: onEvent has answered, the waiter polls isComplete. */
export class Waiter {
  public polls = 0;
  public result?: LifecycleResult;
  private waited = 0;

  constructor(
    private readonly driver: LifecycleDriver<any>,
    public readonly event: OnEventRequest<any>,
    private readonly completeEvent: any,
    private readonly onEventData: Record<string, string>,
    private readonly crashOnPoll?: number,
  ) {}

  /** The physical id onEvent answered. */
  public get physicalResourceId(): string {
    return this.completeEvent.PhysicalResourceId;
  }

  /** One isComplete call (after the query interval, except the first). Undefined while not complete. */
  public async poll(): Promise<LifecycleResult | undefined> {
    if (this.result) return this.result;
    const interval = this.driver.queryIntervalMs;
    if (this.polls > 0) {
      if (this.waited + interval > this.driver.totalTimeoutMs) return this.finish({ status: 'FAILED', reason: 'Operation timed out' });
      await this.driver.options.wait(interval);
      this.waited += interval;
    }
    this.polls++;
    try {
      if (this.crashOnPoll === this.polls) throw new Error('isComplete crashed (injected)');
      const r = await this.driver.options.handler.isComplete(this.completeEvent);
      if (!r.IsComplete) return undefined;
      return this.finish({ status: 'SUCCESS', data: { ...this.onEventData, ...(r.Data ?? {}) } });
    } catch (err) {
      return this.finish({ status: 'FAILED', reason: (err as Error).message });
    }
  }

  /** Polls until the request ends (complete, failed, or the framework's total timeout). */
  public async run(): Promise<LifecycleResult> {
    for (;;) {
      const r = await this.poll();
      if (r) return r;
    }
  }

  private finish(r: { status: 'SUCCESS' | 'FAILED'; reason?: string; data?: Record<string, string> }): LifecycleResult {
    // isComplete failures and timeouts answer with the REAL physical id.
    this.result = this.driver.respond(this.event, {
      status: r.status, physicalResourceId: this.physicalResourceId, data: r.data ?? {}, reason: r.reason, polls: this.polls,
    });
    return this.result;
  }
}

export class LifecycleDriver<P extends object = Record<string, unknown>> {
  /** The physical id CloudFormation has recorded for the resource. */
  public physicalResourceId?: string;
  /** The properties CloudFormation has recorded for the resource. */
  public properties?: P;
  /** Every event sent, for assertions. */
  public readonly events: Array<{ requestType: RequestType; physicalResourceId?: string }> = [];
  public readonly queryIntervalMs: number;
  public readonly totalTimeoutMs: number;
  private readonly logicalResourceId: string;
  private readonly stackId: string;
  private lastUpdate?: { oldProps: P; newProps: P; oldPhysicalId: string; result: LifecycleResult };
  private pendingCleanup?: { oldProps: P; oldPhysicalId: string };

  constructor(public readonly options: LifecycleDriverOptions) {
    this.logicalResourceId = options.logicalResourceId ?? 'Resource';
    this.stackId = options.stackId ?? `arn:aws:cloudformation:us-east-1:123456789012:stack/TestStack/${randomUUID()}`;
    this.queryIntervalMs = options.queryIntervalMs ?? 15_000;
    this.totalTimeoutMs = options.totalTimeoutMs ?? 3_600_000;
  }

  /** The id CloudFormation makes up for a resource that never reported one. */
  public generatedPhysicalId(): string {
    const stackName = this.stackId.split('/')[1] ?? 'Stack';
    return `${stackName}-${this.logicalResourceId}-1XYZABCDEF12`;
  }

  /** Create, run to its end. */
  public async create(props: P, opts: DeliveryOptions & { replayOnEvent?: boolean } = {}): Promise<LifecycleResult> {
    const started = await this.startCreate(props, opts);
    if (!(started instanceof Waiter)) return started;
    const result = await started.run();
    this.physicalResourceId = result.physicalResourceId;
    return result;
  }

  /**
   * Create up to onEvent's answer. A failed onEvent ends the request (CREATE_FAILED marker); else
   * the returned waiter has not polled yet. CloudFormation records the properties either way.
   */
  public async startCreate(props: P, opts: DeliveryOptions & { replayOnEvent?: boolean } = {}): Promise<Waiter | LifecycleResult> {
    this.properties = props;
    const event = this.event('Create', props);
    const started = await this.startRequest(event, { ...opts, crash: opts.crash ?? (opts.replayOnEvent ? 'afterService' : undefined) });
    this.physicalResourceId = started instanceof Waiter ? started.physicalResourceId : CREATE_FAILED_MARKER;
    return started;
  }

  /**
   * Update to `props`, run to its end. On success with a new physical id, the old one is deleted
   * (the stack's cleanup phase) unless `deferCleanup` keeps it for a rollback test.
   */
  public async update(props: P, opts: DeliveryOptions & { deferCleanup?: boolean } = {}): Promise<LifecycleResult> {
    const started = await this.startUpdate(props, opts);
    const result = started instanceof Waiter ? await started.run() : started;
    return this.settleUpdate(result, opts);
  }

  /** Update up to onEvent's answer (see startCreate). Call `settleUpdate` with the waiter's result. */
  public async startUpdate(props: P, opts: DeliveryOptions = {}): Promise<Waiter | LifecycleResult> {
    const oldProps = this.properties!;
    const oldPhysicalId = this.physicalResourceId!;
    const started = await this.startRequest(this.event('Update', props, oldProps, oldPhysicalId), opts);
    const pending: LifecycleResult = { status: 'FAILED', physicalResourceId: oldPhysicalId, data: {}, reason: 'cancelled', polls: 0 };
    this.lastUpdate = { oldProps, newProps: props, oldPhysicalId, result: started instanceof Waiter ? pending : started };
    return started;
  }

  /** Records an update's outcome as CloudFormation does, and runs the cleanup of a replacement. */
  public async settleUpdate(result: LifecycleResult, opts: { deferCleanup?: boolean } = {}): Promise<LifecycleResult> {
    const last = this.lastUpdate!;
    this.lastUpdate = { ...last, result };
    if (result.status !== 'SUCCESS') return result;
    this.physicalResourceId = result.physicalResourceId;
    this.properties = last.newProps;
    if (result.physicalResourceId !== last.oldPhysicalId) {
      this.pendingCleanup = { oldProps: last.oldProps, oldPhysicalId: last.oldPhysicalId };
      if (!opts.deferCleanup) {
        const cleanup = await this.runCleanup();
        if (cleanup.status !== 'SUCCESS') return { ...result, status: 'FAILED', reason: `cleanup of ${last.oldPhysicalId} failed: ${cleanup.reason}` };
      }
    }
    return result;
  }

  /** The stack's cleanup phase of the last replacement (deferred by `deferCleanup`): the Delete of the old id. */
  public async runCleanup(): Promise<LifecycleResult> {
    const pending = this.pendingCleanup;
    this.pendingCleanup = undefined;
    if (!pending) return { status: 'SUCCESS', data: {}, polls: 0 };
    return this.run(this.event('Delete', pending.oldProps, undefined, pending.oldPhysicalId));
  }

  /**
   * Rolls the last update back, as CloudFormation does when the stack update fails (also while the
   * update's waiter still runs: it becomes stale): an Update back to the old properties, with the
   * old physical id after a failed update and with the new one after a successful update. When the
   * rollback answers another id than the one it got, that one is deleted in the rollback's cleanup.
   */
  public async rollback(): Promise<LifecycleResult> {
    const last = this.lastUpdate;
    if (!last) throw new Error('nothing to roll back');
    this.lastUpdate = undefined;
    const { oldProps, newProps, oldPhysicalId, result } = last;
    this.pendingCleanup = undefined; // a rolled-back update has no cleanup phase
    const current = result.status === 'SUCCESS' ? result.physicalResourceId! : oldPhysicalId;
    const r = await this.run(this.event('Update', oldProps, newProps, current));
    if (r.status !== 'SUCCESS') return r;
    this.physicalResourceId = r.physicalResourceId;
    this.properties = oldProps;
    if (r.physicalResourceId !== current) {
      const cleanup = await this.run(this.event('Delete', newProps, undefined, current));
      if (cleanup.status !== 'SUCCESS') return { ...r, status: 'FAILED', reason: `rollback cleanup of ${current} failed: ${cleanup.reason}` };
    }
    return r;
  }

  /**
   * Delete, run to its end. A Delete of the framework's CREATE_FAILED marker is skipped (the handler
   * is not called). `physicalResourceId: 'generated'` sends the id CloudFormation makes up for a
   * create that was cancelled before it reported one.
   */
  public async delete(opts: { physicalResourceId?: 'generated' | 'real' } = {}): Promise<LifecycleResult> {
    if (this.physicalResourceId === CREATE_FAILED_MARKER && opts.physicalResourceId === undefined) {
      return { status: 'SUCCESS', physicalResourceId: CREATE_FAILED_MARKER, data: {}, polls: 0 };
    }
    const id = opts.physicalResourceId === 'generated' ? this.generatedPhysicalId() : this.physicalResourceId;
    return this.run(this.event('Delete', this.properties!, undefined, id));
  }

  /** Sends one request and runs it to its end. */
  public async run(event: OnEventRequest<P>, opts: DeliveryOptions = {}): Promise<LifecycleResult> {
    const started = await this.startRequest(event, opts);
    return started instanceof Waiter ? started.run() : started;
  }

  public event(requestType: RequestType, props: P, oldProps?: P, physicalResourceId?: string): OnEventRequest<P> {
    this.events.push({ requestType, physicalResourceId });
    return {
      RequestType: requestType,
      ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:framework-onEvent',
      ResponseURL: 'https://cloudformation-custom-resource-response.example/presigned',
      StackId: this.stackId,
      RequestId: randomUUID(),
      LogicalResourceId: this.logicalResourceId,
      ResourceType: this.options.resourceType,
      ResourceProperties: stringify(props) as P,
      OldResourceProperties: oldProps ? (stringify(oldProps) as P) : undefined,
      PhysicalResourceId: physicalResourceId,
    };
  }

  /** onEvent (re-run after an injected crash); a failure ends the request as the framework answers it. */
  private async startRequest(event: OnEventRequest<P>, opts: DeliveryOptions): Promise<Waiter | LifecycleResult> {
    try {
      if (opts.crash === 'afterService') await this.options.handler.onEvent(event);
      const onEventResult = (await this.options.handler.onEvent(event)) ?? {};
      const physicalResourceId = onEventResult.PhysicalResourceId ?? event.PhysicalResourceId ?? event.RequestId;
      const completeEvent = { ...event, ...onEventResult, PhysicalResourceId: physicalResourceId };
      return new Waiter(this, event, completeEvent, { ...(onEventResult.Data ?? {}) }, opts.crashIsCompleteOnPoll);
    } catch (err) {
      // Only an onEvent failure on Create answers with the marker (the Delete is then skipped).
      const failedId = event.RequestType === 'Create' ? CREATE_FAILED_MARKER : event.PhysicalResourceId;
      return this.respond(event, { status: 'FAILED', physicalResourceId: failedId, data: {}, reason: (err as Error).message, polls: 0 });
    }
  }

  /** CloudFormation rejects a response body over 4 KB: the driver fails such a response the same way. */
  public respond(event: OnEventRequest<P>, result: LifecycleResult): LifecycleResult {
    const body = JSON.stringify({
      Status: result.status,
      Reason: result.reason ?? 'OK',
      PhysicalResourceId: result.physicalResourceId,
      StackId: event.StackId,
      RequestId: event.RequestId,
      LogicalResourceId: event.LogicalResourceId,
      Data: result.data,
    });
    if (Buffer.byteLength(body) > MAX_RESPONSE_BYTES) {
      return { ...result, status: 'FAILED', data: {}, reason: `Response object is too long (${Buffer.byteLength(body)} bytes)` };
    }
    return result;
  }
}

/** CloudFormation hands custom resources every scalar as a string. */
export function stringify(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stringify);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, stringify(v)]));
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return value;
}
