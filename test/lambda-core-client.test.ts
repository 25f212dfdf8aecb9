import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { classifyError, isNotFound } from '../lambda/shared/errors';
import { LambdaCoreClient, LambdaCoreServiceError, lambdaCoreEndpoint } from '../lambda/shared/lambda-core-client';
import { backoffDelay } from '../lambda/shared/retry';

/** One scripted answer of the fake service. */
interface Answer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
}

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: string;
}

process.env.MICROVMS_HANDLER_QUIET = '1';

const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret-test' };
const CONNECTOR = { Arn: 'arn:aws:lambda:us-east-1:123456789012:network-connector:nc-0123abcd', Name: 'db', Id: 'nc-0123abcd', State: 'ACTIVE' };

/** A tiny local HTTP server that answers from a script and records every request. */
class FakeService {
  public readonly received: Received[] = [];
  private readonly script: Answer[] = [];
  private server!: http.Server;
  public url = '';

  public async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8') });
        const a = this.script.shift() ?? { status: 200, body: CONNECTOR };
        const body = a.body === undefined ? '' : JSON.stringify(a.body);
        res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  public answer(...answers: Answer[]): void {
    this.script.push(...answers);
  }

  public reset(): void {
    this.received.length = 0;
    this.script.length = 0;
  }

  public stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const svc = new FakeService();
let sleeps: number[];
let client: LambdaCoreClient;

beforeAll(() => svc.start());
afterAll(() => svc.stop());
beforeEach(() => {
  svc.reset();
  sleeps = [];
  client = new LambdaCoreClient({
    region: 'us-east-1',
    endpoint: svc.url,
    credentials: CREDENTIALS,
    maxAttempts: 4,
    baseDelayMs: 200,
    clock: { now: () => 0, sleep: async (ms) => { sleeps.push(ms); } },
    random: () => 0.5,
  });
});

/** Signs the request exactly as it arrived (minus its signature) with @smithy/signature-v4. */
async function expectedAuthorization(r: Received): Promise<string> {
  const url = new URL(r.url, svc.url);
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
  }
  const headers: Record<string, string> = {};
  for (let i = 0; i < r.rawHeaders.length; i += 2) {
    const name = r.rawHeaders[i].toLowerCase();
    if (name !== 'authorization' && name !== 'connection') headers[name] = r.rawHeaders[i + 1];
  }
  const request = new HttpRequest({
    method: r.method,
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query,
    headers,
    body: r.body || undefined,
  });
  const amzDate = headers['x-amz-date'];
  const signingDate = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const signer = new SignatureV4({ service: 'lambda', region: 'us-east-1', credentials: CREDENTIALS, sha256: Sha256, uriEscapePath: true });
  const signed = await signer.sign(request, { signingDate });
  return signed.headers.authorization;
}

describe('LambdaCoreClient signing', () => {
  test('CreateNetworkConnector: POST JSON, SigV4 for service lambda in the Region, signature as @smithy/signature-v4 computes it', async () => {
    svc.answer({ status: 202, body: { ...CONNECTOR, State: 'PENDING' } });
    const out = await client.createNetworkConnector({
      Name: 'db',
      Configuration: { VpcEgressConfiguration: { SubnetIds: ['subnet-1'], SecurityGroupIds: ['sg-1'], NetworkProtocol: 'IPv4', AssociatedComputeResourceTypes: ['MicroVm'] } },
      ClientToken: 'tok-1',
    });
    expect(out.State).toBe('PENDING');
    const [r] = svc.received;
    expect(r.method).toBe('POST');
    expect(r.url).toBe('/2026-04-04/network-connectors');
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body)).toMatchObject({ Name: 'db', ClientToken: 'tok-1', Configuration: { VpcEgressConfiguration: { SubnetIds: ['subnet-1'] } } });
    const auth = r.headers.authorization!;
    expect(auth).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-east-1\/lambda\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/);
    const signedHeaders = /SignedHeaders=([^,]+)/.exec(auth)![1].split(';');
    expect(signedHeaders).toEqual(expect.arrayContaining(['host', 'x-amz-date', 'content-type']));
    expect(r.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
    expect(auth).toBe(await expectedAuthorization(r));
  });

  test('a connector ARN in the path and repeated query keys are signed as they travel', async () => {
    svc.answer({ status: 204 });
    await client.untagResource({ Resource: CONNECTOR.Arn, TagKeys: ['team', 'env'] });
    const [r] = svc.received;
    expect(r.method).toBe('DELETE');
    expect(r.url).toBe(`/2017-03-31/tags/${encodeURIComponent(CONNECTOR.Arn)}?tagKeys=team&tagKeys=env`);
    expect(r.headers.authorization).toBe(await expectedAuthorization(r));
  });

  test('a different secret gives a different signature', async () => {
    svc.answer({ status: 200, body: CONNECTOR });
    await client.getNetworkConnector({ Identifier: 'db' });
    const [r] = svc.received;
    const other = new SignatureV4({ service: 'lambda', region: 'us-east-1', credentials: { ...CREDENTIALS, secretAccessKey: 'other' }, sha256: Sha256 });
    const url = new URL(r.url, svc.url);
    const signed = await other.sign(new HttpRequest({ method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, headers: { host: r.headers.host! } }));
    expect(signed.headers.authorization).not.toBe(r.headers.authorization);
    expect(r.url).toBe('/2026-04-04/network-connectors/db');
  });
});

