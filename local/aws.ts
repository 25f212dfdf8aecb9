/**
 * The few AWS API calls the demo and the end-to-end tests make against ministack (stack status,
 * stack events, and the inventory that proves a destroy left nothing behind), as SigV4-signed
 * HTTP requests: the project has no CloudFormation/Lambda/IAM SDK clients, and these are plain
 * AWS protocols, so the same code works against AWS.
 */
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

export class AwsError extends Error {
  constructor(public readonly service: string, public readonly status: number, public readonly body: string) {
    super(`${service} HTTP ${status}: ${body.slice(0, 500)}`);
  }
}

/** A minimal signed AWS client for one endpoint (ministack's single port serves every service). */
export class LocalAws {
  private readonly url: URL;

  constructor(endpoint: string, private readonly region = 'us-east-1') {
    this.url = new URL(endpoint);
  }

  private async send(
    service: string, method: string, path: string, headers: Record<string, string>, body?: string, query?: Record<string, string>,
  ): Promise<string> {
    const signer = new SignatureV4({
      service,
      region: this.region,
      credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test' },
      sha256: Sha256,
    });
    const request = new HttpRequest({
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      port: this.url.port ? Number(this.url.port) : undefined,
      method,
      path,
      query,
      headers: { ...headers, host: this.url.host },
      body,
    });
    const signed = await signer.sign(request);
    const qs = query ? `?${new URLSearchParams(query).toString()}` : '';
    const res = await fetch(`${this.url.origin}${path}${qs}`, { method, headers: signed.headers as Record<string, string>, body });
    const text = await res.text();
    if (!res.ok) throw new AwsError(service, res.status, text);
    return text;
  }

