/**
 * Loads the two botocore service models (copied to emulator/models/) and drives routing, request
 * parsing and generic validation from them: required members, string lengths, patterns, integer
 * ranges, list lengths, map sizes, enums and unions with exactly one member.
 *
 * Validation messages follow AWS (Coral) wording, e.g.
 *   `1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+`
 * Several errors are listed in Java HashMap iteration order of the member names, which reproduces the
 * order recorded from AWS (`baseImageArn, codeArtifact, buildRoleArn`). Values of sensitive members are
 * omitted (`Value at 'runHookPayload' failed to satisfy constraint: ...`), as in the live error quoted in
 * the spec. Lambda Core member paths are lower-camel-cased (`configuration.vpcEgressConfiguration.subnetIds`),
 * as recorded.
 */
import { ServiceName } from './errors';
import coreModelJson from '../models/lambda-core-service-2.json';
import microvmsModelJson from '../models/lambda-microvms-service-2.json';

export interface Shape {
  type: string;
  members?: Record<string, MemberRef>;
  required?: string[];
  member?: MemberRef;
  key?: MemberRef;
  value?: MemberRef;
  min?: number;
  max?: number;
  pattern?: string;
  enum?: string[];
  union?: boolean;
  sensitive?: boolean;
  timestampFormat?: string;
  error?: { httpStatusCode: number };
}
export interface MemberRef {
  shape: string;
  location?: 'uri' | 'querystring' | 'header' | 'headers';
  locationName?: string;
  idempotencyToken?: boolean;
}
interface ServiceModel {
  metadata: Record<string, unknown>;
  operations: Record<string, {
    name: string;
    http: { method: string; requestUri: string; responseCode?: number };
    input?: { shape: string };
    output?: { shape: string };
    errors?: { shape: string }[];
  }>;
  shapes: Record<string, Shape>;
}

export interface OperationDef {
  name: string;
  service: ServiceName;
  method: string;
  requestUri: string;
  segments: string[]; // literal segments, or '{label}'
  successCode: number;
  inputShape?: string;
  outputShape?: string;
  errors: string[];
  shapes: Record<string, Shape>;
}

export const MODELS: Record<ServiceName, ServiceModel> = {
  microvms: microvmsModelJson as unknown as ServiceModel,
  core: coreModelJson as unknown as ServiceModel,
};

function buildOperations(): OperationDef[] {
  const ops: OperationDef[] = [];
  for (const service of ['microvms', 'core'] as ServiceName[]) {
    const m = MODELS[service];
    for (const [name, op] of Object.entries(m.operations)) {
      const path = op.http.requestUri.split('?')[0];
      ops.push({
        name,
        service,
        method: op.http.method,
        requestUri: op.http.requestUri,
        segments: path.split('/').filter((s) => s.length > 0),
        successCode: op.http.responseCode ?? 200,
        inputShape: op.input?.shape,
        outputShape: op.output?.shape,
        errors: (op.errors ?? []).map((e) => e.shape),
        shapes: m.shapes,
      });
    }
  }
  return ops;
}

export const OPERATIONS: OperationDef[] = buildOperations();
export const OPERATION_NAMES: string[] = OPERATIONS.map((o) => o.name);

export interface RouteMatch {
  op: OperationDef;
  labels: Record<string, string>;
}

/** Matches a method + raw path (segments are percent-decoded individually) against the models' request URIs. */
export function matchRoute(method: string, rawPath: string): RouteMatch | undefined {
  const segs = rawPath.split('/').filter((s) => s.length > 0).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  for (const op of OPERATIONS) {
    if (op.method !== method || op.segments.length !== segs.length) continue;
    const labels: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < segs.length; i++) {
      const t = op.segments[i];
      if (t.startsWith('{')) {labels[t.slice(1, -1).replace(/\+$/, '')] = segs[i];} else if (t !== segs[i]) {
        ok = false;
        break;
      }
    }
    if (ok) return { op, labels };
  }
  return undefined;
}

/** True if some operation exists for this path with another method (used for 405-ish answers). */
export function pathKnown(rawPath: string): boolean {
  return ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].some((m) => matchRoute(m, rawPath) !== undefined);
}

export class InputError extends Error {
  constructor(public readonly messages: string[]) {
    super(formatValidation(messages));
  }
}

export function formatValidation(messages: string[]): string {
  return `${messages.length} validation error${messages.length === 1 ? '' : 's'} detected: ${messages.join('; ')}`;
}