describe('LambdaCoreClient errors and retries', () => {
  test('404 ResourceNotFoundException with a capital Message: typed, not retried', async () => {
    svc.answer({ status: 404, headers: { 'x-amzn-errortype': 'ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.lambda/' }, body: { Type: 'User', Message: 'Network connector not found for: nc-1' } });
    const err: LambdaCoreServiceError = await client.getNetworkConnector({ Identifier: 'nc-1' }).catch((e) => e);
    expect(err).toBeInstanceOf(LambdaCoreServiceError);
    expect(err).toMatchObject({ name: 'ResourceNotFoundException', message: 'Network connector not found for: nc-1', statusCode: 404, type: 'User', $fault: 'client' });
    expect(isNotFound(err)).toBe(true);
    expect(svc.received).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  test('400 InvalidParameterValueException with message and Type: typed, not retried', async () => {
    svc.answer({ status: 400, headers: { 'x-amzn-errortype': 'InvalidParameterValueException' }, body: { Type: 'User', message: 'SubnetIds must have 1 to 16 items' } });
    const err = await client.createNetworkConnector({ Name: 'x', Configuration: {} }).catch((e) => e);
    expect(err).toMatchObject({ name: 'InvalidParameterValueException', message: 'SubnetIds must have 1 to 16 items', type: 'User', statusCode: 400 });
    expect(svc.received).toHaveLength(1);
  });

  test('429 TooManyRequestsException waits the Retry-After, then succeeds', async () => {
    svc.answer(
      { status: 429, headers: { 'x-amzn-errortype': 'TooManyRequestsException', 'retry-after': '3' }, body: { Type: 'User', message: 'Rate exceeded', Reason: 'CallerRateLimitExceeded' } },
      { status: 200, body: CONNECTOR },
    );
    const out = await client.getNetworkConnector({ Identifier: 'db' });
    expect(out.Id).toBe('nc-0123abcd');
    expect(svc.received).toHaveLength(2);
    expect(sleeps).toEqual([3000]);
    // Each attempt is signed afresh.
    expect(svc.received[1].headers.authorization).toBe(await expectedAuthorization(svc.received[1]));
  });

  test('500 ServiceException is retried with exponential backoff and jitter', async () => {
    const fault = { status: 500, headers: { 'x-amzn-errortype': 'ServiceException' }, body: { Type: 'Service', Message: 'internal' } };
    svc.answer(fault, fault, { status: 202, body: CONNECTOR });
    await client.deleteNetworkConnector({ Identifier: 'db' });
    expect(svc.received.map((r) => r.method)).toEqual(['DELETE', 'DELETE', 'DELETE']);
    expect(sleeps).toEqual([100, 200]); // random 0.5 × 200 ms, then × 400 ms
  });

  test('a 5xx that never clears fails after maxAttempts with the service\'s error', async () => {
    const fault = { status: 503, body: { __type: 'com.amazonaws.lambda#ServiceException', Message: 'unavailable' } };
    svc.answer(fault, fault, fault, fault);
    const err = await client.getNetworkConnector({ Identifier: 'db' }).catch((e) => e);
    expect(err).toMatchObject({ name: 'ServiceException', message: 'unavailable', statusCode: 503, $fault: 'server' });
    expect(svc.received).toHaveLength(4);
    expect(sleeps).toHaveLength(3);
  });

  test('409 ResourceConflictException is not retried', async () => {
    svc.answer({ status: 409, headers: { 'x-amzn-errortype': 'ResourceConflictException' }, body: { Type: 'User', message: 'Network connector nc-1 is in state PENDING' } });
    const err = await client.updateNetworkConnector({ Identifier: 'nc-1', Configuration: {} }).catch((e) => e);
    expect(classifyError(err)).toBe('conflict');
    expect(err.message).toMatch(/state PENDING/);
    expect(svc.received).toHaveLength(1);
    expect(svc.received[0]).toMatchObject({ method: 'PUT', url: '/2026-04-04/network-connectors/nc-1' });
    expect(JSON.parse(svc.received[0].body)).toEqual({ Configuration: {} }); // Identifier travels in the path only
  });

  test('tagging and listing use Lambda\'s tagging routes and query parameters', async () => {
    svc.answer({ status: 204 }, { status: 200, body: { Tags: { team: 'data' } } }, { status: 200, body: { NetworkConnectors: [CONNECTOR], NextMarker: 'm2' } }, { status: 200, body: { NetworkConnectors: [] } });
    await client.tagResource({ Resource: CONNECTOR.Arn, Tags: { team: 'data' } });
    expect(await client.listTags({ Resource: CONNECTOR.Arn })).toEqual({ team: 'data' });
    expect(await client.listAllNetworkConnectors({ State: 'ACTIVE', MaxItems: 10 })).toHaveLength(1);
    expect(svc.received.map((r) => `${r.method} ${r.url}`)).toEqual([
      `POST /2017-03-31/tags/${encodeURIComponent(CONNECTOR.Arn)}`,
      `GET /2017-03-31/tags/${encodeURIComponent(CONNECTOR.Arn)}`,
      'GET /2026-04-04/network-connectors?State=ACTIVE&MaxItems=10',
      'GET /2026-04-04/network-connectors?State=ACTIVE&Marker=m2&MaxItems=10',
    ]);
    expect(JSON.parse(svc.received[0].body)).toEqual({ Tags: { team: 'data' } });
  });
});

describe('LambdaCoreClient endpoint and backoff', () => {
  test('the endpoint comes from AWS_ENDPOINT_URL_LAMBDA_CORE, then AWS_ENDPOINT_URL, then the Region', () => {
    expect(lambdaCoreEndpoint('us-east-1', { AWS_ENDPOINT_URL_LAMBDA_CORE: 'http://127.0.0.1:4599', AWS_ENDPOINT_URL: 'http://other' })).toBe('http://127.0.0.1:4599');
    expect(lambdaCoreEndpoint('us-east-1', { AWS_ENDPOINT_URL: 'http://localhost:4566' })).toBe('http://localhost:4566');
    expect(lambdaCoreEndpoint('eu-west-1', {})).toBe('https://lambda.eu-west-1.amazonaws.com');
    expect(lambdaCoreEndpoint('cn-north-1', {})).toBe('https://lambda.cn-north-1.amazonaws.com.cn');
  });

  test('fails without a Region', () => {
    const saved = { r: process.env.AWS_REGION, d: process.env.AWS_DEFAULT_REGION };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    try {
      expect(() => new LambdaCoreClient({ credentials: CREDENTIALS })).toThrow(/no Region/);
    } finally {
      if (saved.r !== undefined) process.env.AWS_REGION = saved.r;
      if (saved.d !== undefined) process.env.AWS_DEFAULT_REGION = saved.d;
    }
  });

  test('backoff doubles up to the cap; Retry-After is the shortest wait within the cap; 0 or none leaves the jitter', () => {
    const o = { baseDelayMs: 200, maxDelayMs: 1000, random: () => 0.999 };
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(a, o))).toEqual([199, 399, 799, 999, 999]);
    expect(backoffDelay(1, o, 5000)).toBe(1000);
    expect(backoffDelay(1, o, 300)).toBe(300);
    // A Retry-After shorter than the jittered wait does not shorten it (throttled callers stay spread out).
    expect(backoffDelay(3, o, 300)).toBe(799);
    // Retry-After: 0 is no reason to come back at once.
    expect(backoffDelay(2, { ...o, random: () => 0.5 }, 0)).toBe(200);
    expect(backoffDelay(2, { ...o, random: () => 0.5 }, undefined)).toBe(200);
  });
});
