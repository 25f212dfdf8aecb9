import { randomUUID } from 'node:crypto';
import type { IsCompleteResponse, OnEventRequest, OnEventResponse, RequestType } from '../../lambda/shared/framework';

/**
 * Plays CloudFormation and aws-cdk-lib's Provider framework against a handler: onEvent, then
 * isComplete at once and every `queryIntervalMs` until complete or `totalTimeoutMs`, with the
 * framework's rules for failed Creates (no Delete follows), replacements (the old physical id is
 * deleted after the update succeeds) and rollbacks (an Update back to the old properties).
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

/** The framework's physical id after a failed Create; a Delete carrying it is ignored. */
export const CREATE_FAILED_MARKER = 'AWSCDK::CustomResourceProviderFramework::CREATE_FAILED';
const MAX_RESPONSE_BYTES = 4096;

export class LifecycleDriver<P extends object = Record<string, unknown>> {
  public physicalResourceId?: string;
  public properties?: P;
  /** Every event sent, for assertions. */
  public readonly events: Array<{ requestType: RequestType; physicalResourceId?: string }> = [];
  private readonly logicalResourceId: string;
  private readonly stackId: string;
  private lastUpdate?: { oldProps: P; newProps: P; oldPhysicalId: string; result: LifecycleResult };

  constructor(private readonly options: LifecycleDriverOptions) {
    this.logicalResourceId = options.logicalResourceId ?? 'Resource';
    this.stackId = options.stackId ?? `arn:aws:cloudformation:us-east-1:123456789012:stack/TestStack/${randomUUID()}`;
  }

  /** Create; `replayOnEvent` re-sends the same onEvent first, as a retried invocation would. */
  public async create(props: P, opts: { replayOnEvent?: boolean } = {}): Promise<LifecycleResult> {
    const event = this.event('Create', props);
    if (opts.replayOnEvent) await this.options.handler.onEvent(event);
    const result = await this.run(event);
    this.physicalResourceId = result.status === 'SUCCESS' ? result.physicalResourceId : CREATE_FAILED_MARKER;
    this.properties = props;
    return result;
  }

  /**
   * Update to `props`. On success with a new physical id, the old one is deleted (the stack's
   * cleanup phase) unless `deferCleanup` keeps it for a rollback test.
   */
  public async update(props: P, opts: { deferCleanup?: boolean } = {}): Promise<LifecycleResult> {
    const oldProps = this.properties!;
    const oldPhysicalId = this.physicalResourceId!;
    const result = await this.run(this.event('Update', props, oldProps, oldPhysicalId));
    this.lastUpdate = { oldProps, newProps: props, oldPhysicalId, result };
    if (result.status === 'SUCCESS') {
      this.physicalResourceId = result.physicalResourceId;
      this.properties = props;
      if (result.physicalResourceId !== oldPhysicalId && !opts.deferCleanup) {
        const cleanup = await this.run(this.event('Delete', oldProps, undefined, oldPhysicalId));
        if (cleanup.status !== 'SUCCESS') return { ...result, status: 'FAILED', reason: `cleanup of ${oldPhysicalId} failed: ${cleanup.reason}` };
      }
    }
    return result;
  }

  /**
   * Rolls the last update back, as CloudFormation does when the stack update fails: a failed or
   * in-place update gets an Update back to the old properties; a replacement that succeeded has
   * its new resource deleted and the old one kept.
   */
  public async rollback(): Promise<LifecycleResult> {
    const last = this.lastUpdate;
    if (!last) throw new Error('nothing to roll back');
    this.lastUpdate = undefined;
    const { oldProps, newProps, oldPhysicalId, result } = last;
    if (result.status === 'SUCCESS' && result.physicalResourceId !== oldPhysicalId) {
      const r = await this.run(this.event('Delete', newProps, undefined, result.physicalResourceId));
      this.physicalResourceId = oldPhysicalId;
      this.properties = oldProps;
      return r;
    }
    const r = await this.run(this.event('Update', oldProps, newProps, oldPhysicalId));
    if (r.status === 'SUCCESS') {
      this.physicalResourceId = r.physicalResourceId;
      this.properties = oldProps;
    }
    return r;
  }

  /** Delete. After a failed Create the framework ignores the Delete: the handler is not called. */
  public async delete(): Promise<LifecycleResult> {
    if (this.physicalResourceId === CREATE_FAILED_MARKER) {
      return { status: 'SUCCESS', physicalResourceId: CREATE_FAILED_MARKER, data: {}, polls: 0 };
    }
    return this.run(this.event('Delete', this.properties!, undefined, this.physicalResourceId));
  }

  private event(requestType: RequestType, props: P, oldProps?: P, physicalResourceId?: string): OnEventRequest<P> {
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

  private async run(event: OnEventRequest<P>): Promise<LifecycleResult> {
    const queryInterval = this.options.queryIntervalMs ?? 15_000;
    const totalTimeout = this.options.totalTimeoutMs ?? 3_600_000;
    let polls = 0;
    let physicalResourceId = event.PhysicalResourceId;
    try {
      const onEventResult = (await this.options.handler.onEvent(event)) ?? {};
      physicalResourceId = onEventResult.PhysicalResourceId ?? event.PhysicalResourceId ?? event.RequestId;
      const completeEvent = { ...event, ...onEventResult, PhysicalResourceId: physicalResourceId };
      let data = { ...(onEventResult.Data ?? {}) };
      for (let waited = 0; ; waited += queryInterval) {
        polls++;
        const r = await this.options.handler.isComplete(completeEvent);
        if (r.IsComplete) {
          data = { ...data, ...(r.Data ?? {}) };
          break;
        }
        if (waited + queryInterval > totalTimeout) throw new Error('Operation timed out');
        await this.options.wait(queryInterval);
      }
      return this.respond(event, { status: 'SUCCESS', physicalResourceId, data, polls });
    } catch (err) {
      const failedId = event.RequestType === 'Create' ? CREATE_FAILED_MARKER : physicalResourceId;
      return this.respond(event, { status: 'FAILED', physicalResourceId: failedId, data: {}, reason: (err as Error).message, polls });
    }
  }

  /** CloudFormation rejects a response body over 4 KB: the driver fails such a response the same way. */
  private respond(event: OnEventRequest<P>, result: LifecycleResult): LifecycleResult {
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
