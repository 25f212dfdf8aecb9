/**
 * Error responses in the shapes AWS uses on the wire (restJson1): HTTP status from the error shape,
 * `x-amzn-errortype` header and `__type` in the body.
 *
 * - MicroVMs errors carry lower-case `message` (plus `resourceId`/`resourceType`, `serviceCode`/`quotaCode`
 *   where modeled; recorded AWS answers send these as `null` when unset, so we do the same).
 * - Lambda Core: `ResourceNotFoundException` and `ServiceException` use capital `Message`; its other errors
 *   use lower-case `message` and carry `Type`. The recorded 404 (`errors-not-found/get-connector-missing`) has
 *   only `Message`, no `Type`, so the emulator sends none there either. Core request validation failures are
 *   answered like the recording (`connector-too-many-subnets`): 400 `ValidationException` with `{message}`.
 */
export type ServiceName = 'microvms' | 'core';

export class ApiError extends Error {
  constructor(
    public readonly status: number,
    public readonly type: string,
    public readonly body: Record<string, unknown>,
    public readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message ?? body.Message ?? type));
  }
}

const nullRes = { resourceId: null, resourceType: null };

/**
 * The `Retry-After` header of a throttling answer. The models bind it to `retryAfterSeconds`, an
 * optional integer (MicroVMs) or string (Lambda Core) of whole seconds; live throttling was never
 * recorded (recorded-facts.md, "Quotas and throttling"), so the header never says more than the
 * wait really needed: whole seconds rounded down, and no header at all when the wait is under one
 * second (a bucket of 5/s refills a token in 0.2 s).
 */
function retryAfterHeader(seconds: number | undefined): Record<string, string> {
  return seconds !== undefined && seconds >= 1 ? { 'Retry-After': String(Math.floor(seconds)) } : {};
}

export const mvErr = {
  validation: (message: string) => new ApiError(400, 'ValidationException', { message }),
  notFound: (message: string, resourceId: string | null = null, resourceType: string | null = null) =>
    new ApiError(404, 'ResourceNotFoundException', { message, resourceId, resourceType }),
  conflict: (message: string, resourceId: string | null = null, resourceType: string | null = null) =>
    new ApiError(409, 'ConflictException', { message, resourceId, resourceType }),
  quota: (
    message: string,
    extra: { resourceId?: string | null; resourceType?: string | null; serviceCode?: string | null; quotaCode?: string | null } = {},
  ) =>
    new ApiError(402, 'ServiceQuotaExceededException', { message, ...nullRes, serviceCode: null, quotaCode: null, ...extra }),
  throttling: (retryAfterSeconds: number | undefined, message = 'Rate exceeded') =>
    new ApiError(429, 'ThrottlingException', { message, serviceCode: null, quotaCode: null }, retryAfterHeader(retryAfterSeconds)),
  internal: (message = 'Internal server error', retryAfterSeconds?: number) =>
    new ApiError(500, 'InternalServerException', { message }, retryAfterSeconds !== undefined ? { 'Retry-After': String(retryAfterSeconds) } : {}),
  accessDenied: (message = 'Access denied') => new ApiError(403, 'AccessDeniedException', { message }),
  // Lambda-style errors used by the tagging routes (modeled in the MicroVMs service too).
  invalidParameter: (message: string) => new ApiError(400, 'InvalidParameterValueException', { Type: 'User', message }),
  resourceConflict: (message: string) => new ApiError(409, 'ResourceConflictException', { Type: 'User', message }),
};

export const coreErr = {
  validation: (message: string) => new ApiError(400, 'ValidationException', { message }),
  invalidParameter: (message: string) => new ApiError(400, 'InvalidParameterValueException', { Type: 'User', message }),
  notFound: (message: string) => new ApiError(404, 'ResourceNotFoundException', { Message: message }),
  conflict: (message: string) => new ApiError(409, 'ResourceConflictException', { Type: 'User', message }),
  limit: (message: string) => new ApiError(400, 'NetworkConnectorLimitExceededException', { Type: 'User', message }),
  service: (message = 'Service error') => new ApiError(500, 'ServiceException', { Type: 'Service', Message: message }),
  throttling: (retryAfterSeconds: number | undefined, message = 'Rate exceeded') =>
    new ApiError(429, 'TooManyRequestsException', { Type: 'User', message, Reason: 'CallerRateLimitExceeded' }, retryAfterHeader(retryAfterSeconds)),
};

/** Error status per type, for injected faults (`fail an operation with error type X`). */
export const ERROR_STATUS: Record<string, number> = {
  ValidationException: 400,
  AccessDeniedException: 403,
  ResourceNotFoundException: 404,
  ConflictException: 409,
  ServiceQuotaExceededException: 402,
  ThrottlingException: 429,
  InternalServerException: 500,
  InsufficientCapacityException: 500,
  InvalidParameterValueException: 400,
  ResourceConflictException: 409,
  NetworkConnectorLimitExceededException: 400,
  ServiceException: 500,
  TooManyRequestsException: 429,
};

/** Builds an arbitrary error of a given type, with the body casing of the service it belongs to. */
export function makeError(service: ServiceName, type: string, message: string, status?: number): ApiError {
  const st = status ?? ERROR_STATUS[type] ?? 400;
  if (type === 'ThrottlingException') return mvErr.throttling(1, message);
  if (type === 'TooManyRequestsException') return coreErr.throttling(1, message);
  if (service === 'core' && (type === 'ResourceNotFoundException' || type === 'ServiceException')) {
    return new ApiError(st, type, type === 'ServiceException' ? { Type: 'Service', Message: message } : { Message: message });
  }
  if (['InvalidParameterValueException', 'ResourceConflictException', 'NetworkConnectorLimitExceededException'].includes(type)) {
    return new ApiError(st, type, { Type: 'User', message });
  }
  if (type === 'ServiceException') return new ApiError(st, type, { Type: 'Service', message });
  if (type === 'ResourceNotFoundException' || type === 'ConflictException') return new ApiError(st, type, { message, ...nullRes });
  if (type === 'ServiceQuotaExceededException') return mvErr.quota(message);
  return new ApiError(st, type, { message });
}
