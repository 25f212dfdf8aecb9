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
