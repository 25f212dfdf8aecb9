/**
 * `microvms-emulator` command. Prints `listening on http://127.0.0.1:<port>` as the first stdout line.
 *
 *   microvms-emulator [--port 0] [--host 127.0.0.1] [--region us-east-1] [--account 123456789012]
 *                     [--clock-speed N] [--delay-<name> ms ...] [--delays JSON] [--faults]
 *                     [--no-rate-limits] [--memory-quota-mib N] [--latency-ms N]
 *
 * Delay names are the kebab-case keys of `Delays`, e.g. --delay-vm-start 200 --delay-image-build-in-progress 1000.
 */
import { DEFAULT_DELAYS, Delays, EmulatorOptions, startEmulator } from './index';

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const DELAY_FLAGS: Record<string, keyof Delays> = Object.fromEntries(Object.keys(DEFAULT_DELAYS).map((k) => [`--delay-${kebab(k)}`, k as keyof Delays]));

const USAGE = `usage: microvms-emulator [options]
  --port N                 TCP port (default 0 = any free port)
  --host ADDR              bind address (default 127.0.0.1)
  --region R               region (default us-east-1)
  --account ID             12-digit account id (default 123456789012)
  --clock-speed N          virtual time runs N x real time (default 1)
  --delays JSON            state-transition delays, e.g. '{"vmStart":200}'
${Object.keys(DELAY_FLAGS).map((f) => `  ${f} MS`).join('\n')}
  --faults                 enable the /_emulator/faults/* routes
  --no-rate-limits         disable the per-operation token buckets
  --memory-quota-mib N     account memory quota (default 409600)
  --latency-ms N           artificial per-request latency
  --help                   this text`;

export function parseArgs(argv: string[]): EmulatorOptions {
  const opts: EmulatorOptions = {};
  const delays: Partial<Delays> = {};
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n)) throw new Error(`${flag} needs a number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let inline: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const next = () => (inline !== undefined ? inline : argv[++i]);
    switch (a) {
      case '--port': opts.port = num(a, next()); break;
      case '--host': opts.host = next(); break;
      case '--region': opts.region = next(); break;
      case '--account': opts.account = next(); break;
      case '--clock-speed': opts.clockSpeed = num(a, next()); break;
      case '--delays': Object.assign(delays, JSON.parse(next() ?? '{}')); break;
      case '--faults': opts.faults = true; break;
      case '--no-rate-limits': opts.rateLimits = false; break;
      case '--memory-quota-mib': opts.memoryQuotaMiB = num(a, next()); break;
      case '--latency-ms': opts.latencyMs = num(a, next()); break;
      case '--help': case '-h':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        if (DELAY_FLAGS[a]) delays[DELAY_FLAGS[a]] = num(a, next());
        else throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (Object.keys(delays).length) opts.delays = delays;
  return opts;
}

async function main(): Promise<void> {
  let opts: EmulatorOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e: any) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
  const emu = await startEmulator(opts);
  process.stdout.write(`listening on ${emu.url}\n`);
  process.stdout.write(`region ${emu.region}, account ${emu.account}, faults ${opts.faults ? 'on' : 'off'}, rate limits ${opts.rateLimits === false ? 'off' : 'on'}\n`);
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`received ${sig}, stopping\n`);
    emu.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  });
}