/**
 * Assembles the operation input from URI labels, query string, headers and JSON body following the
 * member locations of the input shape. Query values are converted to the member type.
 */
export function buildInput(
  op: OperationDef,
  labels: Record<string, string>,
  query: URLSearchParams,
  headers: Record<string, string | string[] | undefined>,
  body: unknown,
): { input: Record<string, unknown>; typeErrors: string[] } {
  const input: Record<string, unknown> = {};
  const typeErrors: string[] = [];
  if (!op.inputShape) return { input, typeErrors };
  const shape = op.shapes[op.inputShape];
  const bodyObj = body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  for (const [name, ref] of Object.entries(shape.members ?? {})) {
    const target = op.shapes[ref.shape];
    if (ref.location === 'uri') {
      const v = labels[ref.locationName ?? name];
      if (v !== undefined) input[name] = v;
    } else if (ref.location === 'querystring') {
      const key = ref.locationName ?? name;
      if (!query.has(key)) continue;
      if (target.type === 'list') {input[name] = query.getAll(key);} else {
        const raw = query.get(key)!;
        if (target.type === 'integer' || target.type === 'long') {
          if (!/^-?\d+$/.test(raw)) typeErrors.push(`Value '${raw}' at '${pathName(op.service, name)}' failed to satisfy constraint: Member must be a number`);
          else input[name] = Number(raw);
        } else if (target.type === 'boolean') {input[name] = raw === 'true';} else {input[name] = raw;}
      }
    } else if (ref.location === 'header') {
      const v = headers[(ref.locationName ?? name).toLowerCase()];
      if (v !== undefined) input[name] = Array.isArray(v) ? v[0] : v;
    } else if (name in bodyObj) {
      input[name] = bodyObj[name];
    }
  }
  return { input, typeErrors };
}

function pathName(service: ServiceName, name: string): string {
  return service === 'core' ? name.charAt(0).toLowerCase() + name.slice(1) : name;
}

/** Members whose values AWS leaves out of validation messages. */
const SENSITIVE_MEMBERS = new Set(['runHookPayload', 'environmentVariables']);

/* eslint-disable no-bitwise -- reproducing java.lang.String#hashCode and HashMap bucket selection */
function javaStringHash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}

/** Orders names as a java.util.HashMap filled in this order would iterate them. */
export function javaHashOrder(names: string[]): string[] {
  let cap = 16;
  while (names.length > cap * 0.75) cap *= 2;
  const bucket = (n: string) => {
    const h = javaStringHash(n);
    return (h ^ (h >>> 16)) & (cap - 1);
  };
  /* eslint-enable no-bitwise */
  return names.map((n, i) => ({ n, i, b: bucket(n) })).sort((a, b) => a.b - b.b || a.i - b.i).map((x) => x.n);
}

