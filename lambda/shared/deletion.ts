import { classifyError, errorMessage } from './errors';
import { ProvisioningError } from './framework';
import { log } from './log';

/** What one DeleteXxx call achieved. */
export type DeleteRequestOutcome =
  | { readonly kind: 'gone' }
  | { readonly kind: 'requested' }
  /** The service refused for now (busy, or a state conflict): ask again later. */
  | { readonly kind: 'refused'; readonly reason: string };

/**
 * Sends one delete. Not found counts as gone; a "not yet" refusal (classifyError busy or conflict)
 * is returned with the service's reason; anything else throws.
 */
export async function requestDelete(what: string, send: () => Promise<unknown>): Promise<DeleteRequestOutcome> {
  try {
    await send();
    return { kind: 'requested' };
  } catch (err) {
    const c = classifyError(err);
    if (c === 'notFound') return { kind: 'gone' };
    if (c === 'busy' || c === 'conflict') {
      log('delete refused for now, will ask again', { what, reason: errorMessage(err) });
      return { kind: 'refused', reason: errorMessage(err) };
    }
    throw err;
  }
}

/** A resource that is deleted asynchronously and polled until the service no longer knows it. */
export interface Deletable {
  /** For messages: e.g. `MicroVM image arn:...`. */
  readonly what: string;
  /** States in which the delete is under way: not asked again. */
  readonly deletingStates: readonly string[];
  /** States that count as gone besides not found (e.g. a version's DELETED). */
  readonly goneStates?: readonly string[];
  /** States in which the delete failed for good. */
  readonly failedStates: readonly string[];
  /** The fix to add when the delete failed for good. */
  readonly failedHint: string;
  /** Its state now. Throwing not found means gone. */
  state(): Promise<string | undefined>;
  /** The delete call. */
  send(): Promise<unknown>;
  /** Whether the delete may be asked now (e.g. no MicroVM of the image is live). @default always */
  ready?(): Promise<boolean>;
}

/** One poll of "delete until not found". */
export type DeletePoll = { readonly gone: true } | { readonly gone: false; readonly lastState: string };

/**
 * The one "delete until not found" poll: gone when the service answers not found (or a gone
 * state); fails on a failed state; asks again when the resource is not deleting yet (a build or an
 * update finished, MicroVMs stopped). The caller's step deadline bounds the polling.
 */
export async function pollDelete(target: Deletable): Promise<DeletePoll> {
  let state: string | undefined;
  try {
    state = await target.state();
  } catch (err) {
    if (classifyError(err) === 'notFound') return { gone: true };
    throw err;
  }
  if (state !== undefined && target.goneStates?.includes(state)) return { gone: true };
  if (state !== undefined && target.failedStates.includes(state)) {
    throw new ProvisioningError(`deleting ${target.what} failed (state ${state}). ${target.failedHint}`);
  }
  if (state === undefined || !target.deletingStates.includes(state)) {
    if (!target.ready || await target.ready()) {
      const outcome = await requestDelete(target.what, () => target.send());
      if (outcome.kind === 'gone') return { gone: true };
    }
  }
  return { gone: false, lastState: state ?? 'unknown' };
}
