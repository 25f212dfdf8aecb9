/**
 * The MicroVM endpoint (data plane). AWS gives every MicroVM a host name
 * `<uuid>.lambda-microvm.<region>.on.aws`, served by a proxy that checks the `X-aws-proxy-auth` token and
 * forwards to the MicroVM. Here the same host names are answered on the emulator's own port, chosen by the
 * request's `Host` header (or `X-Forwarded-Host`, for clients such as `fetch` that cannot set `Host`), so
 * tests need no DNS. The checks and their exact answers are the service's (see
 * {@link MicrovmsApi.endpointAccess}); a request that passes reaches:
 *
 * - the backend named for the MicroVM's image ({@link MicrovmEndpoint.setBackend}: a local HTTP server,
 *   e.g. the app the user would put in the image), with the method, path, query, headers (minus the token)
 *   and body as sent, and its answer streamed back; before the first request, when the image version
 *   enables the `run` hook, the backend gets the `/run` hook call
 *   (`POST /aws/lambda-microvms/runtime/v1/run`, `{"microvmId", "runHookPayload"}`), as AWS calls it after
 *   the MicroVM starts: traffic is not forwarded until it answered 200;
 * - else a built-in echo: 200 `application/json` with the MicroVM's id, image, version, `runHookPayload`,
 *   and the request's method, path, headers and body.
 *
 * Plain-text bodies, no JSON error envelope, as recorded. A backend that cannot be reached, or a `/run`
 * hook that did not answer 200, gives 502 with an empty body.
 */
import { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { RUNTIME_HOOK_PATH, RunHookCall, send } from './endpoint-call';
import { Microvm, MicrovmsService } from './service';


const HOST_PATTERN = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.lambda-microvm\.([a-z0-9-]+)\.on\.aws$/;

/** Hop-by-hop headers a proxy does not forward, plus the token (the backend never sees it). */
const NOT_FORWARDED = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'x-aws-proxy-auth', 'x-forwarded-host']);

/** The endpoint host named by a request, or undefined when the request is an API call. */
export function endpointHostOf(headers: IncomingHttpHeaders): string | undefined {
  for (const h of [headers['x-forwarded-host'], headers.host]) {
    const name = (Array.isArray(h) ? h[0] : h)?.trim().toLowerCase().replace(/:\d+$/, '');
    if (name && HOST_PATTERN.test(name)) return name;
  }
  return undefined;
}


export class MicrovmEndpoint {
  /** Backend base URL per image name; '*' = every image without its own. */
  private readonly backends = new Map<string, string>();
  private readonly runHooks = new Map<string, Promise<number>>();
  /** Every `/run` hook call made, in order. */
  readonly runHookCalls: RunHookCall[] = [];

  constructor(private readonly svc: MicrovmsService, backends: Record<string, string> = {}) {
    for (const [image, url] of Object.entries(backends)) this.setBackend(image, url);
    svc.onLaunch = (vm) => {
      // AWS calls /run right after the MicroVM starts; the emulator's start is virtual, so it calls at launch.
      if (this.backendOf(vm)) void this.runHook(vm);
    };
  }

  /**
   * Names the HTTP server that plays the MicroVMs of an image (by image name, or '*' for all images).
   * `url` is a base URL such as `http://127.0.0.1:8080`; `undefined` removes it (the built-in echo answers).
   */
  setBackend(image: string, url: string | undefined): void {
    if (url === undefined) {
      this.backends.delete(image);
      return;
    }
    const u = new URL(url);
    if (u.protocol !== 'http:') throw new Error(`backend for ${image} must be an http:// URL, got ${url}`);
    this.backends.set(image, u.toString().replace(/\/$/, ''));
  }

  reset(): void {
    this.runHooks.clear();
    this.runHookCalls.length = 0;
  }

  private backendOf(vm: Microvm): string | undefined {
    return this.backends.get(vm.imageName) ?? this.backends.get('*');
  }

  private runHookEnabled(vm: Microvm): boolean {
    const config = this.svc.images.get(vm.imageName)?.versions.get(vm.imageVersion)?.config;
    const hooks = config?.hooks as { microvmHooks?: { run?: string } } | null | undefined;
    return hooks?.microvmHooks?.run === 'ENABLED';
  }

  /** Calls the backend's `/run` hook once per MicroVM (when the image enables it); resolves to its status. */
  private runHook(vm: Microvm): Promise<number> {
    const backend = this.backendOf(vm);
    if (!backend || !this.runHookEnabled(vm)) return Promise.resolve(200);
    let p = this.runHooks.get(vm.id);
    if (!p) {
      const body = JSON.stringify(vm.runHookPayload === null ? { microvmId: vm.id } : { microvmId: vm.id, runHookPayload: vm.runHookPayload });
      p = send(`${backend}${RUNTIME_HOOK_PATH}/run`, 'POST', { 'content-type': 'application/json' }, Buffer.from(body))
        .then((r) => r.status, () => 0)
        .then((status) => {
          this.runHookCalls.push({ microvmId: vm.id, backend, status });
          return status;
        });
      this.runHooks.set(vm.id, p);
    }
    return p;
  }

  /** Answers one request addressed to a MicroVM endpoint host. */
  async handle(host: string, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const tokenHeader = req.headers['x-aws-proxy-auth'];
    const token = Array.isArray(tokenHeader) ? tokenHeader[0] : tokenHeader;
    const m = HOST_PATTERN.exec(host);
    const access = m && m[2] === this.svc.region
      ? this.svc.microvmsApi.endpointAccess(host, token)
      : (token ? { status: 403, body: 'Token authentication failed' } : { status: 403, body: 'Request missing authentication' });
    if (access.status !== 200 || !access.vm) return plain(res, access.status, access.body);
    const vm = access.vm;
    const backend = this.backendOf(vm);
    if (!backend) return this.echo(vm, req, body, res);
    if ((await this.runHook(vm)) !== 200) return plain(res, 502, '');
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !NOT_FORWARDED.has(k)) headers[k] = v;
    try {
      const r = await send(`${backend}${req.url ?? '/'}`, req.method ?? 'GET', headers, body);
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(r.headers)) if (v !== undefined && !NOT_FORWARDED.has(k)) out[k] = v;
      out['content-length'] = String(r.body.length);
      res.writeHead(r.status, out);
      res.end(r.body);
    } catch {
      plain(res, 502, '');
    }
  }

  private echo(vm: Microvm, req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== 'x-aws-proxy-auth') headers[k] = v;
    const text = JSON.stringify({
      microvmId: vm.id,
      imageArn: vm.imageArn,
      imageVersion: vm.imageVersion,
      runHookPayload: vm.runHookPayload,
      method: req.method,
      path: req.url,
      headers,
      body: body.toString('utf8'),
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
