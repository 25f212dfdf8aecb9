/** Error classification shared by every handler, for the SDK client and the Lambda Core client alike. */
export function errorName(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string; __type?: string };
  const raw = e?.name ?? e?.Code ?? e?.code ?? e?.__type ?? '';
  return raw.includes('#') ? raw.slice(raw.indexOf('#') + 1) : raw;
}

export function isNotFound(err: unknown): boolean {
  return errorName(err) === 'ResourceNotFoundException';
}

export function isConflict(err: unknown): boolean {
  const n = errorName(err);
  return n === 'ConflictException' || n === 'ResourceConflictException';
}

export function errorMessage(err: unknown): string {
  const e = err as { message?: string; Message?: string };
  return e?.message ?? e?.Message ?? String(err);
}
