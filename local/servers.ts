/**
 * Starts and stops the two local servers a local deploy needs, on 127.0.0.1 and free ports:
 *
 * - ministack (pinned in local/requirements.txt, installed in the git-ignored .venv/):
 *   CloudFormation, Lambda, Step Functions, S3, IAM/STS, SSM, Logs, DynamoDB, EC2, ...
 * - our control-plane emulator (emulator-dist/cli.js): Lambda MicroVMs and Lambda Core
 *   (network connectors), which our provider handlers call through the
 *   `cdk-lambda-microvms:localEndpoint` context option.
 *
 * Each server runs in its own process group, so `stop()` ends exactly the processes this module
 * started (ministack's Lambda workers included) and nothing else.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..');
export const VENV = path.join(ROOT, '.venv');
export const REQUIREMENTS = path.join(ROOT, 'local', 'requirements.txt');
/** The exact ministack release every local deploy runs on (also pinned in local/requirements.txt). */
export const MINISTACK_VERSION = '1.5.33';
/** ministack's account: every ARN of a local deploy is in it, so our emulator uses it too. */
export const LOCAL_ACCOUNT = '000000000000';
export const LOCAL_REGION = 'us-east-1';

/**
 * Our emulator's state-transition delays for local deploys (ms): long enough that the provider's
 * isComplete waiter really waits, short enough that the demo runs in a few minutes.
 */
export const LOCAL_EMULATOR_DELAYS = {
  imageBuildPending: 200,
  imageBuildInProgress: 1500,
  imageDelete: 300,
  versionDelete: 300,
  vmStart: 500,
  vmSuspend: 200,
  vmResume: 200,
  vmTerminate: 300,
  connectorCreate: 1000,
  connectorUpdate: 500,
  connectorDelete: 500,
};

/**
 * ministack scales Step Functions Wait/Retry intervals by this factor. The provider's waiter
 * retries isComplete every 15 s at most 240 times (its one-hour total timeout): 0.02 makes that
 * 0.3 s with the same 240 attempts (72 s of budget), where 0 would spin through the attempts in
 * a few seconds and time the waiter out before a build finishes.
 */
export const SFN_WAIT_SCALE = '0.02';

export type Log = (line: string) => void;

export interface LocalServer {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly logFile: string;
  /** Stops the server's process group (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
}

/** True when .venv/ holds the pinned ministack. */
export function venvReady(): boolean {
  const lib = path.join(VENV, 'lib');
  if (!fs.existsSync(path.join(VENV, 'bin', 'ministack')) || !fs.existsSync(lib)) return false;
  return fs.readdirSync(lib).some((py) =>
    fs.existsSync(path.join(lib, py, 'site-packages', `ministack-${MINISTACK_VERSION}.dist-info`)));
}

/** Creates .venv/ with the pinned requirements unless it already has them. */
export function ensureVenv(log: Log = () => undefined): void {
  if (venvReady()) return;
  log(`creating ${path.relative(ROOT, VENV)}/ with ministack ${MINISTACK_VERSION} (pip install -r local/requirements.txt)`);
  const python = process.env.PYTHON ?? 'python3';
  let version: string;
  try {
    version = execFileSync(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`local deploys need Python 3.10 or newer for ministack, and '${python}' did not run: install python3 (with venv), or set PYTHON`);
  }
  const [major, minor] = version.split('.').map(Number);
  if (major < 3 || (major === 3 && minor < 10)) {
    throw new Error(`ministack ${MINISTACK_VERSION} needs Python 3.10 or newer; '${python}' is ${version}: set PYTHON to a newer one`);
  }
  if (!fs.existsSync(path.join(VENV, 'bin', 'python'))) {
    execFileSync(python, ['-m', 'venv', VENV], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  execFileSync(path.join(VENV, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!venvReady()) throw new Error(`pip finished but ${VENV} has no ministack ${MINISTACK_VERSION}`);
}

/** Bundles the provider handlers and the emulator (node scripts/bundle.mjs). */
export function bundle(): void {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'bundle.mjs')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (!fs.existsSync(path.join(ROOT, 'emulator-dist', 'cli.js'))) {
    throw new Error('scripts/bundle.mjs did not produce emulator-dist/cli.js (is emulator/src/cli.ts there?)');
  }
}

function newestMtime(dir: string, ext: string): number {
  if (!fs.existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith(ext)) {
      newest = Math.max(newest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
    }
  }
  return newest;
}

/**
 * Bundles only when a bundle is missing or older than the sources. `npm test` bundles before jest
 * starts, and bundling deletes lambda-dist/ first: re-bundling from inside a test would pull the
 * assets from under the construct tests running in parallel.
 */
export function bundleIfStale(): boolean {
  const bundles = [
    ...fs.existsSync(path.join(ROOT, 'lambda')) ? fs.readdirSync(path.join(ROOT, 'lambda'), { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name !== 'shared' && fs.existsSync(path.join(ROOT, 'lambda', d.name, 'index.ts')))
      .map((d) => path.join(ROOT, 'lambda-dist', d.name, 'index.js')) : [],
    path.join(ROOT, 'emulator-dist', 'cli.js'),
  ];
  const oldestBundle = Math.min(...bundles.map((f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0)));
  const newestSource = Math.max(newestMtime(path.join(ROOT, 'lambda'), '.ts'), newestMtime(path.join(ROOT, 'emulator', 'src'), '.ts'));
  if (oldestBundle > newestSource) return false;
  bundle();
  return true;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether `p` settled within `ms` (the timer is cleared either way, so nothing keeps Node alive). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), ms); });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Every server this process started and has not stopped yet: stopped on exit, also on a crash. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) killGroup(child, 'SIGKILL');
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // the group this module created with detached: true
  } catch {
    // already gone
  }
}

