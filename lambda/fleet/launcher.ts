import { RunMicrovmCommand, RunMicrovmCommandInput } from '@aws-sdk/client-lambda-microvms';
import { systemClock } from '../shared/clock';
import type { Clock } from '../shared/clock';
import { classifyError, errorMessage, errorName } from '../shared/errors';
import type { MicrovmsApi } from '../shared/microvms-client';
import { backoffDelay } from '../shared/retry';

/** No single wait between RunMicrovm attempts is longer than this. */
const MAX_BACKOFF_MS = 20_000;

/** Paces one kind of call: `take` resolves when the caller may make one call. */
export interface Pace {
  take(): Promise<void>;
  /** After a throttle: the next call waits a full interval. */
  drain(): void;
  /** After a call the service accepted (a pace that adapts to throttles recovers on it). */
  succeeded?(): void;
}

/**
 * A token bucket that paces calls at `rate` per second. A small burst (2 for launches): calls
 * leave evenly spaced, timer overshoot is made up instead of lost, and the service's own bucket
 * (RunMicrovm: 5/s, burst 5) keeps most of its burst as slack for network jitter, so a fleet
 * launch runs at the full rate without provoking throttling.
 */
export class TokenBucket implements Pace {
  private tokens: number;
  private last: number;
  /** Serializes take(): waiters leave in order. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private rate: number, private readonly burst: number, private readonly clock: Clock) {
    if (!(rate > 0)) throw new Error(`rate must be > 0, got ${rate}`);
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Resolves when the caller may make one call. */
  public take(): Promise<void> {
    const next = this.queue.then(() => this.takeOne());
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Calls per second from now on (tokens already earned are kept). */
  public setRate(rate: number): void {
    this.refill();
    this.rate = rate;
  }

  /** After a throttle: empty the bucket so the next calls wait a full interval. */
  public drain(): void {
    this.refill();
    this.tokens = Math.min(this.tokens, 0);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.last) * this.rate) / 1000);
    this.last = now;
  }

  private async takeOne(): Promise<void> {
    for (;;) {
      this.refill();
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await this.clock.sleep(Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.rate)));
    }
  }
}

/** Where a SharedPace reserves its calls (the inventory: one schedule item per operation in the stack's table). */
export interface CallSchedule {
  reserveCall(key: string, intervalMs: number, now: number, lagMs: number): Promise<number>;
}

/** SharedPace: a throttle the schedule did not prevent multiplies this schedule's share of the rate by this. */
export const SHARED_THROTTLE_SHARE = 0.7;
/** SharedPace: each accepted call adds back this share of the configured rate, up to all of it. */
export const SHARED_SUCCESS_SHARE = 0.01;
/** SharedPace: after a cut, throttles of calls already on their way do not cut again for this long (ms). */
export const SHARED_HOLD_MS = 1000;
/** SharedPace: the share never drops below this. */
const SHARED_MIN_SHARE = 0.05;

/**
 * Calls paced on a schedule shared through the stack's inventory table (DynamoDB conditional
 * writes): every fleet of the stack reserves each call on the same item, so together they keep to
 * one rate instead of each calling at the full rate as if alone, and a fleet alone still gets the
 * whole rate. A call reserves its slot when the previous one goes (one reservation ahead), so no
 * slot is held that will not be used; a caller that overslept its slot catches up by one interval.
 * A caller slower than the shared rate paces itself and holds one slot of the shared rate per call:
 * held at its own interval, a 0.2/s fleet would have held every fleet of the stack to 0.2/s.
 *
 * Calls outside the schedule (fleets of other stacks deploying at the same time, the account's
 * applications) spend the same account rate, and the only sign of them is a throttle. So a throttle
 * also stretches the interval this pace reserves: its share of the rate is multiplied by
 * `SHARED_THROTTLE_SHARE` (once per `SHARED_HOLD_MS`: the other throttles of that moment answer
 * calls already sent), and each accepted call adds back `SHARED_SUCCESS_SHARE` of the rate, never
 * above all of it. Two stacks deploying at once converge on about half the rate each; a stack
 * alone, never throttled, keeps the whole rate. Measured in bench/fleet-deploy.ts (bench/README.md).
 */
export class SharedPace implements Pace {
  /** This caller's own interval (its rate). */
  private readonly intervalMs: number;
  /** What one call costs on the shared schedule: this caller's interval, at most the shared rate's. */
  private readonly slotMs: number;
  private queue: Promise<void> = Promise.resolve();
  private notBefore = 0;
  /** When this caller's previous call went (its own rate, when it is slower than the shared one). */
  private lastAt = -Infinity;
  /** The share of the configured rate this pace reserves now, in [SHARED_MIN_SHARE, 1]. */
  public share = 1;
  private holdUntil = 0;

