/**
 * A local deployment environment: ministack + our emulator on loopback, and the real `cdk` CLI
 * (node_modules/aws-cdk) pointed at them. Used by the demo (local/demo.ts) and the end-to-end
 * tests (test/e2e/).
 *
 *   const env = await LocalDeployment.start({ workDir });
 *   try { await env.bootstrap(); await env.cdk(['deploy', ...]); } finally { await env.stop(); }
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LocalAws } from './aws';
import {
  LOCAL_ACCOUNT, LOCAL_REGION, LocalServer, Log, ROOT, bundle, bundleIfStale, ensureVenv, startLocalEmulator, startMinistack,
} from './servers';

/** The context key that points our provider handlers at the emulator (src/private/wire.ts). */
export const LOCAL_ENDPOINT_CONTEXT = 'cdk-lambda-microvms:localEndpoint';
const CDK_BIN = path.join(ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');

export interface StartLocalOptions {
  /** Logs, cdk.out and working copies go here (created). */
  readonly workDir: string;
  /** Progress lines (default: none). */
  readonly log?: Log;
  /**
   * 'always' (default): run `node scripts/bundle.mjs`; 'if-stale': only when a bundle is missing
   * or older than its sources (tests, which run next to tests that read lambda-dist/).
   */
  readonly bundle?: 'always' | 'if-stale';
}

export interface CdkResult {
  readonly exitCode: number;
  readonly output: string;
  readonly logFile: string;
}

export interface CdkOptions {
  /** A name for the log file (`cdk-<name>.log`). */
  readonly name: string;
  /** Each line of CDK output, as it comes. */
  readonly onLine?: (line: string) => void;
  /** The CDK app command (default: the example app); null: no app (cdk bootstrap). */
  readonly app?: string | null;
  /** Extra `-c key=value` context. */
  readonly context?: Record<string, string>;
  /** Kill the CLI after this many ms (default 10 min). */
  readonly timeoutMs?: number;
}

export class LocalDeployment {
  /** Installs (if needed) and starts everything. On failure, stops what it started. */
  public static async start(options: StartLocalOptions): Promise<LocalDeployment> {
    const log = options.log ?? (() => undefined);
    fs.mkdirSync(options.workDir, { recursive: true });
    ensureVenv(log);
    if (options.bundle === 'if-stale') {
      if (bundleIfStale()) log('bundled the provider handlers and the emulator (they were older than their sources)');
    } else {
      log('bundling the provider handlers and the emulator (node scripts/bundle.mjs)');
      bundle();
    }
    const logDir = path.join(options.workDir, 'logs');
    const ministack = await startMinistack({ logDir });
    let emulator: LocalServer;
    try {
      emulator = await startLocalEmulator({ logDir });
    } catch (e) {
      await ministack.stop();
      throw e;
    }
    log(`ministack on ${ministack.url} (pid ${ministack.pid}), emulator on ${emulator.url} (pid ${emulator.pid}); logs in ${path.relative(ROOT, logDir) || logDir}/`);
    return new LocalDeployment(options.workDir, ministack, emulator);
  }

  public readonly aws: LocalAws;
  /** CDK CLI runs in flight: stopped with the servers. */
  private readonly cdkRuns = new Set<ChildProcess>();

  private constructor(
    public readonly workDir: string,
    public readonly ministack: LocalServer,
    public readonly emulator: LocalServer,
  ) {
    this.aws = new LocalAws(ministack.url, LOCAL_REGION);
  }

  /** The environment the CDK CLI (and any AWS SDK) needs to talk to ministack. */
  public get env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AWS_ENDPOINT_URL: this.ministack.url,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: LOCAL_REGION,
      AWS_DEFAULT_REGION: LOCAL_REGION,
      CDK_DEFAULT_ACCOUNT: LOCAL_ACCOUNT,
      CDK_DEFAULT_REGION: LOCAL_REGION,
      // No update notices or telemetry prompts in logs.
      CDK_DISABLE_VERSION_CHECK: '1',
      CDK_DISABLE_CLI_TELEMETRY: 'true',
    };
    // A developer's real AWS profile or session must never be picked up here.
    for (const k of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_DEFAULT_PROFILE', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE']) delete env[k];
    env.AWS_CONFIG_FILE = path.join(this.workDir, 'aws-config-none');
    env.AWS_SHARED_CREDENTIALS_FILE = path.join(this.workDir, 'aws-credentials-none');
    return env;
  }

  /** `cdk bootstrap aws://000000000000/us-east-1`. */
  public bootstrap(onLine?: (line: string) => void): Promise<CdkResult> {
    return this.cdk(['bootstrap', `aws://${LOCAL_ACCOUNT}/${LOCAL_REGION}`], { name: 'bootstrap', onLine, app: null });
  }

  /**
   * Runs the real CDK CLI with the example app (or `options.app`), the local endpoint context and
   * its own cdk.out. Resolves with the exit code; never throws for a failed deploy.
   */
  public cdk(args: string[], options: CdkOptions): Promise<CdkResult> {
    const app = options.app === undefined ? `npx tsx ${path.join(ROOT, 'example', 'app.ts')}` : options.app;
    const context = { [LOCAL_ENDPOINT_CONTEXT]: this.emulator.url, ...options.context };
    const full = [
      CDK_BIN, ...args,
      ...(app === null ? [] : ['--app', app, '--output', path.join(this.workDir, 'cdk.out')]),
      ...Object.entries(context).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ];
    const logFile = path.join(this.workDir, 'logs', `cdk-${options.name}.log`);
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    const logStream = fs.createWriteStream(logFile);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, full, { cwd: ROOT, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      this.cdkRuns.add(child);
      let output = '';
      let partial = '';
      const onData = (chunk: Buffer) => {
        const text = chunk.toString();
        output += text;
        logStream.write(text);
        partial += text;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) options.onLine?.(line);
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? 600_000);
      child.on('error', (e) => {
        clearTimeout(timer);
        logStream.end();
        reject(e);
      });
      child.on('close', (code, signal) => {
        this.cdkRuns.delete(child);
        clearTimeout(timer);
        if (partial) options.onLine?.(partial);
        logStream.end();
        resolve({ exitCode: code ?? (signal ? 128 : 1), output, logFile });
      });
    });
  }

  /** GET /_emulator/state of our emulator. */
  public async emulatorState(): Promise<EmulatorState> {
    return this.emulatorAdmin('GET', '/_emulator/state');
  }

  /** Calls one of our emulator's admin routes (/_emulator/...). */
  public async emulatorAdmin(method: string, route: string, body?: unknown): Promise<any> {
    const res = await fetch(`${this.emulator.url}${route}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`emulator ${method} ${route}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : {};
  }

  /**
   * Samples the emulator's state every `intervalMs` until `stop()`, which returns the samples, each
   * with the time it was read (epoch ms): how the resources look from outside while a deploy runs.
   */
  public sampleState(intervalMs = 100): { stop: () => Promise<StateSample[]> } {
    const samples: StateSample[] = [];
    let sampling = true;
    const loop = (async () => {
      while (sampling) {
        const state = await this.emulatorState();
        samples.push({ at: Date.now(), state });
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
    return {
      stop: async () => {
        sampling = false;
        await loop;
        return samples;
      },
    };
  }

  /**
   * Samples the emulator's MicroVMs (state and version) every `intervalMs` until `stop()`, which
   * returns the samples: how a fleet update looks from outside while a deploy runs.
   */
  public sampleMicrovms(intervalMs = 100): { stop: () => Promise<MicrovmSample[]> } {
    const sampler = this.sampleState(intervalMs);
    return { stop: async () => microvmSamples(await sampler.stop()) };
  }

  /** Stops both servers (only the processes this deployment started). */
  public async stop(): Promise<void> {
    for (const child of this.cdkRuns) child.kill('SIGTERM');
    await Promise.allSettled([this.emulator.stop(), this.ministack.stop()]);
  }
}

/** One sample of the emulator's MicroVMs. */
export type MicrovmSample = Array<{ microvmId: string; state: string; imageVersion: string }>;

/** One sample of the emulator's whole state, and when it was read (epoch ms). */
export interface StateSample { readonly at: number; readonly state: EmulatorState }

/** The MicroVMs (state and version) of each state sample. */
export function microvmSamples(samples: StateSample[]): MicrovmSample[] {
  return samples.map((s) => s.state.microvms.map((vm) => ({ microvmId: vm.microvmId, state: vm.state, imageVersion: vm.imageVersion })));
}

/**
 * The RUNNING instances per version in each sample, with consecutive repeats dropped:
 * e.g. `3×1.0`, `2×1.0 + 1×2.0`, ... `3×2.0`.
 */
export function runningTimeline(samples: MicrovmSample[]): string[] {
  const out: string[] = [];
  for (const s of samples) {
    const counts = new Map<string, number>();
    for (const vm of s) if (vm.state === 'RUNNING') counts.set(vm.imageVersion, (counts.get(vm.imageVersion) ?? 0) + 1);
    const text = [...counts.entries()].sort().map(([v, n]) => `${n}×${v}`).join(' + ') || 'none';
    if (out[out.length - 1] !== text) out.push(text);
  }
  return out;
}

/** The part of our emulator's state the demo and tests read. */
export interface EmulatorState {
  readonly images: Array<{
    name: string;
    imageArn: string;
    state: string;
    latestActiveImageVersion?: string | null;
    versions: Array<{ imageVersion: string; state: string; status: string }>;
  }>;
  readonly microvms: Array<{ microvmId: string; state: string; imageArn: string; imageVersion: string; endpoint: string; [k: string]: unknown }>;
  readonly connectors: Array<{ Name: string; Arn: string; State: string; [k: string]: unknown }>;
}

/** Parses one CDK CLI resource event line: `Stack | 3/25 | 9:51:41 PM | STATUS | Type | path (id) reason`. */
export function parseCdkEvent(line: string): { status: string; type: string; resource: string; reason: string } | undefined {
  const parts = line.split(' | ');
  if (parts.length < 6) return undefined;
  const status = parts[3].trim();
  const type = parts[4].trim();
  const rest = parts.slice(5).join(' | ').trim();
  if (!/^[A-Z_]+$/.test(status) || !/::/.test(type)) return undefined;
  const m = /^(.*?\))\s*(.*)$/s.exec(rest);
  return { status, type, resource: m ? m[1] : rest, reason: m ? m[2] : '' };
}
