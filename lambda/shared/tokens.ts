import { createHash } from 'node:crypto';

/**
 * A deterministic idempotency token: the same CloudFormation request (a retried onEvent, or the
 * framework re-invoking us) yields the same token, so the service never creates twice.
 */
export function clientToken(maxLength: number, ...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, maxLength);
}
