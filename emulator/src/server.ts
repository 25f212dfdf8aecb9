/**
 * HTTP front end: one port for both APIs (routed by path from the models), SigV4 accepted but not
 * verified, token-bucket rate limits on the emulator clock, injected faults, request statistics and the
 * `/_emulator/` admin routes.
 */
import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { Clock, isManualClock } from './clock';
import { endpointHostOf, MicrovmEndpoint } from './endpoint';
import { ApiError, coreErr, makeError, mvErr, ServiceName } from './errors';
import { buildInput, InputError, matchRoute, OperationDef, OPERATION_NAMES, formatValidation, validateInput } from './model';
import { BuildFailureFault, ConnectorFailureFault, EventualConsistencyFault, MicrovmsService, OperationFault } from './service';
import { RateLimit } from './settings';


export interface ServerSettings {
  faults: boolean;
  /** Endpoint backends per image name ('*' = all), see MicrovmEndpoint.setBackend. */
  backends?: Record<string, string>;
  rateLimits: Record<string, RateLimit>;
  latencyMs: number;
}

export class EmulatorServer {
  readonly server: Server;
  private buckets = new Map<string, { tokens: number; last: number }>();
  stats: Record<string, number> = {};
  private statsSince: number;

  /** The MicroVM endpoints (data plane), answered on the same port by `Host` header. */
  readonly endpoint: MicrovmEndpoint;