  /**
   * @param rate this caller's calls per second
   * @param sharedRate the rate the schedule keeps to (the operation's default quota): a caller slower
   *   than it paces itself at `rate` and holds only one slot of `sharedRate` on the schedule, so a fleet
   *   with a low launchRate does not hold every other fleet of the stack to its rate. @default rate
   */
  constructor(private readonly schedule: CallSchedule, private readonly key: string, rate: number, private readonly clock: Clock,
    sharedRate: number = rate) {
    if (!(rate > 0)) throw new Error(`rate must be > 0, got ${rate}`);
    this.intervalMs = 1000 / rate;
    this.slotMs = Math.min(this.intervalMs, 1000 / sharedRate);
  }

  public take(): Promise<void> {
    const next = this.queue.then(() => this.takeOne());
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * A throttle means calls from outside this schedule (another stack, the apps) spend the rate:
   * wait an interval, and reserve a smaller share of the rate until calls are accepted again.
   */
  public drain(): void {
    const now = this.clock.now();
    if (now >= this.holdUntil) {
      this.share = Math.max(SHARED_MIN_SHARE, this.share * SHARED_THROTTLE_SHARE);
      this.holdUntil = now + SHARED_HOLD_MS;
    }
    this.notBefore = now + this.stretchedMs();
  }

  public succeeded(): void {
    this.share = Math.min(1, this.share + SHARED_SUCCESS_SHARE);
  }

  /** The slot this pace reserves on the schedule now: its slot (see the constructor) over its share. */
  private stretchedMs(): number {
    return this.slotMs / this.share;
  }

  private async takeOne(): Promise<void> {
    const now = this.clock.now();
    const notBefore = this.intervalMs > this.slotMs ? Math.max(this.notBefore, this.lastAt + this.intervalMs) : this.notBefore;
    if (notBefore > now) await this.clock.sleep(notBefore - now);
    const interval = this.stretchedMs();
    const at = await this.schedule.reserveCall(this.key, interval, this.clock.now(), interval);
    this.lastAt = at;
    const wait = at - this.clock.now();
    if (wait > 0) await this.clock.sleep(wait);
  }
}

export interface LaunchRequest {
  /** Deterministic, recorded before the call: a re-issued request returns the same MicroVM. */
  readonly clientToken: string;
  readonly input: Omit<RunMicrovmCommandInput, 'clientToken'>;
}

export interface LaunchResult {
  readonly clientToken: string;
  readonly microvmId?: string;
  readonly endpoint?: string;
  readonly state?: string;
  readonly imageArn?: string;
  readonly imageVersion?: string;
  /** The last error when no MicroVM id came back. */
  readonly error?: unknown;
  /**
   * True when the error proves nothing was launched for this token (the service refused the
   * request), false when the outcome is unknown (retries exhausted): the token must be re-issued.
   */
  readonly definitelyNotLaunched?: boolean;
  /** RunMicrovm calls made for this request (1 unless retried). */
  readonly attempts: number;
  /** Set when this request was never sent (a quota failure or the time budget stopped the batch). */
  readonly skipped?: boolean;
}

export interface LauncherOptions {
  /** RunMicrovm calls per second. */
  readonly rate: number;
  /** Bucket size. @default 2 (evenly spaced calls; timer overshoot is made up) */
  readonly burst?: number;
  readonly clock?: Clock;
  /** Attempts per request (throttling and transient errors), each with the same clientToken. @default 8 */
  readonly maxAttempts?: number;
  /** Calls in flight at once (covers the service's latency at the paced rate). @default 16 */
  readonly concurrency?: number;
  /** First backoff step in ms; doubles per attempt, full jitter. @default 250 */
  readonly baseBackoffMs?: number;
  /** Random source in [0, 1): tests pass a fixed one. */
  readonly random?: () => number;
  /**
   * Share the account's RunMicrovm rate with other launchers (other fleets, other stacks) by
   * adaptive backoff: each throttle halves this launcher's rate, each success adds back
   * `ADDITIVE_INCREASE` of the configured rate, never above it. Off by default: measured in
   * bench/fleet-deploy.ts, a launcher alone loses rate to the odd throttle that network jitter
   * causes at the configured rate (see bench/README.md). @default false
   */
  readonly adaptive?: boolean;
  /** Paces the calls instead of this launcher's own bucket (`rate`, `burst` and `adaptive` then do not apply). */
  readonly pace?: Pace;
}

/** Adaptive backoff: the share of the configured rate a success adds back. */
export const ADDITIVE_INCREASE = 0.005;
/** Adaptive backoff: a throttle multiplies the rate by this. */
export const MULTIPLICATIVE_DECREASE = 0.5;
/** Adaptive backoff: the rate never drops below this share of the configured rate. */
const MIN_RATE_SHARE = 0.02;

export interface LaunchBatchOptions {
  /** Epoch ms after which no new request is sent (in-flight ones finish). */
  readonly sendUntil?: number;
  /** Called as each request settles (record the id right away). */
  readonly onResult?: (result: LaunchResult) => void | Promise<void>;
}

/**
 * Rate-limited, idempotent RunMicrovm. The client it is given must not retry on its own
 * (maxAttempts 1): this class retries throttling and transient errors with the SAME clientToken
 * (the service then returns the MicroVM it already launched), backs off with full jitter, slows
 * the whole batch down after a throttle, and stops the batch on ServiceQuotaExceededException
 * (retrying a quota refusal only burns calls).
 */
export class Launcher {
  private readonly bucket: TokenBucket;
  private readonly pace: Pace;
  private readonly clock: Clock;
  private readonly maxAttempts: number;
  private readonly concurrency: number;
  private readonly baseBackoffMs: number;
  private readonly random: () => number;
  /** RunMicrovm calls sent (all attempts), for the benchmark. */
  public calls = 0;
  /** The rate calls leave at now (adaptive backoff moves it). */
  public currentRate: number;
  private readonly maxRate: number;
  private readonly adaptive: boolean;

