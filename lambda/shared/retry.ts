import { systemClock } from './clock';
import type { Clock } from './clock';
import { isRetryable } from './errors';

/**
 * Retries with capped exponential backoff and full jitter (the SDK's "standard" strategy), for
 * clients that are not SDK clients (the Lambda Core client). A server's Retry-After wins over the
 * computed delay, within the cap. What is worth another attempt comes from classifyError.
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

/** The wait before attempt `attempt + 1` (attempt counts from 1). */
export function backoffDelay(attempt: number, options: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs' | 'random'>, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined && retryAfterMs >= 0) return Math.min(retryAfterMs, options.maxDelayMs);
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor((options.random ?? Math.random)() * ceiling);
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
