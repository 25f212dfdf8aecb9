/**
 * Conformance runner: replays the recorded AWS scenarios (emulator/conformance/aws-recorded/cases) against a
 * running emulator over raw HTTP and compares every response with its recorded fixture after the documented
 * normalization (account ids, regions, timestamps, UUIDs, short AWS ids, token-like members).
 *
 * - `${name}` substitution from the case params, `${region}`/`${account}` built in, and step captures.
 * - `until` polling advances the emulator's ManualClock (POST /_emulator/clock/advance) by `intervalSec`
 *   instead of sleeping; on a real clock it sleeps `realPollMs`.
 * - `optional` steps: a 501 answer does not halt the scenario.
 * - VmEndpoint steps (data plane, `baseURL` = the MicroVM endpoint) are sent to the emulator's port as plain
 *   HTTP with `Host` set to the endpoint host, the way the emulator serves MicroVM endpoints (endpoint.ts);
 *   method, path, headers and body as recorded.
 * - Lists that accumulate account history (steps with `itemShape`) are checked by item shape only.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { callMicrovmEndpoint } from './endpoint-call';

export interface ConformanceOptions {
  /** Emulator base URL, e.g. http://127.0.0.1:4566 */
  url: string;
  region: string;
  account: string;
  /** Directory holding cases/ and fixtures/ (default: emulator/conformance/aws-recorded next to this file). */
  dir?: string;
  /** Only these case ids. */
  cases?: string[];
  /** POST /_emulator/reset before each case (default true). */
  resetBetweenCases?: boolean;
  /** Poll by advancing the ManualClock (default true). */
  manualClock?: boolean;
  /** Real sleep between polls when not on a ManualClock (default 50 ms). */
  realPollMs?: number;
  /** Members the emulator may send in addition to the recording, per operation (`*` = every operation). */
  allowedExtraMembers?: Record<string, string[]>;
}

export interface StepResult {
  caseId: string;
  step: string;
  operation: string;
  status?: number;
  errorType?: string;
  ok: boolean;
  /** Differences from the step's expectations and from the recorded fixture. */
  problems: string[];
  /** The step was not executed because an earlier step failed (the scenario halts like the m80 runner). */
  skipped?: boolean;
}

export interface CaseResult {
  caseId: string;
  ok: boolean;
  steps: StepResult[];
}

/**
 * Members the emulator sends that the recordings do not have, and why:
 * - `__type`: restJson1 error bodies carry the error type; the recorder kept only the modeled members.
 * Nothing else: absent in a recording means absent (recorded-facts.md).
 */
export const DEFAULT_ALLOWED_EXTRA_MEMBERS: Record<string, string[]> = {
  '*': ['__type'],
};

interface Step {
  name: string;
  operation: string;
  method: string;
  path: string;
  baseURL?: string;
  body?: unknown;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  expect?: {
    status?: number;
    errorType?: string;
    errorTypeOneOf?: string[];
    bodyMatch?: Record<string, unknown>;
    itemShape?: { path: string; required: string[]; exact?: boolean; minItems?: number };
  };
  until?: { path: string; equals: unknown; timeoutSec: number; intervalSec: number };
  capture?: Record<string, string>;
  optional?: boolean;
}
interface Case {
  id: string;
  params?: Record<string, string>;
  steps: Step[];
}

export function defaultConformanceDir(): string {
  const candidates = [join(__dirname, '..', 'conformance', 'aws-recorded'), join(process.cwd(), 'emulator', 'conformance', 'aws-recorded')];
  return candidates.find((c) => existsSync(join(c, 'cases'))) ?? candidates[0];
}

export function loadCases(dir = defaultConformanceDir()): Case[] {
  const casesDir = join(dir, 'cases');
  return readdirSync(casesDir).filter((f) => f.endsWith('.json')).sort().map((f) => JSON.parse(readFileSync(join(casesDir, f), 'utf8')) as Case);
}

// ----- normalization (same folding as the recorder applied to the fixtures)

const TS_KEY = /(At|Timestamp|Time|Date|LastModified|^ts)$/;
const SECRET_KEY = /(token|secret|password|credential|-auth$)/i;

