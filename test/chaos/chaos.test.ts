import { ADAPTERS } from './adapters';
import { runChaos } from './harness';

/**
 * The fast, fixed-seed subset of the chaos run (the long run: `npx tsx test/chaos/run.ts
 * --sequences 5000 --seed 1`). Every sequence must keep its invariants: live equals what the stack
 * last asked for, every rollback and stack delete converges, every waiter ends, nothing is left.
 */
test('chaos: 45 seeded sequences over the image, image-version and network-connector handlers', async () => {
  const result = await runChaos(ADAPTERS, { sequences: 45, seed: 20261130 });
  expect(Object.values(result.faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(30);
  expect(result.failures.map((f) => `${f.adapter} seed ${f.seed}: ${f.error}`)).toEqual([]);
}, 120_000);
