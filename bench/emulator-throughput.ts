/**
 * Emulator throughput over loopback with the real SDK client: GetMicrovm requests/second and
 * RunMicrovm+TerminateMicrovm pairs/second, with rate limits off and (for reference) on.
 * Bounded: at most ~1.2 s or N requests per measurement. Run: npx tsx bench/emulator-throughput.ts
 */
// eslint-disable-next-line import/no-extraneous-dependencies -- benchmark only, never shipped
import { CreateMicrovmImageCommand, GetMicrovmCommand, LambdaMicrovmsClient, RunMicrovmCommand, TerminateMicrovmCommand } from '@aws-sdk/client-lambda-microvms';
import { ManualClock, startEmulator } from '../emulator/src/index';

const MAX_MS = 1200;
const MAX_REQUESTS = 5000;
const CONCURRENCY = 8;

async function measure(label: string, fn: () => Promise<unknown>, requestsPerCall: number): Promise<void> {
  let ok = 0;
  let throttled = 0;
  let otherErrors = 0;
  const start = performance.now();
  const deadline = start + MAX_MS;
  const worker = async () => {
    while (performance.now() < deadline && (ok + throttled + otherErrors) * requestsPerCall < MAX_REQUESTS) {
      try {
        await fn();
        ok++;
      } catch (e: any) {
        if (e?.name === 'ThrottlingException') throttled++;
        else otherErrors++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const secs = (performance.now() - start) / 1000;
  const rps = ((ok + throttled + otherErrors) * requestsPerCall) / secs;
  console.log(`${label.padEnd(44)} ${rps.toFixed(0).padStart(7)} req/s   ok ${ok}, throttled ${throttled}, errors ${otherErrors} in ${secs.toFixed(2)}s`);
}

async function run(rateLimits: boolean): Promise<void> {
  const clock = new ManualClock();
  const emu = await startEmulator({ clock, rateLimits, memoryQuotaMiB: Number.MAX_SAFE_INTEGER });
  const client = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
  try {
    const img = await client.send(new CreateMicrovmImageCommand({ name: 'bench', baseImageArn: `arn:aws:lambda:${emu.region}:aws:microvm-image:al2023-1`, buildRoleArn: 'arn:aws:iam::123456789012:role/b', codeArtifact: { uri: 's3://b/k.zip' } }));
    clock.advance(5000);
    const vm = await client.send(new RunMicrovmCommand({ imageIdentifier: img.imageArn! }));
    clock.advance(2000); // refill the buckets
    const tag = rateLimits ? 'rate limits ON ' : 'rate limits OFF';
    await measure(`[${tag}] GetMicrovm`, () => client.send(new GetMicrovmCommand({ microvmIdentifier: vm.microvmId! })), 1);
    await measure(`[${tag}] RunMicrovm+TerminateMicrovm pairs`, async () => {
      const r = await client.send(new RunMicrovmCommand({ imageIdentifier: img.imageArn! }));
      await client.send(new TerminateMicrovmCommand({ microvmIdentifier: r.microvmId! }));
    }, 2);
    const stats = emu.stats();
    console.log(`  server-side request count: ${stats.total}`);
  } finally {
    client.destroy();
    await emu.close();
  }
}

async function main(): Promise<void> {
  console.log(`emulator throughput (loopback, ${CONCURRENCY} concurrent callers, <= ${MAX_MS} ms per measurement)`);
  await run(false);
  await run(true);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
