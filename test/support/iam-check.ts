import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { evaluate, IamRequest, PolicyStatement } from './iam-policy';

/**
 * IAM-checked handler tests: every call a handler makes through its injected clients is checked,
 * at the client, against the inline policy that the synthesized template gives the role whose
 * session signs it. A refused call fails with AccessDeniedException, as on AWS, and is recorded.
 */

/** Values the template's references resolve to in a test deployment. */
export interface ResolveContext {
  readonly account: string;
  readonly region: string;
  readonly partition?: string;
  /** `Ref` of a logical id. @default `<logical id>` */
  readonly refs?: Record<string, string>;
  /** `Fn::GetAtt` as `<logical id>.<attribute>`. Role ARNs are computed from the template. */
  readonly atts?: Record<string, string>;
}

/** Resolves the intrinsics aws-cdk-lib writes into our templates. */
export function resolveIntrinsics(value: unknown, template: any, ctx: ResolveContext): any {
  const r = (v: unknown): any => resolveIntrinsics(v, template, ctx);
  if (Array.isArray(value)) return value.map(r);
  if (!value || typeof value !== 'object') return value;
  const o = value as Record<string, any>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    const [k] = keys;
    const a = o[k];
    switch (k) {
      case 'Ref':
        if (a === 'AWS::Partition') return ctx.partition ?? 'aws';
        if (a === 'AWS::Region') return ctx.region;
        if (a === 'AWS::AccountId') return ctx.account;
        if (a === 'AWS::URLSuffix') return 'amazonaws.com';
        return ctx.refs?.[a] ?? a;
      case 'Fn::GetAtt': {
        const [id, attr] = a as [string, string];
        const given = ctx.atts?.[`${id}.${attr}`];
        if (given !== undefined) return given;
        const resource = template.Resources[id];
        if (resource?.Type === 'AWS::IAM::Role' && attr === 'Arn') return roleArnOf(template, id, ctx);
        if (resource?.Type === 'AWS::DynamoDB::Table' && attr === 'Arn') return `arn:aws:dynamodb:${ctx.region}:${ctx.account}:table/${ctx.refs?.[id] ?? id}`;
        if (attr === 'Arn') return `arn:aws:test:${ctx.region}:${ctx.account}:${id}`;
        return `${id}.${attr}`;
      }
      case 'Fn::Join': return (r(a[1]) as unknown[]).join(a[0]);
      case 'Fn::Split': return String(r(a[1])).split(a[0]);
      case 'Fn::Select': return (r(a[1]) as unknown[])[Number(a[0])];
      case 'Fn::Sub':
        if (typeof a !== 'string') throw new Error('Fn::Sub with variables is not resolved here');
        return a.replace(/\$\{([^}]+)\}/g, (_, name: string) => r(name.includes('.') ? { 'Fn::GetAtt': name.split('.') } : { Ref: name }));
      default:
        if (k.startsWith('Fn::')) throw new Error(`${k} is not resolved here`);
    }
  }
  return Object.fromEntries(Object.entries(o).map(([key, v]) => [key, r(v)]));
}

/** A role's ARN as IAM makes it: `arn:aws:iam::<account>:role<path><name>` (the name is the logical id here). */
export function roleArnOf(template: any, logicalId: string, ctx: ResolveContext): string {
  const path = resolveIntrinsics(template.Resources[logicalId].Properties.Path ?? '/', template, ctx);
  return `arn:${ctx.partition ?? 'aws'}:iam::${ctx.account}:role${path}${logicalId}`;
}

/** A custom resource's properties as CloudFormation delivers them to the handler (strings). */
export function resourceProperties(template: any, logicalId: string, ctx: ResolveContext): Record<string, any> {
  const { ServiceToken, ServiceTimeout, ...props } = resolveIntrinsics(template.Resources[logicalId].Properties, template, ctx);
  return props;
}

/** The resource type of a handler role: the path segment after the stack's (`.../<stack hash>/image/...`). */
export function roleKind(roleArn: string): string {
  const m = /:role\/cdk-lambda-microvms\/[0-9a-f]+\/([a-z-]+)\//.exec(roleArn);
  if (!m) throw new Error(`${roleArn} is not a handler role of this library`);
  return m[1];
}

/** One checked request. */
export interface CheckedCall extends IamRequest {
  readonly role: string;
  readonly allowed: boolean;
  /** Sent again with another role's session after a refusal, and allowed then. */
  resolved?: boolean;
}

class AccessDeniedException extends Error {
  public readonly $fault = 'client';
  constructor(message: string) {
    super(message);
    this.name = 'AccessDeniedException';
  }
}

/** Where MicroVMs live: instance operations are authorized on their image (MicroVMs have no ARN). */
export interface CheckerEnv {
  readonly account: string;
  readonly region: string;
  /** The image ARN of a MicroVM, or undefined when unknown. */
  readonly imageOfMicrovm: (microvmId: string) => string | undefined;
}

