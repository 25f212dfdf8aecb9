import { ProvisioningError } from './framework';

/**
 * CloudFormation delivers every custom resource property as a string. These helpers read them
 * back, tolerating real numbers and booleans too (the local driver and older templates send those).
 */
export function toInt(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n)) throw new Error(`property ${name} must be an integer, got ${JSON.stringify(value)}`);
  return n;
}

export function toBool(value: unknown): boolean {
  return value === true || value === 'true';
}

/** Stable JSON for comparisons: object keys sorted, undefined dropped. */
export function canonical(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** The tags to set and the keys to remove to go from `oldTags` to `newTags`. */
export function diffTags(oldTags: Record<string, string> = {}, newTags: Record<string, string> = {}) {
  const toSet: Record<string, string> = {};
  for (const [k, v] of Object.entries(newTags)) if (oldTags[k] !== v) toSet[k] = v;
  const toRemove = Object.keys(oldTags).filter((k) => !(k in newTags));
  return { toSet, toRemove };
}

/**
 * A property that the construct always sends is missing or malformed: the construct that wrote the
 * template and the handler that reads it come from different versions of this library.
 */
export class WireMismatchError extends ProvisioningError {
  constructor(name: string, value: unknown, expected: string) {
    super(`property ${name} is ${value === undefined ? 'missing' : JSON.stringify(value)}, expected ${expected}: ` +
      'the construct and handler versions differ. Deploy the stack with one version of cdk-lambda-microvms (run `cdk synth` again).');
    this.name = 'WireMismatchError';
  }
}

/** A required, non-empty string property. */
export function requireString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value === '') throw new WireMismatchError(name, value, 'a non-empty string');
  return value;
}

/** A required integer property within [min, max]. */
export function requireInt(value: unknown, name: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new WireMismatchError(name, value, `an integer from ${min} to ${max}`);
  return n;
}

/** An optional integer property within [min, max]; absent or empty is undefined. */
export function optionalInt(value: unknown, name: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return requireInt(value, name, min, max);
}

/** A required property that is one of `allowed`. */
export function requireOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new WireMismatchError(name, value, `one of ${allowed.join(', ')}`);
  }
  return value as T;
}