function javaToString(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return `[${v.map(javaToString).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}=${javaToString(x)}`).join(', ')}}`;
  return String(v);
}

const regexCache = new Map<string, RegExp>();
function fullMatch(pattern: string, value: string): boolean {
  let re = regexCache.get(pattern);
  if (!re) {
    try {
      re = new RegExp(`^(?:${pattern})$`, 'u');
    } catch {
      re = new RegExp(`^(?:${pattern})$`);
    }
    regexCache.set(pattern, re);
  }
  return re.test(value);
}

/** Validates `value` against `shapeName`; returns AWS-style constraint messages (empty when valid). */
export function validateShape(
  service: ServiceName,
  shapes: Record<string, Shape>,
  shapeName: string,
  value: unknown,
  path: string,
  sensitive = false,
): string[] {
  const shape = shapes[shapeName];
  const errs: string[] = [];
  if (value === undefined || value === null) return errs;
  const sens = sensitive || shape.sensitive === true;
  const valueText = (v: unknown) => (sens ? 'Value' : `Value '${javaToString(v)}'`);
  const fail = (v: unknown, c: string) => errs.push(`${valueText(v)} at '${path}' failed to satisfy constraint: ${c}`);
  switch (shape.type) {
    case 'string': {
      if (typeof value !== 'string') {
        fail(value, 'Member must be a string');
        break;
      }
      if (shape.enum && !shape.enum.includes(value)) fail(value, `Member must satisfy enum value set: [${shape.enum.join(', ')}]`);
      const len = [...value].length;
      if (shape.min !== undefined && len < shape.min) fail(value, `Member must have length greater than or equal to ${shape.min}`);
      if (shape.max !== undefined && len > shape.max) fail(value, `Member must have length less than or equal to ${shape.max}`);
      if (shape.pattern && !fullMatch(shape.pattern, value)) fail(value, `Member must satisfy regular expression pattern: ${shape.pattern}`);
      break;
    }
    case 'integer':
    case 'long':
    case 'double':
    case 'float': {
      if (typeof value !== 'number' || !Number.isFinite(value) || ((shape.type === 'integer' || shape.type === 'long') && !Number.isInteger(value))) {
        fail(value, 'Member must be a number');
        break;
      }
      if (shape.min !== undefined && value < shape.min) fail(value, `Member must have value greater than or equal to ${shape.min}`);
      if (shape.max !== undefined && value > shape.max) fail(value, `Member must have value less than or equal to ${shape.max}`);
      break;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail(value, 'Member must be a boolean');
      break;
    case 'timestamp':
      if (typeof value !== 'number' && typeof value !== 'string') fail(value, 'Member must be a timestamp');
      break;
    case 'list': {
      if (!Array.isArray(value)) {
        fail(value, 'Member must be a list');
        break;
      }
      if (shape.min !== undefined && value.length < shape.min) fail(value, `Member must have length greater than or equal to ${shape.min}`);
      if (shape.max !== undefined && value.length > shape.max) fail(value, `Member must have length less than or equal to ${shape.max}`);
      value.forEach((item, i) => {
        if (item === null || item === undefined) errs.push(`Value null at '${path}.${i + 1}.member' failed to satisfy constraint: Member must not be null`);
        else errs.push(...validateShape(service, shapes, shape.member!.shape, item, `${path}.${i + 1}.member`, sens));
      });
      break;
    }
    case 'map': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        fail(value, 'Member must be a map');
        break;
      }
      const entries = Object.entries(value as Record<string, unknown>);
      if (shape.min !== undefined && entries.length < shape.min) fail(value, `Member must have length greater than or equal to ${shape.min}`);
      if (shape.max !== undefined && entries.length > shape.max) fail(value, `Member must have length less than or equal to ${shape.max}`);
      for (const [k, v] of entries) {
        errs.push(...validateShape(service, shapes, shape.key!.shape, k, `${path}.${k}.key`, false));
        if (v === null || v === undefined) errs.push(`Value null at '${path}.${k}.value' failed to satisfy constraint: Member must not be null`);
        else errs.push(...validateShape(service, shapes, shape.value!.shape, v, `${path}.${k}.value`, sens));
      }
      break;
    }
    case 'structure': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        fail(value, 'Member must be a structure');
        break;
      }
      const obj = value as Record<string, unknown>;
      errs.push(...validateStructureMembers(service, shapes, shape, obj, path, sens));
      if (shape.union) {
        const set = Object.keys(shape.members ?? {}).filter((k) => obj[k] !== undefined && obj[k] !== null);
        if (set.length !== 1) {
          errs.push(`Value at '${path}' failed to satisfy constraint: Member must have exactly one member set (one of: ${Object.keys(shape.members ?? {}).join(', ')}), but ${set.length} were set`);
        }
      }
      break;
    }
    default:
      break;
  }
  return errs;
}

function validateStructureMembers(
  service: ServiceName,
  shapes: Record<string, Shape>,
  shape: Shape,
  obj: Record<string, unknown>,
  prefix: string,
  sensitive: boolean,
  skip: Set<string> = new Set(),
): string[] {
  const errs: string[] = [];
  const names = javaHashOrder(Object.keys(shape.members ?? {}));
  const required = new Set(shape.required ?? []);
  for (const name of names) {
    if (skip.has(name)) continue;
    const ref = shape.members![name];
    const p = prefix ? `${prefix}.${pathName(service, name)}` : pathName(service, name);
    const v = obj[name];
    if (v === undefined || v === null) {
      if (required.has(name)) errs.push(`Value null at '${p}' failed to satisfy constraint: Member must not be null`);
      continue;
    }
    errs.push(...validateShape(service, shapes, ref.shape, v, p, sensitive || SENSITIVE_MEMBERS.has(name)));
  }
  return errs;
}

/** Validates an operation's input; throws InputError with every constraint message. */
export function validateInput(op: OperationDef, input: Record<string, unknown>, typeErrors: string[] = []): void {
  if (!op.inputShape) return;
  const shape = op.shapes[op.inputShape];
  const errs = [...typeErrors, ...validateStructureMembers(op.service, op.shapes, shape, input, '', false)];
  if (errs.length > 0) throw new InputError(errs);
}
