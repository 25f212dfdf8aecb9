import { createHash } from 'node:crypto';
import { diffTags } from './props';

/**
 * Tags the handlers keep on what they create, besides the user's tags. Every key starts with
 * HANDLER_TAG_PREFIX, which the user's tag diff never touches.
 *
 * - OWNER_TAG_KEY: which stack resource created it (a hash of stack id and logical id). Without a
 *   physical id (a Delete with an id CloudFormation generated after a cancelled create, the cleanup
 *   of a failed rename) a handler finds what it made by name and deletes it only when it owns it.
 * - FENCE_TAG_KEY: the request that last decided what is live on it (a hash of the request id),
 *   optionally the version that request builds and a version of a superseded request to discard.
 *   A waiter whose request is no longer the fence's stops without acting (a stale waiter).
 */
export const HANDLER_TAG_PREFIX = 'cdk-lambda-microvms:';
export const OWNER_TAG_KEY = `${HANDLER_TAG_PREFIX}owner`;
export const FENCE_TAG_KEY = `${HANDLER_TAG_PREFIX}request`;

function hash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16);
}

/** The owner tag's value for one stack resource. */
export function ownerOf(stackId: string, logicalResourceId: string): string {
  return hash(stackId, logicalResourceId);
}

/** A fence: the request that owns what is live, what it builds, and what it discards. */
export interface Fence {
  readonly request: string;
  /** The version this request's build produces. */
  readonly version?: string;
  /** A version a superseded request was building: once built, it must not stay live. */
  readonly discard?: string;
}

export function requestHash(requestId: string): string {
  return hash(requestId);
}

/** `<request>[@<version>][+<discard>]`: tag values allow letters, digits and `_.:/=+-@`. */
export function formatFence(f: Fence): string {
  return `${f.request}${f.version ? `@${f.version}` : ''}${f.discard ? `+${f.discard}` : ''}`;
}

export function parseFence(value: string | undefined): Fence | undefined {
  if (!value) return undefined;
  const m = /^([0-9a-f]+)(?:@([^+]+))?(?:\+(.+))?$/.exec(value);
  return m ? { request: m[1], version: m[2], discard: m[3] } : undefined;
}

/**
 * The tag calls that make the user's tags `desired`, given the tags the resource has now and the
 * user's tags of the previous deploy: sets what differs, removes only keys the previous deploy set.
 * Handler tags and tags others added are left alone; nothing is sent when nothing differs (so a
 * rollback that changes nothing makes no call).
 */
export function userTagChanges(actual: Record<string, string>, previous: Record<string, string> = {}, desired: Record<string, string> = {}) {
  const { toSet } = diffTags(actual, desired);
  const toRemove = Object.keys(previous).filter((k) => !(k in desired) && k in actual && !k.startsWith(HANDLER_TAG_PREFIX));
  return { toSet, toRemove };
}