  constructor(private readonly client: MicrovmsApi, options: LauncherOptions) {
    this.clock = options.clock ?? systemClock;
    this.bucket = new TokenBucket(options.rate, options.burst ?? 2, this.clock);
    this.pace = options.pace ?? this.bucket;
    this.maxRate = options.rate;
    this.currentRate = options.rate;
    this.adaptive = !options.pace && (options.adaptive ?? false);
    this.maxAttempts = options.maxAttempts ?? 8;
    this.concurrency = options.concurrency ?? 16;
    this.baseBackoffMs = options.baseBackoffMs ?? 250;
    this.random = options.random ?? Math.random;
  }

  /** Launches every request (or as many as the time budget allows); never throws for a service error. */
  public async launch(requests: readonly LaunchRequest[], opts: LaunchBatchOptions = {}): Promise<LaunchResult[]> {
    const results: LaunchResult[] = new Array(requests.length);
    let next = 0;
    let stop = false;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= requests.length) return;
        if (stop || (opts.sendUntil !== undefined && this.clock.now() >= opts.sendUntil)) {
          results[i] = { clientToken: requests[i].clientToken, attempts: 0, skipped: true };
          continue;
        }
        // Retries stop at sendUntil too: the step's calls end before the isComplete function's timeout.
        const until = opts.sendUntil;
        const r = await this.launchOne(requests[i], () => stop || (until !== undefined && this.clock.now() >= until), until);
        if (r.error && classifyError(r.error) === 'quota') stop = true;
        results[i] = r;
        if (opts.onResult) await opts.onResult(r);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, requests.length) }, worker));
    return results;
  }

  private adapt(rate: number): void {
    if (!this.adaptive) return;
    const next = Math.min(this.maxRate, Math.max(this.maxRate * MIN_RATE_SHARE, rate));
    if (next === this.currentRate) return;
    this.currentRate = next;
    this.bucket.setRate(next);
  }

  /** One request, retried until it settles, `stopped` says so, or the next attempt would start after `until`. */
  private async launchOne(req: LaunchRequest, stopped: () => boolean, until?: number): Promise<LaunchResult> {
    let attempts = 0;
    let lastError: unknown;
    while (attempts < this.maxAttempts) {
      if (attempts > 0 && stopped()) break;
      await this.pace.take();
      if (stopped()) {
        if (attempts === 0) return { clientToken: req.clientToken, attempts: 0, skipped: true };
        break;
      }
      attempts++;
      this.calls++;
      try {
        const out = await this.client.send(new RunMicrovmCommand({ ...req.input, clientToken: req.clientToken }));
        this.adapt(this.currentRate + ADDITIVE_INCREASE * this.maxRate);
        this.pace.succeeded?.();
        return {
          clientToken: req.clientToken,
          microvmId: out.microvmId,
          endpoint: out.endpoint,
          state: out.state,
          imageArn: out.imageArn,
          imageVersion: out.imageVersion,
          attempts,
        };
      } catch (err) {
        lastError = err;
        const kind = classifyError(err);
        if (kind === 'throttled') {
          this.adapt(this.currentRate * MULTIPLICATIVE_DECREASE);
          this.pace.drain();
        } else if (kind === 'conflict') {
          // The token was already used with other parameters: something WAS launched with it.
          return { clientToken: req.clientToken, error: err, definitelyNotLaunched: false, attempts };
        } else if (kind !== 'transient') {
          // Refused (quota, validation, not found, access): nothing was launched.
          return { clientToken: req.clientToken, error: err, definitelyNotLaunched: true, attempts };
        }
        const retryAfterMs = Number((err as any)?.retryAfterSeconds) * 1000;
        const delay = backoffDelay(attempts, { baseDelayMs: this.baseBackoffMs, maxDelayMs: MAX_BACKOFF_MS, random: this.random },
          Number.isFinite(retryAfterMs) ? retryAfterMs : undefined);
        // No retry would be sent after that wait: do not wait for it (the outcome stays unknown).
        if (until !== undefined && this.clock.now() + delay >= until) break;
        await this.clock.sleep(delay);
      }
    }
    return { clientToken: req.clientToken, error: lastError, definitelyNotLaunched: false, attempts };
  }
}

/** A one-line description of an error for a CloudFormation message. */
export function describeError(err: unknown): string {
  return `${errorName(err) || 'Error'}: ${errorMessage(err)}`;
}
