import { createHash } from 'node:crypto';
import { PIN_TAG_PREFIX } from '../../src/private/wire';

/** Tag keys are at most 128 characters; values 256; both allow letters, digits, spaces and `_.:/=+-@`. */
const MAX_KEY = 128;
const MAX_VALUE = 256;

/**
 * The pin tag key of one MicroVmImageVersion resource: the version, then a hash of the stack and
 * logical id, so that two resources pinning the same version each own their tag.
 */
export function pinTagKey(version: string, stackId: string, logicalResourceId: string): string {
  const pinner = createHash('sha256').update(`${stackId}\u0000${logicalResourceId}`).digest('hex').slice(0, 10);
  const key = `${PIN_TAG_PREFIX}${version}:${pinner}`;
  if (key.length > MAX_KEY) throw new Error(`image version '${version}' is too long to pin with a tag (${key.length} > ${MAX_KEY} characters)`);
  return key;
}

/**
 * The pin tag value: who pins (for people reading the image's tags), then `@` and the request that
 * pinned last: the fence of the MicroVmImageVersion's waiters.
 */
export function pinTagValue(stackId: string, logicalResourceId: string, request: string): string {
  // arn:aws:cloudformation:<region>:<account>:stack/<name>/<uuid>
  const stackName = stackId.split('/')[1] ?? stackId;
  const suffix = `@${request}`;
  return `${stackName}/${logicalResourceId}`.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_').slice(0, MAX_VALUE - suffix.length) + suffix;
}

/** The request of a pin tag value (see pinTagValue). */
export function pinRequest(value: string | undefined): string | undefined {
  const i = value?.lastIndexOf('@') ?? -1;
  return i >= 0 ? value!.slice(i + 1) : undefined;
}

/** The versions pinned by the image's tags. */
export function pinnedVersions(tags: Record<string, string> | undefined): Set<string> {
  const out = new Set<string>();
  for (const key of Object.keys(tags ?? {})) {
    if (!key.startsWith(PIN_TAG_PREFIX)) continue;
    const rest = key.slice(PIN_TAG_PREFIX.length);
    const i = rest.lastIndexOf(':');
    if (i > 0) out.add(rest.slice(0, i));
  }
  return out;
}
