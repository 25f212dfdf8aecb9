/**
 * Calling a MicroVM endpoint served by the emulator, from a test (and the emulator's own HTTP calls
 * to backends). Node built-ins only: part of the public API.
 */
import { IncomingHttpHeaders, request as httpRequest } from 'node:http';

/** The path AWS calls the runtime hooks on (the "Lambda MicroVMs Application Hook Interface"). */
export const RUNTIME_HOOK_PATH = '/aws/lambda-microvms/runtime/v1';

/** What a `/run` hook call answered (for assertions in tests). */
export interface RunHookCall {
  microvmId: string;
  backend: string;
  status: number;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function send(url: string, method: string, headers: Record<string, string | string[]>, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: body.length ? { ...headers, 'content-length': String(body.length) } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body.length ? body : undefined);
  });
}

/**
 * Sends one request to a MicroVM endpoint served by an emulator (`emulatorUrl` = `RunningEmulator.url`),
 * with `Host` set to the endpoint, as `curl -H "Host: <endpoint>" <emulatorUrl>/path` would.
 * `endpoint` is the `endpoint` member of RunMicrovm / GetMicrovm (a host name, or an `https://` URL).
 */
export async function callMicrovmEndpoint(
  emulatorUrl: string,
  endpoint: string,
  options: { method?: string; path?: string; token?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const host = endpoint.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  const headers: Record<string, string> = { ...options.headers, host };
  if (options.token !== undefined) headers['x-aws-proxy-auth'] = options.token;
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
  const r = await send(new URL(options.path ?? '/', emulatorUrl).toString(), options.method ?? 'GET', headers, body);
  return { status: r.status, headers: r.headers, body: r.body.toString('utf8') };
}
