/** Small helpers shared by the resource families: wire formats, canonical JSON, pagination. */
import { createHash } from 'node:crypto';
import { ApiError } from './errors';

// ---------------------------------------------------------------------------------------------------
// Helpers

/**
 * An SDK input type after the server checked it against the model: the SDK types every member as
 * optional; the model's required ones (`K`) are present.
 */
export type Checked<T, K extends keyof T> = T & { [P in K]-?: NonNullable<T[P]> };

export interface Result {
  status?: number;
  body?: unknown;
}

export const sec = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : ms / 1000);
export const iso = (ms: number) => new Date(ms).toISOString();
export const clone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)));
export const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

export function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v as object).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
}
export function hashParams(input: object, tokenMember: string): string {
  const rest: Record<string, unknown> = { ...input };
  delete rest[tokenMember];
  return createHash('sha256').update(canonical(rest)).digest('hex');
}

export function b64url(s: string | Buffer): string {
  return Buffer.from(s).toString('base64url');
}

export function yymmddhh(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}`;
}

export function paginate<T>(
  items: T[],
  maxResults: number | undefined,
  token: string | undefined,
  defaultMax: number,
  err: (m: string) => ApiError,
): { page: T[]; next: string | null } {
  let offset = 0;
  if (token !== undefined && token !== '') {
    try {
      const o = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
      if (typeof o.o !== 'number' || o.o < 0) throw new Error('bad');
      offset = o.o;
    } catch {
      throw err(`Invalid pagination token: ${token}`);
    }
  }
  const max = maxResults ?? defaultMax;
  const page = items.slice(offset, offset + max);
  const next = offset + max < items.length ? b64url(JSON.stringify({ o: offset + max })) : null;
  return { page, next };
}
