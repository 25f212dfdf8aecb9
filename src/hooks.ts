import { Duration } from 'aws-cdk-lib';

/** One lifecycle hook: configuring it enables it. */
export interface HookOptions {
  /**
   * How long the service waits for the hook to answer.
   *
   * @default - 30 seconds for build hooks (ready, validate), 1 second for runtime hooks
   */
  readonly timeout?: Duration;
}

/**
 * The HTTP lifecycle hooks your application serves at `/aws/lambda-microvms/runtime/v1/<hook>`.
 * Build hooks take 1 second to 1 hour; runtime hooks 1 to 60 seconds.
 */
export interface MicroVmHooks {
  /** The port the hooks listen on (1-65535), bound on 0.0.0.0. */
  readonly port: number;
  /**
   * Build hook, called once the application started. 200 takes the snapshot, 503 retries.
   * @default - disabled
   */
  readonly ready?: HookOptions;
  /**
   * Build hook: called on a test MicroVM started from the new snapshot.
   * @default - disabled
   */
  readonly validate?: HookOptions;
  /**
   * Runtime hook, called after a MicroVM starts. Traffic flows once it answers 200.
   * @default - disabled
   */
  readonly run?: HookOptions;
  /**
   * Runtime hook: called after a resume.
   * @default - disabled
   */
  readonly resume?: HookOptions;
  /**
   * Runtime hook: called before a suspend.
   * @default - disabled
   */
  readonly suspend?: HookOptions;
  /**
   * Runtime hook: called before termination.
   * @default - disabled
   */
  readonly terminate?: HookOptions;
}
