import { Sha256 } from '@aws-crypto/sha256-js';
import { LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { parseJsonBody } from '../../emulator/src/conformance';
import { EmulatorOptions, ManualClock, RunningEmulator, startEmulator } from '../../emulator/src/index';

export const CREDS = { accessKeyId: 'test', secretAccessKey: 'test' };
export const BUILD_ROLE = 'arn:aws:iam::123456789012:role/build';
export const OPERATOR_ROLE = 'arn:aws:iam::123456789012:role/operator';
export const baseImageArn = (region = 'us-east-1') => `arn:aws:lambda:${region}:aws:microvm-image:al2023-1`;
export const managedConnector = (name: string, region = 'us-east-1') => `arn:aws:lambda:${region}:aws:network-connector:aws-network-connector:${name}`;

export interface Env {
  emu: RunningEmulator;
  clock: ManualClock;
  client: LambdaMicrovmsClient;
}

export async function setup(opts: EmulatorOptions = {}): Promise<Env> {
  const clock = new ManualClock();
  const emu = await startEmulator({ clock, ...opts });
  const client = new LambdaMicrovmsClient({ endpoint: emu.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 });
  return { emu, clock: (opts.clock as ManualClock) ?? clock, client };
}

export function imageInput(name: string, extra: Record<string, unknown> = {}) {
  return { name, baseImageArn: baseImageArn(), buildRoleArn: BUILD_ROLE, codeArtifact: { uri: 's3://bucket/code.zip' }, ...extra } as any;
}

/** Captures the error of a promise (fails the test when it resolves). */
export async function errorOf(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to fail');
}

const signer = new SignatureV4({ credentials: CREDS, region: 'us-east-1', service: 'lambda', sha256: Sha256 });

/** A SigV4-signed JSON request (Lambda Core has no npm client). */
export async function signedFetch(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  query: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: any; text: string }> {
  const url = new URL(path, baseUrl);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const req = new HttpRequest({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: Object.fromEntries(url.searchParams.entries()),
    headers: { 'host': url.host, 'content-type': 'application/json', ...(payload ? { 'content-length': String(Buffer.byteLength(payload)) } : {}) },
    body: payload,
  });
  const signed = await signer.sign(req);
  const res = await fetch(url, { method, headers: signed.headers as Record<string, string>, body: payload });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: parseJsonBody(text), text };
}

export async function admin(baseUrl: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${baseUrl}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}
