/**
 * Virtual time for the emulator. Every state transition is computed lazily from `clock.now()`, so a
 * `ManualClock` lets tests move time forward without waiting and a fast `RealClock` speeds up a
 * local deployment.
 */
export interface Clock {
  /** Current virtual time, epoch milliseconds. */
  now(): number;
}

/** Wall-clock time, optionally running `speed` times faster than real time (from the moment it was created). */
export class RealClock implements Clock {
  private readonly origin: number;
  constructor(public readonly speed: number = 1) {
    if (!(speed > 0) || !Number.isFinite(speed)) {
      throw new Error(`clock speed must be a positive number, got ${speed}`);
    }
    this.origin = Date.now();
  }
  now(): number {
    return Math.floor(this.origin + (Date.now() - this.origin) * this.speed);
  }
}

/** Time that only moves when told to. Starts at 2026-07-01T00:00:00Z unless given a start time. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start: number = Date.parse('2026-07-01T00:00:00.000Z')) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  /** Moves time forward by `ms` (must be >= 0). */
  advance(ms: number): number {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new Error(`advance(ms) needs a finite ms >= 0, got ${ms}`);
    this.t += ms;
    return this.t;
  }
  /** Sets the time (epoch ms). Going backwards is allowed but transitions already observed are not undone. */
  set(ms: number): number {
    if (!Number.isFinite(ms)) throw new Error(`set(ms) needs a finite number, got ${ms}`);
    this.t = ms;
    return this.t;
  }
}

/** True when the clock can be advanced by the admin route / conformance runner. */
export function isManualClock(clock: Clock): clock is ManualClock {
  return clock instanceof ManualClock || (typeof (clock as any).advance === 'function' && typeof (clock as any).set === 'function');
}
