/**
 * Just enough of CloudFormation's template evaluation for the test kit: which resources are this
 * library's custom resources, in which order they deploy, and their properties with every intrinsic
 * function resolved. Resources the kit does not deploy (roles, VPCs, secrets, ...) resolve to stable
 * made-up ids and ARNs in their real formats (`subnet-…`, `sg-…`, `arn:aws:iam::<account>:role/…`).
 */
import { createHash } from 'node:crypto';

/** The custom resource types of cdk-lambda-microvms (src/private/wire.ts ResourceType). */
export const MICROVM_RESOURCE_TYPES = [
  'Custom::LambdaNetworkConnector',
  'Custom::LambdaMicroVmImage',
  'Custom::LambdaMicroVmImageVersion',
  'Custom::LambdaMicroVmFleet',
] as const;
export type MicrovmResourceType = typeof MICROVM_RESOURCE_TYPES[number];

export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DependsOn?: string | string[];
  readonly Condition?: string;
}

export interface CfnTemplate {
  readonly Resources?: Record<string, TemplateResource>;
  readonly Parameters?: Record<string, { Default?: unknown }>;
  readonly Conditions?: Record<string, unknown>;
  readonly Mappings?: Record<string, Record<string, Record<string, unknown>>>;
}

export interface ResolveContext {
  readonly region: string;
  readonly account: string;
  readonly stackName: string;
  readonly stackId: string;
  /** Physical id and attributes of the kit's resources already deployed. */
  readonly deployed: (logicalId: string) => { physicalResourceId: string; data: Record<string, string> } | undefined;
}

const NO_VALUE = Symbol('AWS::NoValue');

function hex(seed: string, n: number): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, n);
}

/** Every logical id a value refers to (Ref, Fn::GetAtt, ${X} in Fn::Sub). */
export function referencesOf(value: unknown): Set<string> {
  const out = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (typeof o.Ref === 'string' && !o.Ref.startsWith('AWS::')) out.add(o.Ref);
    const ga = o['Fn::GetAtt'];
    if (Array.isArray(ga) && typeof ga[0] === 'string') out.add(ga[0]);
    else if (typeof ga === 'string') out.add(ga.split('.')[0]);
    const sub = o['Fn::Sub'];
    const subText = typeof sub === 'string' ? sub : Array.isArray(sub) && typeof sub[0] === 'string' ? sub[0] : undefined;
    if (subText) {
      const vars = Array.isArray(sub) && sub[1] && typeof sub[1] === 'object' ? Object.keys(sub[1] as object) : [];
      for (const m of subText.matchAll(/\$\{([^!}][^}]*)\}/g)) {
        const name = m[1].split('.')[0];
        if (!name.startsWith('AWS::') && !vars.includes(name)) out.add(name);
      }
    }
    Object.values(o).forEach(walk);
  };
  walk(value);
  return out;
}

/** The kit's resources in an order where each comes after everything it refers to or depends on. */
export function deployOrder(template: CfnTemplate, include: (type: string) => boolean): string[] {
  const resources = template.Resources ?? {};
  const ours = Object.keys(resources).filter((id) => include(resources[id].Type));
  const deps = (id: string): string[] => {
    const r = resources[id];
    const explicit = r.DependsOn === undefined ? [] : Array.isArray(r.DependsOn) ? r.DependsOn : [r.DependsOn];
    return [...new Set([...referencesOf(r.Properties), ...explicit])];
  };
  // Dependencies through resources the kit does not deploy count too (image → role → connector is rare, but cheap).
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, path: string[]): void => {
    if (state.get(id) === 'done' || !resources[id]) return;
    if (state.get(id) === 'visiting') throw new Error(`circular dependency between resources: ${[...path, id].join(' -> ')}`);
    state.set(id, 'visiting');
    for (const d of deps(id)) visit(d, [...path, id]);
    state.set(id, 'done');
    if (include(resources[id].Type)) order.push(id);
  };
  for (const id of ours) visit(id, []);
  return order;
}