export class IamChecker {
  /** Role ARN → its statements, as the templates deployed so far give them. */
  public readonly roles = new Map<string, PolicyStatement[]>();
  public readonly calls: CheckedCall[] = [];
  private readonly keys = new Map<string, string>();
  private readonly inputs = new WeakMap<object, CheckedCall[]>();

  constructor(private readonly env: CheckerEnv) {}

  /** Adds (or replaces) every handler role of `template`, with its resolved inline policy. Returns logical id → ARN. */
  public deployRoles(template: any, ctx: ResolveContext): Record<string, string> {
    const arns: Record<string, string> = {};
    for (const [id, res] of Object.entries<any>(template.Resources)) {
      if (res.Type !== 'AWS::IAM::Role' || !/HandlerRole/.test(id)) continue;
      const arn = roleArnOf(template, id, ctx);
      const statements = (res.Properties.Policies ?? []).flatMap((p: any) => resolveIntrinsics(p.PolicyDocument, template, ctx).Statement);
      this.roles.set(arn, statements);
      arns[id] = arn;
    }
    return arns;
  }

  /** CloudFormation deleted the role (cleanup of a replaced role). */
  public deleteRole(arn: string): void {
    this.roles.delete(arn);
  }

  /** The dispatch's AssumeRole: a session whose access key id names the role. */
  public assumeRole = (roleArn: string, sessionName: string): AwsCredentialIdentityProvider => async (): Promise<AwsCredentialIdentity> => {
    if (!this.roles.has(roleArn)) throw new AccessDeniedException(`sts:AssumeRole: ${roleArn} does not exist (session ${sessionName})`);
    const accessKeyId = `ASIA${String(this.keys.size).padStart(16, '0')}`;
    this.keys.set(accessKeyId, roleArn);
    return { accessKeyId, secretAccessKey: 'test', sessionToken: sessionName };
  };

  /** Checks every command an SDK v3 client sends (`service`: how its actions are named). */
  public attach<C extends { middlewareStack: any; config: any }>(client: C, service: 'lambda' | 'dynamodb' | 'secretsmanager' | 's3'): C {
    client.middlewareStack.add((next: any, context: any) => async (args: any) => {
      const identity = await client.config.credentials();
      await this.check(identity.accessKeyId, args.input, this.requestsFor(service, context.commandName.replace(/Command$/, ''), args.input));
      return next(args);
    }, { step: 'initialize', name: 'iamCheck', priority: 'high' });
    return client;
  }