export function normalizeString(s: string): string {
  return s
    .replace(/\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?/g, 'TIMESTAMP')
    .replace(/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/g, 'UUID')
    .replace(/\bnc-(UUID|[0-9a-f]{17})\b/g, 'nc-ID')
    .replace(/\b(sg|subnet|vpc|eni)-[0-9a-zA-Z]+\b/g, '$1-ID')
    .replace(/\b(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov|-iso[a-z]?)?-[a-z]+-\d\b/g, 'REGION')
    .replace(/(?<![0-9])\d{12}(?![0-9])/g, 'ACCOUNT')
    .replace(/^([A-Z_]+)#(\d{6,}|TIMESTAMP)$/, '$1#TIMESTAMP');
}

export function normalize(v: unknown, key = ''): unknown {
  if (v === null || v === undefined) return v ?? null;
  if (Array.isArray(v)) return v.map((x) => normalize(x, key));
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) out[k] = normalize((v as any)[k], k);
    return out;
  }
  if (key && TS_KEY.test(key) && (typeof v === 'number' || typeof v === 'string')) return 'TIMESTAMP';
  if (typeof v === 'string') {
    if (key && SECRET_KEY.test(key)) return 'REDACTED';
    return normalizeString(v);
  }
  return v;
}

function diff(expected: unknown, actual: unknown, path: string, allowedExtra: Set<string>, out: string[]): void {
  if (expected === null || typeof expected !== 'object' || actual === null || typeof actual !== 'object') {
    if (JSON.stringify(expected) !== JSON.stringify(actual)) out.push(`${path || '<body>'}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    return;
  }
  if (Array.isArray(expected) !== Array.isArray(actual)) {
    out.push(`${path}: expected ${Array.isArray(expected) ? 'a list' : 'an object'}`);
    return;
  }
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) out.push(`${path}: expected ${expected.length} item(s), got ${actual.length}`);
    for (let i = 0; i < Math.min(expected.length, actual.length); i++) diff(expected[i], actual[i], `${path}[${i}]`, allowedExtra, out);
    return;
  }
  const e = expected as Record<string, unknown>;
  const a = actual as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    const p = path ? `${path}.${k}` : k;
    if (!(k in a)) out.push(`${p}: missing (recorded ${JSON.stringify(e[k])})`);
    else diff(e[k], a[k], p, allowedExtra, out);
  }
  for (const k of Object.keys(a)) {
    if (!(k in e) && !(path === '' && allowedExtra.has(k))) out.push(`${path ? `${path}.${k}` : k}: not in the recording (${JSON.stringify(a[k])})`);
  }
}

/** Compares an emulator response with a recorded fixture body after normalization; returns the differences. */
export function compareWithFixture(fixture: unknown, actual: unknown, allowedExtra: Iterable<string> = []): string[] {
  const out: string[] = [];
  diff(normalize(fixture), normalize(actual), '', new Set(allowedExtra), out);
  return out;
}

function getPath(obj: unknown, path: string): unknown {
  let cur: any = obj;
  for (const part of path.split('.')) {
    if (cur === null || cur === undefined) return undefined;
    cur = Array.isArray(cur) && /^\d+$/.test(part) ? cur[Number(part)] : cur[part];
  }
  return cur;
}

function substitute<T>(v: T, vars: Record<string, string>): T {
  if (typeof v === 'string') return v.replace(/\$\{([A-Za-z0-9_]+)\}/g, (m, name) => (name in vars ? vars[name] : m)) as unknown as T;
  if (Array.isArray(v)) return v.map((x) => substitute(x, vars)) as unknown as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, vars)])) as T;
  return v;
}

/** A response body as JSON, or undefined when it is empty or not JSON. */
export function parseJsonBody(text: string): any {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

interface Response {
  status: number;
  errorType?: string;
  text: string;
  json?: unknown;
}

async function send(url: string, method: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const init: RequestInit = { method, headers: { 'content-type': 'application/json', 'authorization': 'AWS4-HMAC-SHA256 Credential=test/20260701/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0', ...headers } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(url, init);
  const text = await res.text();
  const json = parseJsonBody(text);
  const errorType = res.headers.get('x-amzn-errortype')?.split(':')[0] ?? undefined;
  return { status: res.status, errorType: errorType || undefined, text, json };
}

function readFixture(dir: string, caseId: string, step: string): { body?: string; meta?: { status?: number; errorType?: string } } {
  const base = join(dir, 'fixtures', caseId, step);
  const out: { body?: string; meta?: { status?: number; errorType?: string } } = {};
  if (existsSync(`${base}.json`)) out.body = readFileSync(`${base}.json`, 'utf8');
  if (existsSync(`${base}.meta.json`)) out.meta = JSON.parse(readFileSync(`${base}.meta.json`, 'utf8'));
  return out;
}

async function runStep(opts: Required<Pick<ConformanceOptions, 'url'>> & ConformanceOptions, dir: string, c: Case, step: Step, vars: Record<string, string>): Promise<StepResult> {
  const problems: string[] = [];
  const path = substitute(step.path, vars);
  const body = step.body === undefined ? undefined : substitute(step.body, vars);
  const headers = substitute(step.headers ?? {}, vars);
  const query = substitute(step.query ?? {}, vars);
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) for (const x of Array.isArray(v) ? v : [v]) qs.append(k, x);
  const extra = qs.toString();

  const doRequest = async (): Promise<Response> => {
    if (step.baseURL) {
      const host = new URL(substitute(step.baseURL, vars)).host;
      const r = await callMicrovmEndpoint(opts.url, host, {
        method: step.method,
        path: `${path}${extra ? `?${extra}` : ''}`,
        headers: headers as Record<string, string>,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, text: r.body, json: parseJsonBody(r.body) };
    }
    const url = `${opts.url}${path}${extra ? (path.includes('?') ? '&' : '?') + extra : ''}`;
    return send(url, step.method, body, headers);
  };

  let res = await doRequest();
  if (step.until) {
    const deadline = step.until.timeoutSec * 1000;
    let waited = 0;
    while (getPath(res.json, step.until.path) !== step.until.equals && res.status < 300) {
      if (waited >= deadline) {
        problems.push(`until ${step.until.path} == ${JSON.stringify(step.until.equals)} not reached within ${step.until.timeoutSec}s (last ${JSON.stringify(getPath(res.json, step.until.path))})`);
        break;
      }
      const ms = step.until.intervalSec * 1000;
      if (opts.manualClock !== false) await send(`${opts.url}/_emulator/clock/advance`, 'POST', { ms });
      else await new Promise((r) => setTimeout(r, opts.realPollMs ?? 50));
      waited += ms;
      res = await doRequest();
    }
  }

  const exp = step.expect ?? {};
  if (exp.status !== undefined && res.status !== exp.status) problems.push(`status ${res.status}, expected ${exp.status} (${res.text.slice(0, 300)})`);
  if (exp.errorType !== undefined && res.errorType !== exp.errorType) problems.push(`error type ${res.errorType}, expected ${exp.errorType}`);
  if (exp.errorTypeOneOf && !exp.errorTypeOneOf.includes(res.errorType ?? '')) problems.push(`error type ${res.errorType}, expected one of ${exp.errorTypeOneOf.join(', ')}`);
  if (exp.bodyMatch) {
    for (const [k, v] of Object.entries(substitute(exp.bodyMatch, vars))) {
      const got = getPath(res.json, k);
      if (JSON.stringify(got) !== JSON.stringify(v)) problems.push(`body.${k} = ${JSON.stringify(got)}, expected ${JSON.stringify(v)}`);
    }
  }

  const fx = readFixture(dir, c.id, step.name);
  if (fx.meta?.status !== undefined && res.status !== fx.meta.status) problems.push(`status ${res.status}, recorded ${fx.meta.status}`);
  if (fx.meta?.errorType !== undefined && res.errorType !== fx.meta.errorType) problems.push(`error type ${res.errorType}, recorded ${fx.meta.errorType}`);
  if (exp.itemShape) {
    const items = getPath(res.json, exp.itemShape.path);
    if (!Array.isArray(items)) {problems.push(`${exp.itemShape.path} is not a list`);} else {
      if (exp.itemShape.minItems !== undefined && items.length < exp.itemShape.minItems) problems.push(`${exp.itemShape.path} has ${items.length} item(s), expected at least ${exp.itemShape.minItems}`);
      items.forEach((it: any, i: number) => {
        for (const m of exp.itemShape!.required) if (!(m in it)) problems.push(`${exp.itemShape!.path}[${i}].${m} missing`);
        if (exp.itemShape!.exact) for (const m of Object.keys(it)) if (!exp.itemShape!.required.includes(m)) problems.push(`${exp.itemShape!.path}[${i}].${m} not in the recorded item shape`);
      });
    }
  } else if (fx.body !== undefined) {
    let recorded: unknown;
    let recordedIsJson = true;
    try {
      recorded = fx.body.trim() ? JSON.parse(fx.body) : undefined;
    } catch {
      recordedIsJson = false;
    }
    if (!recordedIsJson || recorded === undefined) {
      if (fx.body.trim() !== res.text.trim()) problems.push(`body ${JSON.stringify(res.text.slice(0, 200))}, recorded ${JSON.stringify(fx.body.trim())}`);
    } else {
      const allowed = [...(opts.allowedExtraMembers?.['*'] ?? []), ...(opts.allowedExtraMembers?.[step.operation] ?? [])];
      problems.push(...compareWithFixture(recorded, res.json ?? {}, allowed));
    }
  }

  for (const [name, p] of Object.entries(step.capture ?? {})) {
    const v = getPath(res.json, p);
    if (v === undefined || v === null) problems.push(`capture ${name} <- ${p}: not in the response`);
    else vars[name] = String(v);
  }
  return {
    caseId: c.id,
    step: step.name,
    operation: step.operation,
    status: res.status,
    errorType: res.errorType,
    ok: problems.length === 0,
    problems,
  };
}

/** Runs every recorded scenario (or `opts.cases`) and returns per-step results. */
export async function runConformance(opts: ConformanceOptions): Promise<CaseResult[]> {
  const dir = opts.dir ?? defaultConformanceDir();
  const full = { allowedExtraMembers: DEFAULT_ALLOWED_EXTRA_MEMBERS, ...opts };
  const results: CaseResult[] = [];
  for (const c of loadCases(dir)) {
    if (opts.cases && !opts.cases.includes(c.id)) continue;
    if (opts.resetBetweenCases !== false) await send(`${opts.url}/_emulator/reset`, 'POST');
    const vars: Record<string, string> = { region: opts.region, account: opts.account };
    for (const [k, v] of Object.entries(c.params ?? {})) vars[k] = substitute(v, vars);
    const steps: StepResult[] = [];
    let halted = false;
    for (const step of c.steps) {
      if (halted) {
        steps.push({ caseId: c.id, step: step.name, operation: step.operation, ok: false, problems: ['not run: an earlier step failed'], skipped: true });
        continue;
      }
      let r: StepResult;
      try {
        r = await runStep(full, dir, c, step, vars);
      } catch (e: any) {
        r = { caseId: c.id, step: step.name, operation: step.operation, ok: false, problems: [`request failed: ${e?.message ?? e}`] };
      }
      if (step.optional && r.status === 501) r = { ...r, ok: true, problems: [] };
      steps.push(r);
      // Like the m80 runner, a failed non-optional step with a capture halts the scenario (later steps need it).
      if (!r.ok && !step.optional && step.capture) halted = true;
    }
    results.push({ caseId: c.id, ok: steps.every((s) => s.ok), steps });
  }
  return results;
}

/** The runner's summary: scenarios and steps run, passed, failed and skipped. */
export function summaryLine(results: CaseResult[]): string {
  const steps = results.flatMap((c) => c.steps);
  const skipped = steps.filter((s) => s.skipped).length;
  const failed = steps.filter((s) => !s.ok && !s.skipped).length;
  const passedCases = results.filter((c) => c.ok).length;
  return `conformance: ${results.length} scenarios (${passedCases} passed), ${steps.length} steps: ${steps.length - failed - skipped} passed, ${failed} failed, ${skipped} skipped`;
}

/** One line per failed step: `case/step: problem; problem`. */
export function summarize(results: CaseResult[]): string[] {
  return results.flatMap((c) => c.steps.filter((s) => !s.ok).map((s) => `${s.caseId}/${s.step}: ${s.problems.join('; ')}`));
}
