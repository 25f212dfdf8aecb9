/**
 * In-process API of the Lambda MicroVMs + Lambda Core (network connectors) control-plane emulator.
 *
 *   const emu = await startEmulator({ clock: new ManualClock() });
 *   const client = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
 *   ...
 *   emu.clock.advance(5_000);
 *   await emu.close();
 */
import { Clock, ManualClock, RealClock } from './clock';
import { callMicrovmEndpoint, RunHookCall } from './endpoint-call';
import { BuildFailureFault, ConnectorFailureFault, EventualConsistencyFault, OperationFault } from './faults';
import { EmulatorServer } from './server';
import { MicrovmsService } from './service';
import { DEFAULT_DELAYS, DEFAULT_RATE_LIMITS, Delays, RateLimit } from './settings';

export { ManualClock, RealClock } from './clock';
export type { Clock } from './clock';
export { DEFAULT_DELAYS, BUILD_FAILURE_MESSAGES, CONNECTOR_REASON_CODES, MANAGED_CONNECTOR_NAMES, DEFAULT_RATE_LIMITS } from './settings';
export type { Delays, RateLimit } from './settings';
export type { BuildFailureFault, ConnectorFailureFault, OperationFault, EventualConsistencyFault } from './faults';
export { OPERATION_NAMES } from './model';
export { callMicrovmEndpoint, RUNTIME_HOOK_PATH } from './endpoint-call';
export type { RunHookCall } from './endpoint-call';

/** Rate-limited operation names (the MicroVMs API TPS quotas). */
export type RateLimitedOperation = 'RunMicrovm' | 'ResumeMicrovm' | 'SuspendMicrovm' | 'TerminateMicrovm' | 'GetMicrovm' | 'CreateMicrovmAuthToken' | 'CreateMicrovmShellAuthToken';

export interface EmulatorOptions {
  /** TCP port; 0 (default) picks a free one. */
  port?: number;
  /** Bind address (default 127.0.0.1). */
  host?: string;
  /** Region in ARNs and endpoints (default us-east-1). */
  region?: string;
  /** Account id in ARNs (default 123456789012). */
  account?: string;
  /** Virtual clock; default `new RealClock(clockSpeed ?? 1)`. */
  clock?: Clock;
  /** Speed of the default RealClock (ignored when `clock` is given). */
  clockSpeed?: number;
  /** Overrides of the state-transition delays (virtual ms). */
  delays?: Partial<Delays>;
  /** Enables the fault-injection admin routes (default false; the typed helpers always work in-process). */
  faults?: boolean;
  /** true (default) = the service quotas' rates; false = off; or per-operation overrides merged onto the defaults. */
  rateLimits?: boolean | Partial<Record<RateLimitedOperation | string, RateLimit>>;
  /** Account memory quota over PENDING/RUNNING/SUSPENDING/SUSPENDED MicroVMs (default 409600 MiB = 400 GiB). */
  memoryQuotaMiB?: number;
  /** Artificial latency added to every API request, real ms (default 0). */
  latencyMs?: number;
  /** MicroVM image quota (default 100). */
  imageQuota?: number;
  /** Versions per image quota (default 50). */
  versionQuota?: number;
  /** Network connector quota (default 50; the real number is not published). */
  connectorQuota?: number;
  /**
   * The HTTP servers that play each image's MicroVMs behind their endpoints, by image name ('*' = every
   * image), e.g. `{ sandbox: 'http://127.0.0.1:8080' }`. Default: none, a built-in echo answers.
   */
  backends?: Record<string, string>;
}

export interface RunningEmulator {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly region: string;
  readonly account: string;
  readonly clock: Clock;
  readonly delays: Readonly<Delays>;
  /** The MicroVM endpoints (data plane) served on this emulator's port, chosen by `Host` header. */
  endpoints: {
    /** Names the HTTP server behind an image's MicroVMs ('*' = every image); `undefined` = the built-in echo. */
    setBackend(image: string, url: string | undefined): void;
    /** Sends one request to a MicroVM's endpoint (the `endpoint` of RunMicrovm / GetMicrovm) with its auth token. */
    call(endpoint: string, options?: EndpointCallOptions): Promise<EndpointAnswer>;
    /** Every `/run` hook call made to a backend, in order. */
    runHookCalls(): RunHookCall[];
  };
  /** Fault injection (same as the /_emulator/faults/* admin routes). */
  faults: {
    failNextBuild(f: BuildFailureFault): void;
    failNextConnector(f: ConnectorFailureFault): void;
    operation(f: OperationFault): void;
    eventualConsistency(f: EventualConsistencyFault): void;
    hold(resource: string): boolean;
    release(resource: string): boolean;
    clear(): void;
    list(): unknown;
  };
  close(): Promise<void>;
  /** Forgets all resources, idempotency tokens, faults, rate-limit buckets and request statistics. */
  reset(): void;
  /** JSON view of all state (same as GET /_emulator/state). */
  snapshot(): EmulatorSnapshot;
  /** Requests per operation since the last reset (same as GET /_emulator/stats). */
  stats(): EmulatorStats;
  resetStats(): void;
  /** Advances a ManualClock (throws on a RealClock). */
  advance(ms: number): void;
}

