// Bundles every provider handler (lambda/<resource>/index.ts) and the emulator's command with
// esbuild. The AWS SDK clients are bundled on purpose: Lambda's built-in SDK predates the
// MicroVMs service, and ministack only stubs the clients it knows.
import { build } from 'esbuild';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const handlers = readdirSync(join(root, 'lambda'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'shared' && existsSync(join(root, 'lambda', d.name, 'index.ts')))
  .map((d) => d.name);

// Files are overwritten in place, never deleted first: tests that synthesize while another
// process bundles must always find the assets. Only bundles of removed handlers go.
for (const stale of existsSync(join(root, 'lambda-dist')) ? readdirSync(join(root, 'lambda-dist')) : []) {
  if (!handlers.includes(stale)) rmSync(join(root, 'lambda-dist', stale), { recursive: true, force: true });
}
const common = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', minify: true, legalComments: 'none', logLevel: 'warning' };
await Promise.all(handlers.map((name) => build({
  ...common,
  entryPoints: [join(root, 'lambda', name, 'index.ts')],
  outfile: join(root, 'lambda-dist', name, 'index.js'),
  // Nothing is external: the SDK clients ship inside the bundle.
  external: [],
})));
if (existsSync(join(root, 'emulator', 'src', 'cli.ts'))) {
  await build({
    ...common,
    minify: false,
    entryPoints: [join(root, 'emulator', 'src', 'cli.ts')],
    outfile: join(root, 'emulator-dist', 'cli.js'),
    banner: { js: '#!/usr/bin/env node' },
  });
}
console.log(`bundled ${handlers.length} handler(s): ${handlers.join(', ') || '(none)'}`);
