import { LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { ManualClock, RunningEmulator, startEmulator, EmulatorOptions } from '../../emulator/src';
import type { Clock } from '../../lambda/shared/clock';

export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/** An emulator on a manual clock and a real SDK client pointed at it, as a handler sees AWS. */
export interface HandlerEnv {
  readonly emu: RunningEmulator;
  readonly clock: ManualClock;
  /** The client handlers get: the SDK's own retries on, as in the bundle. */
  readonly client: LambdaMicrovmsClient;
  /** For the driver: time passes on the emulator's clock, not the test's. */
  readonly wait: (ms: number) => Promise<void>;
  /** For handlers: the emulator's clock; sleeping advances it. */
  readonly handlerClock: Clock;
}

/** A handler Clock over the emulator's manual clock: sleeping advances it instead of waiting. */
export function manualHandlerClock(clock: ManualClock): Clock {
  return { now: () => clock.now(), sleep: async (ms) => { clock.advance(ms); } };
}

export async function handlerEnv(options: EmulatorOptions = {}): Promise<HandlerEnv> {
  process.env.MICROVMS_HANDLER_QUIET = '1';
  const clock = new ManualClock();
  const emu = await startEmulator({ clock, faults: true, ...options });
  const client = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: CREDENTIALS, maxAttempts: 8 });
  return { emu, clock, client, wait: async (ms) => { clock.advance(ms); }, handlerClock: manualHandlerClock(clock) };
}
