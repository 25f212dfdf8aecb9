import { systemClock } from './clock';
import type { Clock } from './clock';
import { log } from './log';

/**
 * The event shapes of aws-cdk-lib's Provider framework (custom-resources), as our handlers see them,
 * and the entry every resource handler shares.
 *
 * What the framework and CloudFormation really do (the rules every handler is written against):
 * - onEvent's result is merged into the event isComplete gets. Keys other than PhysicalResourceId,
 *   Data and NoEcho never reach CloudFormation: `Progress` carries what isComplete needs.
 * - isComplete is called every queryInterval until it says complete, it throws, or the framework's
 *   totalTimeout passes.
 * - Only a failed **onEvent** on Create makes the framework answer with its CREATE_FAILED marker id,
 *   so that the Delete of the rollback is skipped. When **isComplete** throws or the waiter times
 *   out, the framework reports FAILED with the REAL physical id, and CloudFormation's rollback then
 *   sends a real Delete for it, possibly while the resource still builds.
 * - CloudFormation may cancel a request (a sibling failed) and move on (a Delete, or a rollback
 *   Update) while the waiter of the cancelled request keeps polling to its end: a stale waiter.
 *   Handlers fence it (`isSuperseded`) so that it stops without acting.
 * - A Delete may carry a physical id CloudFormation generated itself (`Stack-Resource-1XYZABCDEF12`)
 *   when it never got one from us: nothing of ours has that id.
 * - A rollback of an Update is another Update, with the old physical id and the old properties.
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

/**
 * What onEvent hands to isComplete (never reaches CloudFormation). Each handler declares its own
 * union of progress shapes, one per `op`.
 */
export interface ProgressBase {
  /** The isComplete step to run. */
  readonly op: string;
  /**
   * Epoch ms (on the handler's Clock) after which the step fails with its own deadline message;
   * 0 for a step that finishes in one call.
   */
  readonly deadline: number;
}

export interface OnEventResponse<G extends ProgressBase = ProgressBase> {
  readonly PhysicalResourceId?: string;
  readonly Data?: Record<string, string>;
  readonly Progress?: G;
}

export type IsCompleteRequest<P = Record<string, unknown>, G extends ProgressBase = ProgressBase> = OnEventRequest<P> & OnEventResponse<G>;

export interface IsCompleteResponse {
  readonly IsComplete: boolean;
  readonly Data?: Record<string, string>;
}

/** One poll's answer: not complete may say what it last saw, for the deadline message. */
export type StepResult = IsCompleteResponse | { readonly IsComplete: false; readonly lastState?: string };

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
  /** How time is read and waited. @default systemClock (tests pass the emulator's) */
  readonly clock?: Clock;
}

/** One isComplete step, for one `Progress.op`. */
export interface CompleteStep<P, G extends ProgressBase> {
  /** One poll: complete, or not yet. */
  check(event: IsCompleteRequest<P, G>, progress: G): Promise<StepResult>;
  /**
   * The failure once `progress.deadline` passed and `check` still said not complete, given what
   * `check` last saw. Steps without one finish in one call (deadline 0).
   */
  timedOut?(event: IsCompleteRequest<P, G>, progress: G, lastState: string | undefined): Promise<Error> | Error;
}

/** The members of the progress union `G` whose `op` may be `K`. */
export type ProgressOf<G extends ProgressBase, K extends string> = G extends { readonly op: infer O } ? (K extends O ? G : never) : never;

/** One step per `op` of the handler's progress union, typed by that op's progress shape. */
export type Steps<P, G extends ProgressBase> = { readonly [K in G['op']]: CompleteStep<P, ProgressOf<G, K>> };

/**
 * The entry every resource handler shares: onEvent logs the request (identifiers only) and
 * dispatches on RequestType; isComplete fences stale waiters, dispatches on the `Progress.op` that
 * onEvent returned, and checks the step's deadline: no handler checks a deadline by hand.
 */
export abstract class CustomResourceHandler<P, G extends ProgressBase = ProgressBase> implements ResourceHandler<P> {
  /** The isComplete step for each `Progress.op` this handler's onEvent returns. */
  protected abstract readonly steps: Steps<P, G>;
  /** The clock: deadlines are measured on it. */
  protected readonly clock: Clock;

  constructor(options: HandlerOptions = {}) {
    this.clock = options.clock ?? systemClock;
  }

  /** Epoch ms on this handler's clock. */
  protected now(): number {
    return this.clock.now();
  }

  public async onEvent(event: OnEventRequest<P>): Promise<OnEventResponse<G>> {
    log('onEvent', { requestType: event.RequestType, logicalResourceId: event.LogicalResourceId, physicalResourceId: event.PhysicalResourceId });
    switch (event.RequestType) {
      case 'Create': return this.onCreate(event);
      case 'Update': return this.onUpdate(event);
      case 'Delete': return this.onDelete(event);
    }
  }

  /** `event` comes from the framework as JSON: its Progress is checked against this handler's steps. */
  public async isComplete(incoming: IsCompleteRequest<P>): Promise<IsCompleteResponse> {
    const event = incoming as IsCompleteRequest<P, G>;
    const progress = event.Progress;
    const step = progress ? (this.steps as Record<string, CompleteStep<P, G>>)[progress.op] : undefined;
    if (!progress || !step) throw new Error(`isComplete got no known progress (${JSON.stringify(progress?.op)}): onEvent and isComplete run different handler versions`);
    const superseded = await this.isSuperseded(event, progress);
    if (superseded) {
      log('stale waiter: a later request owns the resource, stopping without acting', { op: progress.op, physicalResourceId: event.PhysicalResourceId });
      throw new ProvisioningError(`request ${event.RequestId} was superseded (${superseded}): stopped without acting.`);
    }
    const result = await step.check(event, progress);
    if (result.IsComplete) return { IsComplete: true, Data: (result as IsCompleteResponse).Data };
    if (progress.deadline > 0 && this.now() > progress.deadline) {
      // A step without a deadline message checks its own deadline (the fleet's, until it moves here).
      if (step.timedOut) throw await step.timedOut(event, progress, (result as { lastState?: string }).lastState);
    }
    return { IsComplete: false };
  }

  /**
   * Whether this isComplete belongs to a request CloudFormation has moved past (a cancelled or
   * superseded request whose waiter still polls). Returns why, or undefined while it is current.
   * Handlers whose steps change what is live override it with a fence recorded on the resource.
   */
  protected async isSuperseded(_event: IsCompleteRequest<P, G>, _progress: G): Promise<string | undefined> {
    return undefined;
  }

  protected abstract onCreate(event: OnEventRequest<P>): Promise<OnEventResponse<G>>;
  protected abstract onUpdate(event: OnEventRequest<P>): Promise<OnEventResponse<G>>;
  protected abstract onDelete(event: OnEventRequest<P>): Promise<OnEventResponse<G>>;
}
