/**
 * The only way handler code reads or waits for time: the framework's deadlines, the retry helper,
 * the Lambda Core client and the fleet's launcher all take a `Clock`. Tests pass one backed by the
 * emulator's manual clock, so that waiting never sleeps for real.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Resolves after `ms` milliseconds of this clock's time. */
  sleep(ms: number): Promise<void>;
}

/** Wall-clock time and real timers: what the deployed handlers use. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