export interface EndpointCallOptions {
  method?: string;
  /** Path and query, default `/`. */
  path?: string;
  /** The `X-aws-proxy-auth` value (CreateMicrovmAuthToken's `authToken['X-aws-proxy-auth']`). */
  token?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface EndpointAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface EmulatorSnapshot {
  now: string;
  region: string;
  account: string;
  images: any[];
  microvms: any[];
  connectors: any[];
  tags: Record<string, Record<string, string>>;
  memoryInUseMiB: number;
  memoryQuotaMiB: number;
}

export interface EmulatorStats {
  since: string;
  total: number;
  operations: Record<string, number>;
}

export function resolveRateLimits(opt: EmulatorOptions['rateLimits']): Record<string, RateLimit> {
  if (opt === false) return {};
  if (opt === undefined || opt === true) return { ...DEFAULT_RATE_LIMITS };
  const out: Record<string, RateLimit> = { ...DEFAULT_RATE_LIMITS };
  for (const [k, v] of Object.entries(opt)) if (v) out[k] = v;
  return out;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const region = options.region ?? 'us-east-1';
  const account = options.account ?? '123456789012';
  if (!/^\d{12}$/.test(account)) throw new Error(`account must be 12 digits, got ${account}`);
  const clock = options.clock ?? new RealClock(options.clockSpeed ?? 1);
  const delays: Delays = { ...DEFAULT_DELAYS };
  for (const [k, v] of Object.entries(options.delays ?? {})) {
    if (!(k in DEFAULT_DELAYS)) throw new Error(`unknown delay '${k}'; known: ${Object.keys(DEFAULT_DELAYS).join(', ')}`);
    if (typeof v !== 'number' || v < 0) throw new Error(`delay ${k} must be a number >= 0`);
    (delays as any)[k] = v;
  }
  const svc = new MicrovmsService({
    region,
    account,
    clock,
    delays,
    memoryQuotaMiB: options.memoryQuotaMiB ?? 409600,
    imageQuota: options.imageQuota ?? 100,
    versionQuota: options.versionQuota ?? 50,
    connectorQuota: options.connectorQuota ?? 50,
  });
  const server = new EmulatorServer(svc, {
    faults: options.faults ?? false,
    rateLimits: resolveRateLimits(options.rateLimits),
    latencyMs: options.latencyMs ?? 0,
    backends: options.backends,
  });
  const host = options.host ?? '127.0.0.1';
  const port = await server.listen(options.port ?? 0, host);
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    region,
    account,
    clock,
    delays,
    close: () => server.close(),
    reset: () => server.resetAll(),
    snapshot: () => svc.snapshot() as unknown as EmulatorSnapshot,
    stats: () => server.statsView() as unknown as EmulatorStats,
    resetStats: () => server.resetStats(),
    advance: (ms: number) => {
      if (!(clock instanceof ManualClock)) throw new Error('advance() needs a ManualClock');
      clock.advance(ms);
    },
    endpoints: {
      setBackend: (image, url) => server.endpoint.setBackend(image, url),
      call: (endpoint, o) => callMicrovmEndpoint(`http://${urlHost}:${port}`, endpoint, o),
      runHookCalls: () => [...server.endpoint.runHookCalls],
    },
    faults: {
      failNextBuild: (f) => server.injectBuildFailure(f),
      failNextConnector: (f) => server.injectConnectorFailure(f),
      operation: (f) => server.injectOperationFault(f),
      eventualConsistency: (f) => server.setEventualConsistency(f),
      hold: (r) => svc.hold(r),
      release: (r) => svc.release(r),
      clear: () => server.clearFaults(),
      list: () => server.listFaults(),
    },
  };
}
