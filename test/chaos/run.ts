/**
 * The long chaos run: `npx tsx test/chaos/run.ts --sequences 5000 --seed 1`.
 * `--adapter image|image-version|network-connector` limits it to one resource type (a failure's
 * seed then reproduces it: `--adapter image --seed <seed> --sequences 1`).
 * Prints sequences, faults injected, failures (expected 0) and each failure's seed; exits 1 on a failure.
 */
import { ADAPTERS } from './adapters';
import { runChaos } from './harness';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function main(): Promise<void> {
  const sequences = Number(arg('sequences', '200'));
  const seed = Number(arg('seed', '1'));
  const only = arg('adapter', '');
  const adapters = only ? ADAPTERS.filter((a) => a.name === only) : ADAPTERS;
  if (!adapters.length) throw new Error(`no adapter named ${only}: ${ADAPTERS.map((a) => a.name).join(', ')}`);
  const started = Date.now();
  const result = await runChaos(adapters, {
    sequences,
    seed,
    onProgress: (done, failures) => {
      if (done % 500 === 0) console.log(`  ${done}/${sequences} sequences, ${failures} failures`);
    },
  });
  const faults = Object.entries(result.faults).sort().map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(`chaos: ${result.sequences} sequences (seed ${seed}, ${adapters.map((a) => a.name).join(' + ')}) in ${Math.round((Date.now() - started) / 1000)} s`);
  console.log(`faults injected: ${Object.values(result.faults).reduce((a, b) => a + b, 0)} (${faults})`);
  console.log(`failures: ${result.failures.length}`);
  for (const f of result.failures) console.log(`  FAILED ${f.adapter} seed ${f.seed}: ${f.error}`);
  if (result.failures.length) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
