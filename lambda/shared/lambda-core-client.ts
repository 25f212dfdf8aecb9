/**
 * A small typed client for the Lambda Core API (network connectors), written from the service
 * model (`lambda-core-service-2.json`, API version 2026-04-30): no SDK client for it is published
 * on the registry this project installs from.
 *
 * - restJson1 under `/2026-04-04/network-connectors`, plus Lambda's classic tagging routes
 *   `/2017-03-31/tags/{ARN}`, which accept network connector ARNs since the 2026-06-22 release.
 * - SigV4 with the signing name `lambda` (@smithy/signature-v4), credentials from the default
 *   provider chain unless injected.
 * - Endpoint: AWS_ENDPOINT_URL_LAMBDA_CORE, else AWS_ENDPOINT_URL, else the Region's Lambda
 *   endpoint, unless injected.
 * - Errors: `LambdaCoreServiceError`, named from `X-Amzn-ErrorType` (or the body's `__type`/`code`),
 *   with the message whichever of `message` / `Message` the shape uses.
 * - Retries: what classifyError calls throttled or transient (TooManyRequests, ServiceException,
 *   any 5xx, dropped connections), with capped exponential backoff and full jitter, never shorter
 *   than a Retry-After header.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { Clock } from './clock';
import { log } from './log';
import { withRetries } from './retry';

export const LAMBDA_CORE_PATH = '/2026-04-04/network-connectors';
const TAGS_PATH = '/2017-03-31/tags';
const SIGNING_NAME = 'lambda';

export type NetworkConnectorState = 'PENDING' | 'ACTIVE' | 'INACTIVE' | 'FAILED' | 'DELETING' | 'DELETE_FAILED';
export type LastUpdateStatus = 'Successful' | 'Failed' | 'InProgress';

export interface VpcEgressConfiguration {
  readonly SubnetIds?: string[];
  readonly SecurityGroupIds?: string[];
  /** IPv4 | DualStack */
  readonly NetworkProtocol?: string;
  /** Exactly one item: MicroVm (WebFunction in later revisions). */
  readonly AssociatedComputeResourceTypes?: string[];
}

/** A union: exactly one member. */
export interface NetworkConnectorConfiguration {
  readonly VpcEgressConfiguration?: VpcEgressConfiguration;
}

export interface CreateNetworkConnectorInput {
  readonly Name: string;
  readonly Configuration: NetworkConnectorConfiguration;
  readonly OperatorRole?: string;
  /** 1-64 characters. */
  readonly ClientToken?: string;
  readonly Tags?: Record<string, string>;
}

export interface UpdateNetworkConnectorInput {
  /** Id, name or ARN. */
  readonly Identifier: string;
  /** The full configuration: it replaces the existing one. */
  readonly Configuration?: NetworkConnectorConfiguration;
  readonly OperatorRole?: string;
  readonly ClientToken?: string;
}

export interface ListNetworkConnectorsInput {
  readonly State?: NetworkConnectorState;
  readonly Marker?: string;
  /** 1-100. */
  readonly MaxItems?: number;
}

/** Get's answer; Create, Update and Delete answer a subset. */
export interface NetworkConnector {
  readonly Arn: string;
  readonly Name: string;
  readonly Id: string;
  readonly Version?: number;
  readonly LatestVersion?: number;
  readonly LatestVersionArn?: string;
  readonly Configuration?: NetworkConnectorConfiguration;
  readonly OperatorRole?: string;
  readonly State?: NetworkConnectorState;
  readonly StateReason?: string;
  readonly StateReasonCode?: string;
  readonly LastUpdateStatus?: LastUpdateStatus;
  readonly LastUpdateStatusReason?: string;
  readonly LastUpdateStatusReasonCode?: string;
  /** ISO 8601. */
  readonly LastModified?: string;
}

export interface NetworkConnectorSummary {
  readonly Arn: string;
  readonly Name: string;
  readonly Id: string;
  readonly Type: string;
  readonly State?: NetworkConnectorState;
  readonly LastModified?: string;
}

export interface ListNetworkConnectorsOutput {
  readonly NetworkConnectors: NetworkConnectorSummary[];
  readonly NextMarker?: string;
}

/** An error the service answered with (or a transport failure, statusCode 0). */
export class LambdaCoreServiceError extends Error {
  /** The error type, e.g. ResourceNotFoundException. */
  public readonly name: string;
  public readonly statusCode: number;
  public readonly $fault: 'client' | 'server';
  /** The shape's `Type` member (Lambda-style: User / Service). */
  public readonly type?: string;
  /** TooManyRequestsException's `Reason`. */
  public readonly reason?: string;
  /** From the Retry-After header. */
  public readonly retryAfterSeconds?: number;
  public readonly requestId?: string;

  constructor(init: {
    name: string; message: string; statusCode: number; type?: string; reason?: string; retryAfterSeconds?: number; requestId?: string;
  }) {
    super(init.message);
    this.name = init.name;
    this.statusCode = init.statusCode;
    this.$fault = init.statusCode >= 500 || init.statusCode === 0 ? 'server' : 'client';
    this.type = init.type;
    this.reason = init.reason;
    this.retryAfterSeconds = init.retryAfterSeconds;
    this.requestId = init.requestId;
  }
}