  /** Checks every call of the Lambda Core client's methods. */
  public wrapLambdaCore<T extends object>(core: T, credentials: AwsCredentialIdentityProvider): T {
    return new Proxy(core, {
      get: (target, prop, receiver) => {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'sign') return value;
        return async (input: any) => {
          const operation = prop.charAt(0).toUpperCase() + prop.slice(1);
          await this.check((await credentials()).accessKeyId, input, this.lambdaCoreRequests(operation, input));
          return value.call(target, input);
        };
      },
    });
  }

  /** Calls refused to every role that tried them. */
  public unauthorized(): CheckedCall[] {
    return this.calls.filter((c) => !c.allowed && !c.resolved);
  }

  /** `<resource type> <action>` (lower case) of every call allowed at least once. */
  public calledActions(): Set<string> {
    return new Set(this.calls.filter((c) => c.allowed).map((c) => `${roleKind(c.role)} ${c.action.toLowerCase()}`));
  }

  /** `<resource type> <action>` (lower case) of every action the handler roles deployed so far grant. */
  public grantedActions(): Set<string> {
    const out = new Set<string>();
    for (const [role, statements] of this.roles) {
      for (const s of statements) for (const a of [s.Action ?? []].flat()) out.add(`${roleKind(role)} ${a.toLowerCase()}`);
    }
    return out;
  }

  private async check(accessKeyId: string, input: object, requests: IamRequest[]): Promise<void> {
    const role = this.keys.get(accessKeyId);
    if (!role) throw new Error(`a call was signed by ${accessKeyId}, which is no handler role session: the handler used credentials it was not given`);
    const statements = this.roles.get(role) ?? [];
    const results = requests.map((r) => ({ ...r, role, allowed: evaluate(statements, r).decision === 'Allow' }));
    this.calls.push(...results);
    const denied = results.filter((r) => !r.allowed);
    if (denied.length === 0) {
      for (const earlier of this.inputs.get(input) ?? []) earlier.resolved = true;
      return;
    }
    this.inputs.set(input, [...(this.inputs.get(input) ?? []), ...denied]);
    throw new AccessDeniedException(`User: ${role} is not authorized to perform: ${denied.map((d) => `${d.action} on resource: ${d.resource}`).join(', ')}`);
  }

  private imageArn(identifier: string): string {
    return identifier.startsWith('arn:') ? identifier : `arn:aws:lambda:${this.env.region}:${this.env.account}:microvm-image:${identifier}`;
  }

  private connectorRequests(arns: string[] | undefined): IamRequest[] {
    return (arns ?? []).map((resource) => ({ action: 'lambda:PassNetworkConnector', resource }));
  }

  /** The IAM requests one API call makes: its own action, and the actions it implies (PassRole, PassNetworkConnector). */
  private requestsFor(service: string, operation: string, input: any): IamRequest[] {
    const action = `${service}:${operation}`;
    if (service === 'dynamodb') {
      const tables: string[] = input.TableName ? [input.TableName] : Object.keys(input.RequestItems ?? {});
      return tables.map((t) => ({ action, resource: `arn:aws:dynamodb:${this.env.region}:${this.env.account}:table/${t}` }));
    }
    if (service === 'secretsmanager') return [{ action, resource: input.SecretId }];
    if (service === 's3') return [{ action, resource: `arn:aws:s3:::${input.Bucket}/${input.Key}` }];
    const passRole = (arn: string | undefined): IamRequest[] => (arn ? [{ action: 'iam:PassRole', resource: arn, context: { 'iam:PassedToService': 'lambda.amazonaws.com' } }] : []);
    switch (operation) {
      case 'CreateMicrovmImage':
        return [{ action, resource: '*' }, ...passRole(input.buildRoleArn), ...this.connectorRequests(input.egressNetworkConnectors)];
      case 'UpdateMicrovmImage':
        return [
          { action, resource: this.imageArn(input.imageIdentifier) },
          ...passRole(input.buildRoleArn),
          ...this.connectorRequests(input.egressNetworkConnectors),
        ];
      case 'RunMicrovm': {
        const region = this.env.region;
        const managed = (name: string) => `arn:aws:lambda:${region}:aws:network-connector:aws-network-connector:${name}`;
        // Without connectors, RunMicrovm passes the AWS-managed defaults.
        const ingress = input.ingressNetworkConnectors?.length ? input.ingressNetworkConnectors : [managed('HTTP_INGRESS')];
        const egress = input.egressNetworkConnectors?.length ? input.egressNetworkConnectors : [managed('INTERNET_EGRESS')];
        return [
          { action, resource: this.imageArn(input.imageIdentifier) },
          ...passRole(input.executionRoleArn),
          ...this.connectorRequests([...ingress, ...egress]),
        ];
      }
      // No IAM resource type (the Service Authorization Reference lists none for these).
      case 'ListMicrovms':
      case 'ListMicrovmImages':
      case 'ListManagedMicrovmImages':
      case 'ListManagedMicrovmImageVersions':
        return [{ action, resource: '*' }];
      case 'TagResource':
      case 'UntagResource':
      case 'ListTags':
        return [{ action, resource: input.Resource }];
      case 'GetMicrovm':
      case 'SuspendMicrovm':
      case 'ResumeMicrovm':
      case 'TerminateMicrovm': {
        const image = this.env.imageOfMicrovm(input.microvmIdentifier);
        if (!image) throw new Error(`${operation}: MicroVM ${input.microvmIdentifier} is unknown, so its image (what IAM authorizes the call on) is too`);
        return [{ action, resource: image }];
      }
      default: {
        if (!input.imageIdentifier) throw new Error(`the IAM check does not know the resource of ${action}: add it to test/support/iam-check.ts`);
        const arn = this.imageArn(input.imageIdentifier);
        return [{ action, resource: input.imageVersion ? `${arn}:${input.imageVersion}` : arn }];
      }
    }
  }

  private lambdaCoreRequests(operation: string, input: any): IamRequest[] {
    const action = `lambda:${operation}`;
    const connector = (id: string) => (id.startsWith('arn:') ? id : `arn:aws:lambda:${this.env.region}:${this.env.account}:network-connector:${id}`);
    switch (operation) {
      case 'CreateNetworkConnector':
        // The id is assigned by the service: the request is authorized on a connector ARN not known yet.
        return [{ action, resource: connector(`nc-new-${input.Name}`) },
          ...(input.OperatorRole ? [{ action: 'iam:PassRole', resource: input.OperatorRole, context: { 'iam:PassedToService': 'lambda.amazonaws.com' } }] : [])];
      case 'UpdateNetworkConnector':
        return [{ action, resource: connector(input.Identifier) },
          ...(input.OperatorRole ? [{ action: 'iam:PassRole', resource: input.OperatorRole, context: { 'iam:PassedToService': 'lambda.amazonaws.com' } }] : [])];
      case 'GetNetworkConnector':
      case 'DeleteNetworkConnector':
        return [{ action, resource: connector(input.Identifier) }];
      case 'TagResource':
      case 'UntagResource':
      case 'ListTags':
        return [{ action, resource: input.Resource }];
      default:
        throw new Error(`the IAM check does not know the resource of ${action}: add it to test/support/iam-check.ts`);
    }
  }
}