  constructor(public readonly svc: MicrovmsService, public readonly settings: ServerSettings) {
    this.statsSince = Date.now();
    this.endpoint = new MicrovmEndpoint(svc, settings.backends);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) this.sendJson(res, 500, { message: String(e?.message ?? e) }, { 'x-amzn-errortype': 'InternalServerException' });
        else res.end();
      });
    });
    // Idle keep-alive connections stay open until the client closes them (close() ends them all): a
    // server-side idle timeout races with clients reusing a pooled socket (ECONNRESET on a call the
    // SDK must not retry, such as a fleet's RunMicrovm with maxAttempts 1).
    this.server.keepAliveTimeout = 0;
  }

  get clock(): Clock {
    return this.svc.clock;
  }

  resetStats(): void {
    this.stats = {};
    this.statsSince = Date.now();
  }

  statsView(): Record<string, unknown> {
    const total = Object.values(this.stats).reduce((a, b) => a + b, 0);
    return { since: new Date(this.statsSince).toISOString(), total, operations: { ...this.stats } };
  }

  resetAll(): void {
    this.svc.reset();
    this.endpoint.reset();
    this.buckets.clear();
    this.resetStats();
  }

  // ----- faults (typed API shared by the admin routes)

  injectBuildFailure(f: BuildFailureFault): void {
    if (!f.imageName || !f.reasonCode) throw new Error('imageName and reasonCode are required');
    this.svc.faults.buildFailures.push({ ...f, remaining: f.count ?? 1 });
  }
  injectConnectorFailure(f: ConnectorFailureFault): void {
    if (f.operation !== 'create' && f.operation !== 'update') throw new Error("operation must be 'create' or 'update'");
    if (!f.reasonCode) throw new Error('reasonCode is required');
    this.svc.faults.connectorFailures.push({ ...f, remaining: f.count ?? 1 });
  }
  injectOperationFault(f: OperationFault): void {
    if (!this.svc.operations.has(f.operation)) throw new Error(`unknown operation ${f.operation}`);
    if (f.mode !== 'throttle' && f.mode !== 'error') throw new Error("mode must be 'throttle' or 'error'");
    if (f.mode === 'error' && !f.errorType) throw new Error('errorType is required for mode error');
    if (f.fraction !== undefined && !(f.fraction > 0 && f.fraction <= 1)) throw new Error('fraction must be in (0, 1]');
    this.svc.faults.operations.push({ ...f, remaining: f.fraction !== undefined && f.count === undefined ? Infinity : f.count ?? 1 });
  }
  setEventualConsistency(f: EventualConsistencyFault): void {
    if (!(f.ms >= 0)) throw new Error('ms must be >= 0');
    this.svc.faults.eventualConsistency = f.ms > 0 ? f : undefined;
  }
  clearFaults(): void {
    this.svc.faults = { buildFailures: [], connectorFailures: [], operations: [] };
  }
  listFaults(): unknown {
    const f = this.svc.faults;
    const num = (n: number) => (Number.isFinite(n) ? n : null);
    return {
      buildFailures: f.buildFailures.map((x) => ({ ...x })),
      connectorFailures: f.connectorFailures.map((x) => ({ ...x })),
      operations: f.operations.map((x) => ({ ...x, remaining: num(x.remaining) })),
      eventualConsistency: f.eventualConsistency ?? null,
    };
  }

  // ----- rate limiting

  /** Undefined when the call may go; else the seconds until the bucket holds a token again (fractional). */
  private throttleCheck(op: string): number | undefined {
    const lim = this.settings.rateLimits[op];
    if (!lim) return undefined;
    const now = this.clock.now();
    let b = this.buckets.get(op);
    if (!b) {
      b = { tokens: lim.burst, last: now };
      this.buckets.set(op, b);
    }
    b.tokens = Math.min(lim.burst, b.tokens + (Math.max(0, now - b.last) * lim.rate) / 1000);
    b.last = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return undefined;
    }
    return (1 - b.tokens) / lim.rate;
  }

  private injectedFault(op: OperationDef): ApiError | undefined {
    const list = this.svc.faults.operations;
    const i = list.findIndex((f) => f.operation === op.name && f.remaining > 0);
    if (i < 0) return undefined;
    const f = list[i];
    if (f.fraction !== undefined && Math.random() >= f.fraction) return undefined;
    f.remaining--;
    if (f.remaining <= 0) list.splice(i, 1);
    if (f.mode === 'throttle') {
      return op.service === 'core' ? coreErr.throttling(1, f.message ?? 'Rate exceeded') : mvErr.throttling(1, f.message ?? 'Rate exceeded');
    }
    return makeError(op.service, f.errorType!, f.message ?? `Injected ${f.errorType}`, f.status);
  }

  // ----- HTTP

  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomUUID(),
      ...headers,
    });
    res.end(text);
  }

  private sendError(res: ServerResponse, e: ApiError): void {
    this.sendJson(res, e.status, { __type: e.type, ...e.body }, { 'x-amzn-errortype': e.type, ...e.headers });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    const bytes = await this.readBody(req);
    const endpointHost = endpointHostOf(req.headers);
    if (endpointHost) {
      this.svc.sweep();
      return this.endpoint.handle(endpointHost, req, bytes, res);
    }
    const raw = bytes.toString('utf8');
    if (url.pathname.startsWith('/_emulator/') || url.pathname === '/_emulator') {
      return this.handleAdmin(method, url, raw, res);
    }
    if (this.settings.latencyMs > 0) await new Promise((r) => setTimeout(r, this.settings.latencyMs));
    const match = matchRoute(method, url.pathname);
    if (!match) {
      this.sendJson(res, 404, { __type: 'UnknownOperationException', message: `No operation matches ${method} ${url.pathname}` }, { 'x-amzn-errortype': 'UnknownOperationException' });
      return;
    }
    const { op, labels } = match;
    this.stats[op.name] = (this.stats[op.name] ?? 0) + 1;
    const service: ServiceName = op.service;
    try {
      const retryAfter = this.throttleCheck(op.name);
      if (retryAfter !== undefined) throw service === 'core' ? coreErr.throttling(retryAfter) : mvErr.throttling(retryAfter);
      const fault = this.injectedFault(op);
      if (fault) throw fault;
      let body: unknown = {};
      if (raw.trim().length > 0) {
        try {
          body = JSON.parse(raw);
        } catch {
          throw new ApiError(400, 'SerializationException', { message: 'Request body is not valid JSON' });
        }
      }
      const { input, typeErrors } = buildInput(op, labels, url.searchParams, req.headers, body);
      try {
        validateInput(op, input, typeErrors);
      } catch (e) {
        if (e instanceof InputError) throw (service === 'core' ? coreErr : mvErr).validation(formatValidation(e.messages));
        throw e;
      }
      this.svc.sweep();
      const result = this.svc.operations.get(op.name)!(input);
      const status = result.status ?? op.successCode;
      if (status === 204) {
        res.writeHead(204, { 'x-amzn-requestid': randomUUID() });
        res.end();
        return;
      }
      this.sendJson(res, status, result.body ?? {});
    } catch (e) {
      if (e instanceof ApiError) return this.sendError(res, e);
      throw e;
    }
  }

  private adminError(res: ServerResponse, status: number, message: string): void {
    this.sendJson(res, status, { error: message });
  }

  private handleAdmin(method: string, url: URL, raw: string, res: ServerResponse): void {
    const path = url.pathname.replace(/\/+$/, '');
    let body: any = {};
    if (raw.trim()) {
      try {
        body = JSON.parse(raw);
      } catch {
        return this.adminError(res, 400, 'body is not valid JSON');
      }
    }
    const svc = this.svc;
    const route = `${method} ${path}`;
    try {
      switch (route) {
        case 'GET /_emulator/health':
          return this.sendJson(res, 200, { status: 'ok', region: svc.region, account: svc.account, now: new Date(svc.now()).toISOString(), faults: this.settings.faults, manualClock: isManualClock(svc.clock) });
        case 'GET /_emulator/state':
          return this.sendJson(res, 200, svc.snapshot());
        case 'POST /_emulator/reset':
          this.resetAll();
          return this.sendJson(res, 200, { reset: true });
        case 'GET /_emulator/stats':
          return this.sendJson(res, 200, this.statsView());
        case 'POST /_emulator/stats/reset':
        case 'DELETE /_emulator/stats':
          this.resetStats();
          return this.sendJson(res, 200, this.statsView());
        case 'POST /_emulator/clock/advance': {
          if (!isManualClock(svc.clock)) return this.adminError(res, 409, 'the emulator runs on a real clock; clock/advance needs a ManualClock');
          if (!(typeof body.ms === 'number' && body.ms >= 0)) return this.adminError(res, 400, 'body must be {"ms": <number >= 0>}');
          svc.clock.advance(body.ms);
          return this.sendJson(res, 200, { now: svc.now(), iso: new Date(svc.now()).toISOString() });
        }
        case 'POST /_emulator/backends':
          if (typeof body.image !== 'string') return this.adminError(res, 400, 'body must be {"image": <image name or "*">, "url": <http URL, or null to remove>}');
          this.endpoint.setBackend(body.image, body.url ?? undefined);
          return this.sendJson(res, 200, { image: body.image, url: body.url ?? null });
        case 'POST /_emulator/microvms/traffic': {
          const r = svc.microvmsApi.traffic(String(body.microvm ?? ''), body.token);
          return this.sendJson(res, 200, r);
        }
        default:
          break;
      }
      if (path.startsWith('/_emulator/faults')) {
        if (!this.settings.faults) return this.adminError(res, 404, 'fault injection is disabled; start the emulator with --faults / { faults: true }');
        switch (route) {
          case 'GET /_emulator/faults':
            return this.sendJson(res, 200, this.listFaults());
          case 'DELETE /_emulator/faults':
            this.clearFaults();
            return this.sendJson(res, 200, this.listFaults());
          case 'POST /_emulator/faults/build-failure':
            this.injectBuildFailure(body);
            return this.sendJson(res, 200, this.listFaults());
          case 'POST /_emulator/faults/connector-failure':
            this.injectConnectorFailure(body);
            return this.sendJson(res, 200, this.listFaults());
          case 'POST /_emulator/faults/operation':
            this.injectOperationFault(body);
            return this.sendJson(res, 200, this.listFaults());
          case 'POST /_emulator/faults/eventual-consistency':
            this.setEventualConsistency(body);
            return this.sendJson(res, 200, this.listFaults());
          case 'POST /_emulator/faults/hold':
            if (!svc.hold(String(body.resource ?? ''))) return this.adminError(res, 404, `no resource matches ${body.resource}`);
            return this.sendJson(res, 200, { held: body.resource });
          case 'POST /_emulator/faults/release':
            if (!svc.release(String(body.resource ?? ''))) return this.adminError(res, 404, `no resource matches ${body.resource}`);
            return this.sendJson(res, 200, { released: body.resource });
          default:
            break;
        }
      }
      return this.adminError(res, 404, `unknown admin route ${route}`);
    } catch (e: any) {
      return this.adminError(res, 400, String(e?.message ?? e));
    }
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections?.();
    });
  }
}

export { OPERATION_NAMES };
export { DEFAULT_RATE_LIMITS } from './settings';
export type { RateLimit } from './settings';
