import { LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';

/** What handlers need of the MicroVMs client: `send`. Tests inject a real SDK client pointed at the emulator. */
export type MicrovmsApi = Pick<LambdaMicrovmsClient, 'send'>;

/**
 * The MicroVMs client every handler uses. The SDK's standard retry strategy retries throttling,
 * transient and 5xx errors with exponential backoff and full jitter, and never validation errors;
 * we only raise its attempt count, since a deploy can afford to wait out a throttling burst.
 * The endpoint comes from AWS_ENDPOINT_URL_LAMBDA_MICROVMS when set (local emulator).
 */
export function createMicrovmsClient(): LambdaMicrovmsClient {
  return new LambdaMicrovmsClient({ maxAttempts: 8 });
}
