/**
 * The one place that reads the values a construct staged as an asset object (an image's literal
 * `environment`, a fleet's literal `runHookPayload`; src/private/staged.ts): the object named by
 * the `StagedProperties` property is read with the resource's own role and its properties merged
 * back, so no handler ever sees the difference and the values never travel in a CloudFormation
 * event, a Step Functions execution or a log. Never log what is read here.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Clock } from './clock';
import { isAccessDenied } from './credentials';
import { errorMessage, errorName, isNotFound } from './errors';
import { ProvisioningError } from './framework';
import type { IsCompleteRequest, OnEventRequest, ResourceHandler } from './framework';
import { log } from './log';
import { WireMismatchError } from './props';
import { withRetries } from './retry';
import { STAGED_PROPERTIES, STAGED_PROPERTY_NAMES, StagedPropertiesWire } from '../../src/private/wire';

/** Reads the text of a staged object. */
export type ReadStaged = (location: StagedPropertiesWire) => Promise<string>;

/** The S3 client surface the reader uses (an `S3Client`). */
export interface S3Api {
  send(command: GetObjectCommand): Promise<{ Body?: { transformToString(encoding?: string): Promise<string> } }>;
}

/**
 * Reads staged objects with `s3` (signed by the resource's role session). A role CloudFormation just
 * created (new values make a new role: its path carries the object's hash) may be assumed before
 * IAM has propagated its inline policy everywhere, and this read is often its first call: an
 * AccessDenied is retried like the AssumeRole of a new role (8 attempts, 1 s doubling to 10 s,
 * about 45 s), then fails the request with IAM's answer.
 */
export function s3Reader(s3: S3Api, clock?: Clock): ReadStaged {
  return ({ Bucket, Key }) => withRetries(async () => {
    const out = await s3.send(new GetObjectCommand({ Bucket, Key }));
    if (!out.Body) throw new Error(`s3://${Bucket}/${Key} has no body`);
    return out.Body.transformToString('utf-8');
  }, { maxAttempts: 8, baseDelayMs: 1000, maxDelayMs: 10_000, clock, isRetryable: isAccessDenied });
}

const isMap = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * `props` with the staged values merged in and `StagedProperties` removed; `props` itself when it
 * has none. A map (Environment) is merged with its inline part (the entries that were tokens).
 *
 * @throws ProvisioningError when the object is gone or unreadable (naming the object, never a value);
 *   WireMismatchError when the property or the object's content is not what this handler reads
 */
export async function withStagedProperties<P extends object>(props: P, read: ReadStaged): Promise<P> {
  const { [STAGED_PROPERTIES]: location, ...rest } = props as Record<string, unknown>;
  if (location === undefined) return props;
  if (!isMap(location) || typeof location.Bucket !== 'string' || typeof location.Key !== 'string' || !location.Bucket || !location.Key) {
    throw new WireMismatchError(STAGED_PROPERTIES, location, '{ Bucket, Key } of an S3 object');
  }
  const where = `s3://${location.Bucket}/${location.Key}`;
  let text: string;
  try {
    text = await read({ Bucket: location.Bucket, Key: location.Key });
  } catch (err) {
    if (isNotFound(err)) {
      throw new ProvisioningError(`the values this resource staged as an asset object (${where}) are not in the asset bucket: ` +
        'deploy with `cdk deploy`, which uploads the assets, and keep the bootstrap bucket\'s objects while a stack uses them.');
    }
    throw new ProvisioningError(`the values this resource staged as an asset object (${where}) could not be read: ${errorName(err)}: ${errorMessage(err)}`);
  }
  let staged: unknown;
  try {
    staged = JSON.parse(text);
  } catch {
    staged = undefined;
  }
  // The object's content is never echoed: it holds the values.
  if (!isMap(staged)) throw new WireMismatchError(STAGED_PROPERTIES, where, 'an object holding a JSON object of staged properties');
  const unknown = Object.keys(staged).filter((k) => !STAGED_PROPERTY_NAMES.includes(k));
  if (unknown.length) throw new WireMismatchError(STAGED_PROPERTIES, where, `only ${STAGED_PROPERTY_NAMES.join(', ')} (the object has ${unknown.join(', ')})`);
  const out: Record<string, unknown> = { ...rest };
  for (const [k, v] of Object.entries(staged)) out[k] = isMap(v) && isMap(out[k]) ? { ...out[k], ...v } : v;
  return out as P;
}

type AnyRequest = OnEventRequest<any> & Partial<IsCompleteRequest<any>>;

/**
 * The event with its properties' staged values merged in: the new properties read with `read`,
 * the old ones (an Update) with `readOld`, the role whose session may read them (old values that
 * cannot be read are left staged, see oldWithStagedProperties). A Delete reads nothing (no handler
 * needs the values to delete, and the object may be gone): the property is dropped.
 */
export async function withStagedEvent<E extends AnyRequest>(event: E, read: ReadStaged, readOld: ReadStaged = read): Promise<E> {
  if (event.RequestType === 'Delete') {
    const { [STAGED_PROPERTIES]: _, ...rest } = (event.ResourceProperties ?? {}) as Record<string, unknown>;
    return { ...event, ResourceProperties: rest };
  }
  return {
    ...event,
    ResourceProperties: await withStagedProperties(event.ResourceProperties, read),
    OldResourceProperties: event.OldResourceProperties && await oldWithStagedProperties(event.OldResourceProperties, readOld),
  };
}

/**
 * The old properties with their staged values, or, when those cannot be read, as they are (with
 * `StagedProperties` still in them, so they compare as different from any new values). The old
 * values are only compared and re-sent for launches recorded under them: failing on them would fail
 * the rollback of an update whose own object was missing or unreadable (CloudFormation sends that
 * update's properties as the rollback's old ones) and leave the stack in UPDATE_ROLLBACK_FAILED.
 */
async function oldWithStagedProperties<P extends object>(props: P, read: ReadStaged): Promise<P> {
  try {
    return await withStagedProperties(props, read);
  } catch (err) {
    if (!(err instanceof ProvisioningError)) throw err;
    // The message names the object, never a value.
    log('the previous properties\' staged values could not be read: compared as changed', { error: errorName(err), message: err.message });
    return props;
  }
}

/** `handler`, reading each event's staged values first (see withStagedEvent). */
export function readingStaged<P>(handler: ResourceHandler<P>, read: ReadStaged, readOld?: ReadStaged): ResourceHandler<P> {
  return {
    onEvent: async (event) => handler.onEvent(await withStagedEvent(event, read, readOld)),
    isComplete: async (event) => handler.isComplete(await withStagedEvent(event, read, readOld)),
  };
}