  /** AWS Query protocol (CloudFormation, IAM, EC2): returns the XML response. */
  query(service: string, action: string, version: string, params: Record<string, string> = {}): Promise<string> {
    const body = new URLSearchParams({ Action: action, Version: version, ...params }).toString();
    return this.send(service, 'POST', '/', { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body);
  }

  /** AWS JSON protocol (Step Functions, Logs, DynamoDB, Secrets Manager). */
  async json(service: string, target: string, jsonVersion: '1.0' | '1.1', payload: unknown = {}): Promise<any> {
    const text = await this.send(service, 'POST', '/', { 'content-type': `application/x-amz-json-${jsonVersion}`, 'x-amz-target': target }, JSON.stringify(payload));
    return text ? JSON.parse(text) : {};
  }

  /** REST-JSON GET (Lambda). */
  async restGet(service: string, path: string, query?: Record<string, string>): Promise<any> {
    return JSON.parse(await this.send(service, 'GET', path, {}, undefined, query));
  }

  /** DescribeStacks for one stack: its status and outputs, or undefined when it does not exist. */
  async describeStack(stackName: string): Promise<StackDescription | undefined> {
    let xml: string;
    try {
      xml = await this.query('cloudformation', 'DescribeStacks', '2010-05-15', { StackName: stackName });
    } catch (e) {
      if (e instanceof AwsError && /does not exist/.test(e.body)) return undefined;
      throw e;
    }
    const member = xml.match(/<member>[\s\S]*<\/member>/)?.[0];
    if (!member) return undefined;
    const outputs: Record<string, string> = {};
    const outputsXml = /<Outputs>([\s\S]*?)<\/Outputs>/.exec(member)?.[1] ?? '';
    for (const m of outputsXml.matchAll(/<member>([\s\S]*?)<\/member>/g)) {
      const key = tag(m[1], 'OutputKey');
      const value = tag(m[1], 'OutputValue');
      if (key !== undefined && value !== undefined) outputs[key] = value;
    }
    return {
      stackName,
      status: tag(member, 'StackStatus') ?? 'UNKNOWN',
      statusReason: tag(member, 'StackStatusReason'),
      outputs,
    };
  }

  /** DescribeStackEvents, oldest first. */
  async stackEvents(stackName: string): Promise<StackEvent[]> {
    const xml = await this.query('cloudformation', 'DescribeStackEvents', '2010-05-15', { StackName: stackName });
    const events = [...xml.matchAll(/<member>([\s\S]*?)<\/member>/g)].map((m) => ({
      timestamp: tag(m[1], 'Timestamp') ?? '',
      logicalId: tag(m[1], 'LogicalResourceId') ?? '',
      resourceType: tag(m[1], 'ResourceType') ?? '',
      status: tag(m[1], 'ResourceStatus') ?? '',
      reason: tag(m[1], 'ResourceStatusReason'),
    }));
    return events.reverse();
  }

  /**
   * Names of everything a stack can leave behind, per kind, as ministack lists them. A destroy
   * left nothing when the inventory afterwards equals the one before the first deploy.
   */
  async inventory(): Promise<Inventory> {
    const xmlNames = (xml: string, element: string) => [...xml.matchAll(new RegExp(`<${element}>([^<]*)</${element}>`, 'g'))].map((m) => m[1]);
    const [
      stacks, functions, stateMachines, roles, policies, logGroups, tables, vpcs, subnets, securityGroups, secrets, parameters,
    ] = await Promise.all([
      this.query('cloudformation', 'ListStacks', '2010-05-15').then((xml) =>
        [...xml.matchAll(/<member>([\s\S]*?)<\/member>/g)]
          .filter((m) => tag(m[1], 'StackStatus') !== 'DELETE_COMPLETE')
          .map((m) => tag(m[1], 'StackName') ?? '')),
      this.restGet('lambda', '/2015-03-31/functions/').then((r) => (r.Functions ?? []).map((f: any) => f.FunctionName)),
      this.json('states', 'AWSStepFunctions.ListStateMachines', '1.0').then((r) => (r.stateMachines ?? []).map((s: any) => s.name)),
      this.query('iam', 'ListRoles', '2010-05-08').then((xml) => xmlNames(xml, 'RoleName')),
      this.query('iam', 'ListPolicies', '2010-05-08', { Scope: 'Local' }).then((xml) => xmlNames(xml, 'PolicyName')),
      this.json('logs', 'Logs_20140328.DescribeLogGroups', '1.1').then((r) => (r.logGroups ?? []).map((g: any) => g.logGroupName)),
      this.json('dynamodb', 'DynamoDB_20120810.ListTables', '1.0').then((r) => r.TableNames ?? []),
      this.query('ec2', 'DescribeVpcs', '2016-11-15').then((xml) => xmlNames(xml, 'vpcId')),
      this.query('ec2', 'DescribeSubnets', '2016-11-15').then((xml) => xmlNames(xml, 'subnetId')),
      this.query('ec2', 'DescribeSecurityGroups', '2016-11-15').then((xml) => xmlNames(xml, 'groupId')),
      this.json('secretsmanager', 'secretsmanager.ListSecrets', '1.1').then((r) => (r.SecretList ?? []).map((s: any) => s.Name)),
      this.json('ssm', 'AmazonSSM.DescribeParameters', '1.1').then((r) => (r.Parameters ?? []).map((p: any) => p.Name)),
    ]);
    const uniq = (a: string[]) => [...new Set(a)].sort();
    return {
      stacks: uniq(stacks),
      functions: uniq(functions),
      stateMachines: uniq(stateMachines),
      roles: uniq(roles),
      policies: uniq(policies),
      logGroups: uniq(logGroups),
      tables: uniq(tables),
      vpcs: uniq(vpcs),
      subnets: uniq(subnets),
      securityGroups: uniq(securityGroups),
      secrets: uniq(secrets),
      parameters: uniq(parameters),
    };
  }
}

/**
 * What a destroy left behind: the inventory after it minus the one before the first deploy.
 *
 * One ministack behaviour is told apart, with evidence, instead of being counted: ministack writes
 * a Lambda invocation's logs after the invocation returns, creating the function's log group if it
 * is missing (services/lambda_svc.py `_emit_lambda_logs`). The provider framework function that
 * answers CloudFormation's last Delete sends its response during the invocation, so CloudFormation
 * can delete the framework's log group before that invocation's logs are written, and ministack
 * then creates the group again. Such a group is reported in `recreatedLogGroups`, not in `left`,
 * only when all of this holds: the stack had it before the destroy, it was created after the
 * destroy started, and it holds nothing but Lambda log streams (`yyyy/mm/dd/[$LATEST]...`).
 */
export async function destroyLeftovers(aws: LocalAws, baseline: Inventory, beforeDestroy: Inventory, destroyStartedMs: number):
Promise<{ left: Partial<Inventory>; recreatedLogGroups: string[] }> {
  const left = inventoryDiff(baseline, await aws.inventory());
  const recreatedLogGroups: string[] = [];
  if (left.logGroups) {
    const groups = (await aws.json('logs', 'Logs_20140328.DescribeLogGroups', '1.1')).logGroups ?? [];
    const keep: string[] = [];
    for (const name of left.logGroups) {
      const group = groups.find((g: any) => g.logGroupName === name);
      const streams = (await aws.json('logs', 'Logs_20140328.DescribeLogStreams', '1.1', { logGroupName: name })).logStreams ?? [];
      const lambdaOnly = streams.length > 0 && streams.every((st: any) => /^\d{4}\/\d{2}\/\d{2}\/\[[^\]]+\]/.test(st.logStreamName));
      if (beforeDestroy.logGroups.includes(name) && group && group.creationTime >= destroyStartedMs && lambdaOnly) recreatedLogGroups.push(name);
      else keep.push(name);
    }
    if (keep.length) left.logGroups = keep;
    else delete left.logGroups;
  }
  return { left, recreatedLogGroups };
}

export interface StackDescription {
  readonly stackName: string;
  readonly status: string;
  readonly statusReason?: string;
  readonly outputs: Record<string, string>;
}

export interface StackEvent {
  readonly timestamp: string;
  readonly logicalId: string;
  readonly resourceType: string;
  readonly status: string;
  readonly reason?: string;
}

export type Inventory = Record<'stacks' | 'functions' | 'stateMachines' | 'roles' | 'policies' | 'logGroups' | 'tables' | 'vpcs' | 'subnets' | 'securityGroups' | 'secrets' | 'parameters', string[]>;

/** What `after` has that `before` did not, per kind (empty kinds left out). */
export function inventoryDiff(before: Inventory, after: Inventory): Partial<Inventory> {
  const out: Partial<Inventory> = {};
  for (const kind of Object.keys(after) as (keyof Inventory)[]) {
    const added = after[kind].filter((n) => !before[kind].includes(n));
    if (added.length) out[kind] = added;
  }
  return out;
}

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? unescapeXml(m[1]) : undefined;
}

function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}
