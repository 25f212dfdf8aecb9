import { log } from './log';

/**
 * The event shapes of aws-cdk-lib's Provider framework (custom-resources), as our handlers see them.
 * Keys of an onEvent result other than PhysicalResourceId/Data/NoEcho pass through to isComplete
 * but are never sent to CloudFormation: we use `Progress` to carry what isComplete needs.
 */
export type RequestType = 'Create' | 'Update' | 'Delete';

export interface OnEventRequest<P = Record<string, unknown>> {
  readonly RequestType: RequestType;
  readonly ServiceToken?: string;
  readonly ResponseURL?: string;
  readonly StackId: string;
  readonly RequestId: string;
  readonly LogicalResourceId: string;
  readonly ResourceType: string;
  readonly ResourceProperties: P & { readonly ServiceToken?: string };
  readonly OldResourceProperties?: P & { readonly ServiceToken?: string };
  readonly PhysicalResourceId?: string;
}

/** What onEvent hands to isComplete (never reaches CloudFormation). */
export interface Progress {
  /** The operation isComplete waits for. */
  readonly op: string;
  /** Epoch ms after which isComplete gives up with its own, specific error. */
  readonly deadline: number;
  readonly [key: string]: unknown;
}

export interface OnEventResponse {
  readonly PhysicalResourceId?: string;
  readonly Data?: Record<string, string>;
  readonly Progress?: Progress;
}

export type IsCompleteRequest<P = Record<string, unknown>> = OnEventRequest<P> & OnEventResponse;

export interface IsCompleteResponse {
  readonly IsComplete: boolean;
  readonly Data?: Record<string, string>;
}

/** The per-resource handler every provider dispatches to. */
export interface ResourceHandler<P = Record<string, unknown>> {
  onEvent(event: OnEventRequest<P>): Promise<OnEventResponse>;
  isComplete(event: IsCompleteRequest<P>): Promise<IsCompleteResponse>;
}

/** CloudFormation's limit for the whole response body; the Reason must fit with the rest. */
export const MAX_REASON_LENGTH = 3000;

/** A failure whose message is meant for the person reading the CloudFormation event. */
export class ProvisioningError extends Error {
  constructor(message: string) {
    super(truncate(message, MAX_REASON_LENGTH));
    this.name = 'ProvisioningError';
  }
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 15)}… (truncated)`;
}

/** What every handler takes besides its clients. */
export interface HandlerOptions {
  /** The clock (epoch ms). Tests pass the emulator's. */
  readonly now?: () => number;
}

/** One isComplete step: what to check for a given `Progress.op`. */
export type CompleteStep<P> = (event: IsCompleteRequest<P>, progress: Progress) => Promise<IsCompleteResponse>;

/**
 * The entry every resource handler shares: onEvent logs the request (identifiers only) and
 * dispatches on RequestType; isComplete dispatches on the `Progress.op` that onEvent returned.
 */
export abstract class CustomResourceHandler<P> implements ResourceHandler<P> {
  /** The isComplete step for each `Progress.op` this handler's onEvent returns. */
  protected abstract readonly steps: Record<string, CompleteStep<P>>;
  /** The clock (epoch ms): deadlines are measured on it. Tests pass the emulator's. */
  protected readonly now: () => number;

  constructor(options: HandlerOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  public async onEvent(event: OnEventRequest<P>): Promise<OnEventResponse> {
    log('onEvent', { requestType: event.RequestType, logicalResourceId: event.LogicalResourceId, physicalResourceId: event.PhysicalResourceId });
    switch (event.RequestType) {
      case 'Create': return this.onCreate(event);
      case 'Update': return this.onUpdate(event);
      case 'Delete': return this.onDelete(event);
    }
  }

  public async isComplete(event: IsCompleteRequest<P>): Promise<IsCompleteResponse> {
    const progress = event.Progress;
    const step = progress ? this.steps[progress.op] : undefined;
    if (!progress || !step) throw new Error(`isComplete got no known progress (${JSON.stringify(progress?.op)}): onEvent and isComplete run different handler versions`);
    return step.call(this, event, progress);
  }

  protected abstract onCreate(event: OnEventRequest<P>): Promise<OnEventResponse>;
  protected abstract onUpdate(event: OnEventRequest<P>): Promise<OnEventResponse>;
  protected abstract onDelete(event: OnEventRequest<P>): Promise<OnEventResponse>;
}
