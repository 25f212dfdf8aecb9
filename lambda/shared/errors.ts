/**
 * The one place where the service's answers are classified, for the MicroVMs SDK client and the
 * Lambda Core client alike. No other file inspects an error's type, status or message: handlers
 * switch on `classifyError` and decide what each class means for the call they made.
 *
 * Built from the answers recorded against the live service (../shared/reference/recorded-facts.md
 * and aws-recorded/): status, error type and the START of the message are what it relies on, never
 * the emulator's wording.
 */
export type ErrorClass =
  /** 429 ThrottlingException / TooManyRequestsException: retry with backoff. */
  | 'throttled'
  /** 5xx, a dropped connection or a timeout: retry with backoff. */
  | 'transient'
  /**
   * The service refuses for now because the resource is in a transitional state (a build runs,
   * MicroVMs still stop, a version delete drains): "not yet". Wait and ask again until the
   * handler's deadline.
   */
  | 'busy'
  /** 404 ResourceNotFoundException, or a MicroVM reported terminated: it is gone. */
  | 'notFound'
  /**
   * 409 ConflictException / ResourceConflictException that is not a recorded "busy" refusal, or a
   * name still reserved (400 "... already exists."). On a create: the name is taken. On an update
   * or delete: the resource's state conflicts with the request (not ready, another update runs),
   * which the caller treats like `busy`.
   */
  | 'conflict'
  /** 402 ServiceQuotaExceededException, or Lambda Core's connector limit. */
  | 'quota'
  /** A new operator role is not usable yet while IAM propagates (connectors): retry for a bounded window. */
  | 'iamPropagation'
  /** Anything else (validation, access denied, ...): fail with the service's message. */
  | 'fatal';

/**
 * Recorded "not yet" refusals (recorded-facts.md, "Images and versions"):
 * - 400 ValidationException "Cannot delete MicroVM image in its current state: CREATING|UPDATING"
 *   (a build runs, or a version delete still drains);
 * - 400 ValidationException "Cannot delete microvm image with running microvms." (MicroVMs still
 *   stop: the TERMINATING window);
 * - 409 ConflictException "MicroVM Image is already in state: UPDATING" (UpdateMicrovmImageVersion
 *   while the image rebuilds).
 * A version delete refused with 400 uses the same "Cannot delete microvm image" start and is
 * classified like its 409.
 */
const BUSY_MESSAGE_STARTS = [
  'cannot delete microvm image',
  'microvm image is already in state:',
];

/** The suspend of a TERMINATED MicroVM: 400 "The MicroVM microvm-<uuid> has been terminated ..." (recorded). */
const TERMINATED_MESSAGE = /^The MicroVM \S+ has been terminated/;

/** A name that stays reserved while its image is deleted: 400 "... already exists." (recorded). */
const NAME_RESERVED_MESSAGE = /already exists\.?$/;

/**
 * CreateNetworkConnector while IAM propagates a new operator role: 400 InvalidParameterValueException.
 * The first start is recorded; the second is the wording Terraform's provider retries on.
 */
const IAM_PROPAGATION_MESSAGE_STARTS = [
  'Encountered unauthorized operation while calling EC2 due to invalid ConnectorOperatorRole permissions',
  'The service is unable to assume the provided NetworkConnectorOperatorRole',
];

const THROTTLING_NAMES = new Set(['ThrottlingException', 'TooManyRequestsException', 'ThrottledException', 'RequestLimitExceeded']);
const TRANSIENT_NAMES = new Set(['InternalServerException', 'ServiceException', 'ServiceUnavailableException', 'InsufficientCapacityException',
  'TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'NetworkingError']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND']);
const QUOTA_NAMES = new Set(['ServiceQuotaExceededException', 'NetworkConnectorLimitExceededException']);

/** Classifies one error (see ErrorClass). */
export function classifyError(err: unknown): ErrorClass {
  const name = errorName(err);
  const status = httpStatus(err);
  const message = errorMessage(err);
  const code = (err as { code?: string } | undefined)?.code;
  if (THROTTLING_NAMES.has(name) || status === 429) return 'throttled';
  if (QUOTA_NAMES.has(name) || status === 402) return 'quota';
  if (name === 'ResourceNotFoundException' || status === 404 || TERMINATED_MESSAGE.test(message)) return 'notFound';
  const lower = message.toLowerCase();
  if ((name === 'ValidationException' || name === 'ConflictException') && BUSY_MESSAGE_STARTS.some((s) => lower.startsWith(s))) return 'busy';
  if (name === 'ConflictException' || name === 'ResourceConflictException' || status === 409) return 'conflict';
  if (name === 'ValidationException' && NAME_RESERVED_MESSAGE.test(message)) return 'conflict';
  if (name === 'InvalidParameterValueException' && IAM_PROPAGATION_MESSAGE_STARTS.some((s) => message.startsWith(s))) return 'iamPropagation';
  if (TRANSIENT_NAMES.has(name) || (status !== undefined && (status >= 500 || status === 0)) || (code !== undefined && NETWORK_CODES.has(code))) return 'transient';
  return 'fatal';
}

/** Throttling and transient faults: worth another attempt of the same call. */
export function isRetryable(err: unknown): boolean {
  const c = classifyError(err);
  return c === 'throttled' || c === 'transient';
}

/** A 409-style refusal of either kind (`conflict` or `busy`). */
export function isConflict(err: unknown): boolean {
  const c = classifyError(err);
  return c === 'conflict' || c === 'busy';
}

export function isNotFound(err: unknown): boolean {
  return classifyError(err) === 'notFound';
}

/**
 * CloudFormation's DescribeStacks for a stack that is gone: 400 `ValidationError` with the message
 * "Stack with id <name or id> does not exist" (CloudFormation API reference, DescribeStacks; the
 * query protocol gives every bad request the one type ValidationError, so the type alone does not
 * say "missing" and the message end is what tells it apart). A stack id of a deleted stack is
 * answered with DELETE_COMPLETE instead; a name is answered with this error.
 */
const STACK_MISSING_MESSAGE = /^Stack with id .+ does not exist\.?$/;

/** Whether `err` is CloudFormation saying the stack asked about does not exist (see STACK_MISSING_MESSAGE). */
export function isStackMissing(err: unknown): boolean {
  return errorName(err) === 'ValidationError' && STACK_MISSING_MESSAGE.test(errorMessage(err));
}

/** The error type, without a namespace (`aws.lambda#Foo` → `Foo`). */
export function errorName(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string; __type?: string };
  const raw = e?.name ?? e?.Code ?? e?.code ?? e?.__type ?? '';
  return raw.includes('#') ? raw.slice(raw.indexOf('#') + 1) : raw;
}

export function errorMessage(err: unknown): string {
  const e = err as { message?: string; Message?: string };
  return e?.message ?? e?.Message ?? String(err);
}

/** The HTTP status of an SDK error ($metadata) or a Lambda Core error (statusCode). */
function httpStatus(err: unknown): number | undefined {
  const e = err as { $metadata?: { httpStatusCode?: number }; statusCode?: number } | undefined;
  return e?.$metadata?.httpStatusCode ?? e?.statusCode;
}