/** Evaluates every intrinsic function in `value`, as CloudFormation would when it sends the request. */
export function resolve(template: CfnTemplate, value: unknown, ctx: ResolveContext): unknown {
  const out = evaluate(template, value, ctx);
  return out === NO_VALUE ? undefined : out;
}

function pseudo(name: string, ctx: ResolveContext): unknown {
  switch (name) {
    case 'AWS::Region': return ctx.region;
    case 'AWS::AccountId': return ctx.account;
    case 'AWS::Partition': return 'aws';
    case 'AWS::URLSuffix': return 'amazonaws.com';
    case 'AWS::StackName': return ctx.stackName;
    case 'AWS::StackId': return ctx.stackId;
    case 'AWS::NoValue': return NO_VALUE;
    case 'AWS::NotificationARNs': return [];
    default: throw new Error(`unsupported pseudo parameter ${name}`);
  }
}

/** Ref of a resource: the kit's physical id, or a made-up id in the resource type's real format. */
function ref(template: CfnTemplate, id: string, ctx: ResolveContext): unknown {
  if (id.startsWith('AWS::')) return pseudo(id, ctx);
  const param = template.Parameters?.[id];
  if (param) {
    if (param.Default === undefined) throw new Error(`parameter ${id} has no default: the test kit cannot ask for one`);
    return param.Default;
  }
  const r = template.Resources?.[id];
  if (!r) throw new Error(`Ref to ${id}, which the template does not define`);
  const deployed = ctx.deployed(id);
  if (deployed) return deployed.physicalResourceId;
  const h = hex(`${ctx.stackName}/${id}`, 17);
  switch (r.Type) {
    case 'AWS::EC2::Subnet': return `subnet-${h}`;
    case 'AWS::EC2::SecurityGroup': return `sg-${h}`;
    case 'AWS::EC2::VPC': return `vpc-${h}`;
    case 'AWS::IAM::Role': return `${ctx.stackName}-${id}-${h.slice(0, 12).toUpperCase()}`.slice(0, 64);
    case 'AWS::SecretsManager::Secret': return `arn:aws:secretsmanager:${ctx.region}:${ctx.account}:secret:${id}-${h.slice(0, 6)}`;
    case 'AWS::S3::Bucket': return `${ctx.stackName}-${id}-${h.slice(0, 12)}`.toLowerCase();
    default: return `${ctx.stackName}-${id}-${h.slice(0, 12).toUpperCase()}`;
  }
}

function getAtt(template: CfnTemplate, id: string, attr: string, ctx: ResolveContext): unknown {
  const r = template.Resources?.[id];
  if (!r) throw new Error(`Fn::GetAtt of ${id}, which the template does not define`);
  const deployed = ctx.deployed(id);
  if (deployed) {
    if (!(attr in deployed.data)) throw new Error(`${id} (${r.Type}) returned no attribute ${attr}; it has: ${Object.keys(deployed.data).join(', ')}`);
    return deployed.data[attr];
  }
  const name = String(ref(template, id, ctx));
  const [, service, kind] = /^AWS::([A-Za-z0-9]+)::([A-Za-z0-9]+)$/.exec(r.Type) ?? [];
  if (r.Type === 'AWS::IAM::Role' && attr === 'Arn') return `arn:aws:iam::${ctx.account}:role/${name}`;
  if (r.Type === 'AWS::EC2::SecurityGroup' && attr === 'GroupId') return name;
  if (r.Type === 'AWS::Lambda::Function' && attr === 'Arn') return `arn:aws:lambda:${ctx.region}:${ctx.account}:function:${name}`;
  if (r.Type === 'AWS::DynamoDB::Table' && attr === 'Arn') return `arn:aws:dynamodb:${ctx.region}:${ctx.account}:table/${name}`;
  if (attr === 'Arn' && service) return `arn:aws:${service.toLowerCase()}:${ctx.region}:${ctx.account}:${kind.toLowerCase()}/${name}`;
  return `${name}.${attr}`;
}

