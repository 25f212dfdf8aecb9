import { Token } from 'aws-cdk-lib';

/**
 * Synth-time checks. Each message names the property, the value, what is allowed and the fix.
 * Unresolved tokens are skipped: their values are only known at deploy time.
 */
export function checkRange(prop: string, value: number | undefined, min: number, max: number, fix: string): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${prop} must be an integer from ${min} to ${max}, got ${value}: ${fix}`);
  }
}

export function checkPattern(prop: string, value: string | undefined, pattern: RegExp, minLength: number, maxLength: number, fix: string): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (value.length < minLength || value.length > maxLength || !pattern.test(value)) {
    throw new Error(`${prop} must be ${minLength} to ${maxLength} characters matching ${pattern}, got '${value}' (${value.length} characters): ${fix}`);
  }
}

export function checkMaxItems(prop: string, items: readonly unknown[] | undefined, max: number, fix: string, min = 0): void {
  if (items === undefined || Token.isUnresolved(items)) return;
  if (items.length > max || items.length < min) {
    throw new Error(`${prop} takes ${min === 0 ? 'at most' : `${min} to`} ${max} item(s), got ${items.length}: ${fix}`);
  }
}

export function checkOneOf<T>(prop: string, value: T | undefined, allowed: readonly T[], fix: string): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!allowed.includes(value)) {
    throw new Error(`${prop} must be one of ${allowed.join(', ')}, got ${String(value)}: ${fix}`);
  }
}
