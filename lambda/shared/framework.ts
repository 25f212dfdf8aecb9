import { systemClock } from './clock';
import type { Clock } from './clock';
import { log } from './log';
import { IS_COMPLETE_TIMEOUT_SECONDS } from '../../src/private/wire';

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

/**
 * Work per isComplete call before it answers "not yet", for every resource type: the isComplete
 * function's timeout (IS_COMPLETE_TIMEOUT_SECONDS, 5 minutes) less 30 s of room for the round in
 * flight (its calls, with the SDK's retries), the fleet's observing grace and the answer. The
 * framework waits its query interval (15 s) between calls, so a step that re-checks within the call
 * answers a change within one round instead of up to one interval after it.
 */
export const STEP_BUDGET_MS = (IS_COMPLETE_TIMEOUT_SECONDS - 30) * 1000;
/**
 * Within a step, how often a resource still settling is checked again. One round of an image step
 * is ListTags (the fence) + GetMicrovmImage, with a second ListTags on update: 1.3 to 2 calls/s for
 * one resource at this pace; a version round is one GetMicrovmImageVersion (0.7/s); a connector
 * round ListTags (the fence) + GetNetworkConnector (1.3/s). Reads only, far under the services'
 * read rates even for tens of resources deploying at once.
 */
export const ROUND_MS = 1_500;
/**
 * Local deploys only (local/servers.ts sets it on ministack, whose Lambda workers inherit it): the
 * factor ministack applies to the framework's waits (SFN_WAIT_SCALE), applied to ROUND_MS too, so
 * that a compressed local deploy re-checks as often relative to its waits as a deployed one does.
 * Unset everywhere else.
 */
export const LOCAL_WAIT_SCALE_ENV = 'MICROVMS_LOCAL_WAIT_SCALE';

/** ROUND_MS, scaled by LOCAL_WAIT_SCALE_ENV when it holds a factor in (0, 1]. */
function defaultRoundMs(): number {
  const scale = Number(process.env[LOCAL_WAIT_SCALE_ENV]);
  return scale > 0 && scale <= 1 ? ROUND_MS * scale : ROUND_MS;
}

/** What every handler takes besides its clients. */
export interface HandlerOptions {
  /** How time is read and waited. @default systemClock (tests pass the emulator's) */
  readonly clock?: Clock;
  /** Work per isComplete call (see STEP_BUDGET_MS). @default STEP_BUDGET_MS */
  readonly stepBudgetMs?: number;
  /** Pause between two checks within one isComplete call. @default ROUND_MS (scaled in local deploys, see LOCAL_WAIT_SCALE_ENV) */
  readonly roundMs?: number;
}

/**
 * Runs `round` until it answers, then every `roundMs` (on `clock`) while another round can start
 * before `budgetMs` from now has passed; undefined when the budget ran out first. The one loop of
 * "keep working within this isComplete call": the framework's re-checks below use it, and so can a
 * step that runs its own rounds.
 */
export async function workInRounds<R>(clock: Clock, timing: { readonly budgetMs: number; readonly roundMs: number },
  round: () => Promise<R | undefined>): Promise<R | undefined> {
  const end = clock.now() + timing.budgetMs;
  for (;;) {
    const answer = await round();
    if (answer !== undefined) return answer;
    if (clock.now() + timing.roundMs >= end) return undefined;
    await clock.sleep(timing.roundMs);
  }
}

/** One isComplete step, for one `Progress.op`. */
export interface CompleteStep<P, G extends ProgressBase> {
  /** One poll: complete, or not yet. */
  check(event: IsCompleteRequest<P, G>, progress: G): Promise<StepResult>;
  /**
   * The failure once `progress.deadline` passed and `check` still said not complete, given what
   * `check` last saw. A step with one is checked again every ROUND_MS within each isComplete call
   * (fenced each time) until it completes, fails, or the call's budget is used. Steps without one
   * finish in one call (deadline 0), or run their own rounds and deadline (the fleet's).
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
  /** How long one isComplete call keeps checking, and how often. */
  protected readonly timing: { readonly budgetMs: number; readonly roundMs: number };

  constructor(options: HandlerOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.timing = { budgetMs: options.stepBudgetMs ?? STEP_BUDGET_MS, roundMs: options.roundMs ?? defaultRoundMs() };
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
    // A step the framework times out is checked again within this call, so that a build or a
    // state change that lands mid-call is answered in about one round, not one query interval later.
    let rounds = 0;
    const timing = step.timedOut ? this.timing : { budgetMs: 0, roundMs: 0 };
    const answer = await workInRounds(this.clock, timing, async () => {
      rounds++;
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
      return undefined;
    });
    if (rounds > 1) log('isComplete rounds', { op: progress.op, rounds, complete: answer?.IsComplete ?? false });
    return answer ?? { IsComplete: false };
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