export interface LambdaCoreClientOptions {
  /** @default AWS_REGION, then AWS_DEFAULT_REGION */
  readonly region?: string;
  /** @default AWS_ENDPOINT_URL_LAMBDA_CORE, then AWS_ENDPOINT_URL, then https://lambda.<region>.<dns suffix> */
  readonly endpoint?: string;
  /** @default the default credential provider chain */
  readonly credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Attempts per call, the first included. @default 8 */
  readonly maxAttempts?: number;
  /** @default 200 */
  readonly baseDelayMs?: number;
  /** @default 20000 */
  readonly maxDelayMs?: number;
  /** Per attempt. @default 30000 */
  readonly requestTimeoutMs?: number;
  /** How retries wait. @default systemClock (tests pass a fake) */
  readonly clock?: Clock;
  /** Jitter source, [0, 1). */
  readonly random?: () => number;
}

/** The Region's endpoint when no override is set. */
export function lambdaCoreEndpoint(region: string, env: NodeJS.ProcessEnv = process.env): string {
  const override = env.AWS_ENDPOINT_URL_LAMBDA_CORE || env.AWS_ENDPOINT_URL;
  if (override) return override;
  const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `https://lambda.${region}.${suffix}`;
}

interface Call {
  readonly operation: string;
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Already percent-encoded. */
  readonly path: string;
  readonly query?: Record<string, string | string[]>;
  readonly body?: unknown;
}

interface RawResponse {
  readonly statusCode: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export class LambdaCoreClient {
  public readonly region: string;
  public readonly endpoint: URL;
  private readonly signer: SignatureV4;
  private readonly options: LambdaCoreClientOptions;

  constructor(options: LambdaCoreClientOptions = {}) {
    this.options = options;
    const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
    if (!region) throw new Error('LambdaCoreClient: no Region: set AWS_REGION or pass `region`');
    this.region = region;
    this.endpoint = new URL(options.endpoint ?? lambdaCoreEndpoint(region));
    this.signer = new SignatureV4({
      service: SIGNING_NAME,
      region,
      credentials: options.credentials ?? defaultProvider(),
      sha256: Sha256,
      uriEscapePath: true,
    });
  }

  public createNetworkConnector(input: CreateNetworkConnectorInput): Promise<NetworkConnector> {
    return this.call({ operation: 'CreateNetworkConnector', method: 'POST', path: LAMBDA_CORE_PATH, body: input });
  }

  public getNetworkConnector(input: { readonly Identifier: string }): Promise<NetworkConnector> {
    return this.call({ operation: 'GetNetworkConnector', method: 'GET', path: connectorPath(input.Identifier) });
  }

  public updateNetworkConnector(input: UpdateNetworkConnectorInput): Promise<NetworkConnector> {
    const { Identifier, ...body } = input;
    return this.call({ operation: 'UpdateNetworkConnector', method: 'PUT', path: connectorPath(Identifier), body });
  }

  public deleteNetworkConnector(input: { readonly Identifier: string }): Promise<NetworkConnector> {
    return this.call({ operation: 'DeleteNetworkConnector', method: 'DELETE', path: connectorPath(input.Identifier) });
  }

  public listNetworkConnectors(input: ListNetworkConnectorsInput = {}): Promise<ListNetworkConnectorsOutput> {
    const query: Record<string, string> = {};
    if (input.State) query.State = input.State;
    if (input.Marker) query.Marker = input.Marker;
    if (input.MaxItems !== undefined) query.MaxItems = String(input.MaxItems);
    return this.call({ operation: 'ListNetworkConnectors', method: 'GET', path: LAMBDA_CORE_PATH, query });
  }

  /** Every connector, following NextMarker. */
  public async listAllNetworkConnectors(input: Omit<ListNetworkConnectorsInput, 'Marker'> = {}): Promise<NetworkConnectorSummary[]> {
    const all: NetworkConnectorSummary[] = [];
    let marker: string | undefined;
    do {
      const page = await this.listNetworkConnectors({ ...input, Marker: marker });
      all.push(...(page.NetworkConnectors ?? []));
      marker = page.NextMarker;
    } while (marker);
    return all;
  }

  /** Lambda's TagResource on a connector ARN (204). */
  public async tagResource(input: { readonly Resource: string; readonly Tags: Record<string, string> }): Promise<void> {
    await this.call({ operation: 'TagResource', method: 'POST', path: tagsPath(input.Resource), body: { Tags: input.Tags } });
  }

  /** Lambda's UntagResource on a connector ARN (204). */
  public async untagResource(input: { readonly Resource: string; readonly TagKeys: string[] }): Promise<void> {
    await this.call({ operation: 'UntagResource', method: 'DELETE', path: tagsPath(input.Resource), query: { tagKeys: input.TagKeys } });
  }

  public async listTags(input: { readonly Resource: string }): Promise<Record<string, string>> {
    const out = await this.call<{ Tags?: Record<string, string> }>({ operation: 'ListTags', method: 'GET', path: tagsPath(input.Resource) });
    return out.Tags ?? {};
  }

  private call<T>(call: Call): Promise<T> {
    return withRetries(async () => this.once<T>(call), {
      maxAttempts: this.options.maxAttempts ?? 8,
      baseDelayMs: this.options.baseDelayMs ?? 200,
      maxDelayMs: this.options.maxDelayMs ?? 20_000,
      retryAfterMs: (err) => {
        const s = (err as LambdaCoreServiceError).retryAfterSeconds;
        return s === undefined ? undefined : s * 1000;
      },
      clock: this.options.clock,
      random: this.options.random,
      onRetry: (err, attempt, delayMs) => log('lambda-core retry', {
        operation: call.operation,
        attempt,
        delayMs,
        error: (err as Error).name,
        statusCode: (err as LambdaCoreServiceError).statusCode,
      }),
    });
  }

  private async once<T>(call: Call): Promise<T> {
    const request = await this.sign(call);
    const response = await this.send(request);
    if (response.statusCode >= 200 && response.statusCode < 300) {
      return (response.body ? JSON.parse(response.body) : {}) as T;
    }
    throw parseError(response);
  }

  /** The signed request for `call` (public for the signing tests). */
  public async sign(call: Pick<Call, 'method' | 'path' | 'query' | 'body'>): Promise<HttpRequest> {
    const base = this.endpoint.pathname.replace(/\/+$/, '');
    const body = call.body === undefined ? undefined : JSON.stringify(call.body);
    const headers: Record<string, string> = { host: this.endpoint.host };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const request = new HttpRequest({
      method: call.method,
      protocol: this.endpoint.protocol,
      hostname: this.endpoint.hostname,
      port: this.endpoint.port ? Number(this.endpoint.port) : undefined,
      path: `${base}${call.path}`,
      query: call.query && Object.keys(call.query).length ? call.query : undefined,
      headers,
      body,
    });
    return this.signer.sign(request) as Promise<HttpRequest>;
  }

  private send(request: HttpRequest): Promise<RawResponse> {
    const transport = request.protocol === 'http:' ? http : https;
    const timeout = this.options.requestTimeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      const req = transport.request({
        method: request.method,
        protocol: request.protocol,
        hostname: request.hostname,
        port: request.port,
        path: `${request.path}${queryString(request.query)}`,
        headers: request.headers,
        timeout,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new LambdaCoreServiceError({ name: 'TimeoutError', message: `no answer within ${timeout} ms`, statusCode: 0 })));
      req.on('error', reject);
      if (request.body !== undefined) req.write(request.body);
      req.end();
    });
  }
}