function launch(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  installExitHook();
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const fd = fs.openSync(logFile, 'w');
  const child = spawn(command, args, { cwd: ROOT, env, detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
  (child as any).serverName = name;
  return child;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) {
      killGroup(child, 'SIGKILL'); // leftover workers of a server that died
      running.delete(child);
      return;
    }
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    killGroup(child, 'SIGTERM');
    const timedOut = !(await within(exited, 5000));
    killGroup(child, 'SIGKILL'); // the group's other members (ministack's Lambda workers)
    if (timedOut) await within(exited, 2000);
    running.delete(child);
  };
}

async function waitHealthy(name: string, child: ChildProcess, url: string, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was healthy; log ${logFile}:\n${tail(logFile)}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`${name} not healthy at ${url} after ${timeoutMs / 1000} s; log ${logFile}:\n${tail(logFile)}`);
}

export interface StartOptions {
  /** Directory for the server's log file. */
  readonly logDir: string;
}

/** Starts ministack from .venv/ (call ensureVenv first) on a free loopback port. */
export async function startMinistack(options: StartOptions): Promise<LocalServer> {
  const port = await freePort();
  const logFile = path.join(options.logDir, 'ministack.log');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GATEWAY_PORT: String(port),
    BIND_HOST: '127.0.0.1',
    SFN_WAIT_SCALE,
    // Our handlers re-check within an isComplete call on the same compressed time
    // (lambda/shared/framework.ts LOCAL_WAIT_SCALE_ENV); ministack's Lambda workers inherit it.
    MICROVMS_LOCAL_WAIT_SCALE: SFN_WAIT_SCALE,
    // Local subprocess Lambda workers, no Docker.
    LAMBDA_EXECUTOR: 'local',
  };
  delete env.EDGE_PORT;
  const child = launch('ministack', path.join(VENV, 'bin', 'ministack'), [], env, logFile);
  const url = `http://127.0.0.1:${port}`;
  const stop = stopper(child);
  try {
    await waitHealthy('ministack', child, `${url}/_ministack/health`, logFile, 60_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { name: 'ministack', url, pid: child.pid!, logFile, stop };
}

export interface EmulatorStartOptions extends StartOptions {
  /** State-transition delays in ms (default LOCAL_EMULATOR_DELAYS). */
  readonly delays?: Partial<typeof LOCAL_EMULATOR_DELAYS>;
}

/** Starts our emulator (emulator-dist/cli.js; call bundle first) with fault injection on. */
export async function startLocalEmulator(options: EmulatorStartOptions): Promise<LocalServer> {
  const logFile = path.join(options.logDir, 'emulator.log');
  const delays = { ...LOCAL_EMULATOR_DELAYS, ...options.delays };
  const args = [path.join(ROOT, 'emulator-dist', 'cli.js'), '--port', '0', '--host', '127.0.0.1',
    '--account', LOCAL_ACCOUNT, '--region', LOCAL_REGION, '--faults', '--no-rate-limits', '--delays', JSON.stringify(delays)];
  const child = launch('emulator', process.execPath, args, process.env, logFile);
  const stop = stopper(child);
  try {
    // The first stdout line is `listening on http://127.0.0.1:<port>`.
    const deadline = Date.now() + 20_000;
    let url: string | undefined;
    while (!url) {
      const m = /^listening on (http:\/\/\S+)/m.exec(fs.readFileSync(logFile, 'utf8'));
      if (m) {url = m[1];} else if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`the emulator did not start; log ${logFile}:\n${tail(logFile)}`);
      } else {await sleep(50);}
    }
    await waitHealthy('emulator', child, `${url}/_emulator/health`, logFile, 10_000);
    return { name: 'emulator', url, pid: child.pid!, logFile, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
