import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from '../../emulator/src/cli';

test('parseArgs: options, delay flags and --delays JSON', () => {
  expect(parseArgs(['--port', '0', '--region', 'eu-west-1', '--account=111122223333', '--clock-speed', '10', '--delay-vm-start', '5', '--delays', '{"imageDelete":7}', '--faults', '--no-rate-limits', '--latency-ms', '3']))
    .toEqual({ port: 0, region: 'eu-west-1', account: '111122223333', clockSpeed: 10, delays: { vmStart: 5, imageDelete: 7 }, faults: true, rateLimits: false, latencyMs: 3 });
  expect(() => parseArgs(['--bogus'])).toThrow(/unknown option/);
  expect(() => parseArgs(['--delay-vm-start', 'x'])).toThrow(/needs a number/);
});

test('the command prints "listening on" first, serves requests and stops on SIGTERM', async () => {
  const tsx = join(__dirname, '../../node_modules/.bin/tsx');
  const child = spawn(tsx, [join(__dirname, '../../emulator/src/cli.ts'), '--port', '0', '--faults'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const firstLine = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) resolve(buf.split('\n')[0]);
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}`)));
  });
  expect(firstLine).toMatch(/^listening on http:\/\/127\.0\.0\.1:\d+$/);
  const url = firstLine.slice('listening on '.length);
  const health = await (await fetch(`${url}/_emulator/health`)).json();
  expect(health).toMatchObject({ status: 'ok', faults: true, manualClock: false });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  expect(await exit).toBe(0);
}, 30000);