function connectorPath(identifier: string): string {
  return `${LAMBDA_CORE_PATH}/${encodeURIComponent(identifier)}`;
}

function tagsPath(arn: string): string {
  return `${TAGS_PATH}/${encodeURIComponent(arn)}`;
}

function queryString(query: HttpRequest['query']): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query ?? {})) {
    for (const item of Array.isArray(v) ? v : [v]) {
      if (item !== null && item !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(item)}`);
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/** restJson1 error: type from X-Amzn-ErrorType, else the body's __type/code; message from message or Message. */
export function parseError(response: RawResponse): LambdaCoreServiceError {
  let body: Record<string, unknown> = {};
  try {
    body = response.body ? JSON.parse(response.body) : {};
  } catch {
    body = { message: response.body.slice(0, 500) };
  }
  const header = first(response.headers['x-amzn-errortype']);
  const raw = header ?? (body.__type as string | undefined) ?? (body.code as string | undefined) ?? (body.Code as string | undefined);
  const name = raw ? sanitizeErrorType(raw) : fallbackName(response.statusCode);
  const message = (body.message ?? body.Message ?? body.errorMessage ?? `${name} (HTTP ${response.statusCode})`) as string;
  const retryAfter = first(response.headers['retry-after']);
  const retryAfterSeconds = retryAfter !== undefined && /^\d+(\.\d+)?$/.test(retryAfter.trim()) ? Number(retryAfter) : undefined;
  return new LambdaCoreServiceError({
    name,
    message,
    statusCode: response.statusCode,
    type: body.Type as string | undefined,
    reason: body.Reason as string | undefined,
    retryAfterSeconds,
    requestId: first(response.headers['x-amzn-requestid']),
  });
}

/** `aws.lambda#Foo:http://...` → `Foo`. */
function sanitizeErrorType(raw: string): string {
  let name = raw.split(':')[0].trim();
  if (name.includes('#')) name = name.slice(name.lastIndexOf('#') + 1);
  return name;
}

function fallbackName(status: number): string {
  if (status === 429) return 'TooManyRequestsException';
  if (status === 404) return 'ResourceNotFoundException';
  if (status >= 500) return 'ServiceException';
  return `HttpError${status}`;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