function condition(template: CfnTemplate, name: string, ctx: ResolveContext): boolean {
  const c = template.Conditions?.[name];
  if (c === undefined) throw new Error(`unknown condition ${name}`);
  return Boolean(evaluate(template, c, ctx));
}

function evaluate(template: CfnTemplate, v: unknown, ctx: ResolveContext): unknown {
  if (Array.isArray(v)) return v.map((x) => evaluate(template, x, ctx)).filter((x) => x !== NO_VALUE);
  if (!v || typeof v !== 'object') return v;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    const [k] = keys;
    const arg = o[k];
    const ev = (x: unknown) => evaluate(template, x, ctx);
    switch (k) {
      case 'Ref': return ref(template, String(arg), ctx);
      case 'Fn::GetAtt': {
        const [id, attr] = Array.isArray(arg) ? [String(arg[0]), String(ev(arg[1]))] : String(arg).split(/\.(.*)/s);
        return getAtt(template, id, attr, ctx);
      }
      case 'Fn::Join': {
        const [sep, list] = arg as [string, unknown];
        return (ev(list) as unknown[]).map(String).join(sep);
      }
      case 'Fn::Select': {
        const [i, list] = arg as [unknown, unknown];
        const items = ev(list) as unknown[];
        const n = Number(ev(i));
        if (!(n >= 0 && n < items.length)) throw new Error(`Fn::Select index ${n} out of range (${items.length} items)`);
        return items[n];
      }
      case 'Fn::Split': {
        const [sep, s] = arg as [string, unknown];
        return String(ev(s)).split(sep);
      }
      case 'Fn::GetAZs': return ['a', 'b', 'c'].map((z) => `${ctx.region}${z}`);
      case 'Fn::Base64': return Buffer.from(String(ev(arg))).toString('base64');
      case 'Fn::Sub': {
        const [text, vars] = typeof arg === 'string' ? [arg, {}] : (arg as [string, Record<string, unknown>]);
        const values = Object.fromEntries(Object.entries(vars ?? {}).map(([n, x]) => [n, ev(x)]));
        return text.replace(/\$\{(!?)([^}]*)\}/g, (_, bang: string, name: string) => {
          if (bang) return `\${${name}}`;
          if (name in values) return String(values[name]);
          if (name.startsWith('AWS::')) return String(pseudo(name, ctx));
          const [id, attr] = name.split(/\.(.*)/s);
          return String(attr ? getAtt(template, id, attr, ctx) : ref(template, id, ctx));
        });
      }
      case 'Fn::FindInMap': {
        const [map, top, second] = (arg as unknown[]).map(ev).map(String);
        const found = template.Mappings?.[map]?.[top]?.[second];
        if (found === undefined) throw new Error(`Fn::FindInMap: no ${map}.${top}.${second}`);
        return found;
      }
      case 'Fn::If': {
        const [cond, yes, no] = arg as [string, unknown, unknown];
        return condition(template, cond, ctx) ? ev(yes) : ev(no);
      }
      case 'Fn::Equals': {
        const [a, b] = (arg as unknown[]).map(ev);
        return JSON.stringify(a) === JSON.stringify(b);
      }
      case 'Fn::Not': return !(ev((arg as unknown[])[0]));
      case 'Fn::And': return (arg as unknown[]).every((x) => Boolean(ev(x)));
      case 'Fn::Or': return (arg as unknown[]).some((x) => Boolean(ev(x)));
      case 'Condition': return condition(template, String(arg), ctx);
      case 'Fn::ImportValue': throw new Error('Fn::ImportValue: the test kit deploys one stack; pass the value directly');
      default:
        if (k.startsWith('Fn::')) throw new Error(`${k} is not supported by the test kit`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) {
    const r = evaluate(template, x, ctx);
    if (r !== NO_VALUE) out[k] = r;
  }
  return out;
}
