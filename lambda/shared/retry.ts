import { systemClock } from './clock';
import type { Clock } from './clock';
import { isRetryable } from './errors';

/**
 * Retries with capped exponential backoff and full jitter (the SDK's "standard" strategy), for
 * clients that are not SDK clients (the Lambda Core client). A server's Retry-After is the
 * shortest wait, within the cap. What is worth another attempt comes from classifyError.
 */
export interface RetryOptions {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** The first backoff ceiling; doubles every attempt. */
  readonly baseDelayMs: number;
  /** No single wait is longer than this. */
  readonly maxDelayMs: number;
  /** Whether `err` is worth another attempt. @default isRetryable (throttled or transient) */
  readonly isRetryable?: (err: unknown) => boolean;
  /** A delay the server asked for (Retry-After), in ms. */
  readonly retryAfterMs?: (err: unknown) => number | undefined;
  /** How time passes. @default systemClock */
  readonly clock?: Clock;
  /** [0, 1): tests pass a constant. */
  readonly random?: () => number;
  /** Called before each wait, for logs. */
  readonly onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * The wait before attempt `attempt + 1` (attempt counts from 1): full jitter under a ceiling that
 * doubles per attempt, and never shorter than the server's Retry-After (within the cap). A short
 * or absent Retry-After (0, or none: the service sends none when its bucket refills within a
 * second) leaves the jittered backoff, so throttled callers do not all come back at once.
 */
export function backoffDelay(attempt: number, options: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs' | 'random'>, retryAfterMs?: number): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  const jittered = Math.floor((options.random ?? Math.random)() * ceiling);
  const floor = retryAfterMs !== undefined && retryAfterMs > 0 ? retryAfterMs : 0;
  return Math.min(Math.max(jittered, floor), options.maxDelayMs);
}

export async function withRetries<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const clock = options.clock ?? systemClock;
  const retryable = options.isRetryable ?? isRetryable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= options.maxAttempts || !retryable(err)) throw err;
      const delay = backoffDelay(attempt, options, options.retryAfterMs?.(err));
      options.onRetry?.(err, attempt, delay);
      await clock.sleep(delay);
    }
  }
}
