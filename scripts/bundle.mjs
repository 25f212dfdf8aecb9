// Bundles every provider handler (lambda/<resource>/index.ts) and the emulator's command with
// esbuild. The AWS SDK clients are bundled on purpose: Lambda's built-in SDK predates the
// MicroVMs service, and ministack only stubs the clients it knows.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
  // The emulator ships for users' own tests: the `microvms-emulator` command, and the in-process
  // API (`require('cdk-lambda-microvms/emulator-dist')`) with its type declarations.
  await build({
    ...common,
    minify: false,
    entryPoints: [join(root, 'emulator', 'src', 'cli.ts')],
    outfile: join(root, 'emulator-dist', 'cli.js'),
    banner: { js: '#!/usr/bin/env node' },
  });
  await build({
    ...common,
    minify: false,
    entryPoints: [join(root, 'emulator', 'src', 'index.ts')],
    outfile: join(root, 'emulator-dist', 'index.js'),
  });
  const tsc = spawnSync(join(root, 'node_modules', '.bin', 'tsc'), [
    join(root, 'emulator', 'src', 'index.ts'), '--ignoreConfig', '--declaration', '--emitDeclarationOnly', '--skipLibCheck', '--types', 'node',
    // The root: the emulator takes the Lambda Core client's input types (lambda/shared). The public
    // declarations (index, settings, faults, endpoint-call, clock) import no SDK types.
    '--rootDir', root, '--outDir', join(root, 'emulator-dist', 'types'),
    '--resolveJsonModule', '--esModuleInterop', '--strict', '--target', 'ES2022', '--module', 'node16', '--moduleResolution', 'node16',
  ], { stdio: 'inherit' });
  if (tsc.status !== 0) throw new Error('the emulator\'s type declarations did not build');
  writeFileSync(join(root, 'emulator-dist', 'index.d.ts'), "export * from './types/emulator/src/index';\n");
}
if (existsSync(join(root, 'emulator', 'testkit', 'index.ts'))) {
  // The test kit ships as `cdk-lambda-microvms/testing` (testing/index.js + index.d.ts): the
  // emulator, the provider handlers and the lifecycle driver in one file, SDK clients included;
  // aws-cdk-lib and constructs are the user's own (peer dependencies).
  await build({
    ...common,
    minify: false,
    entryPoints: [join(root, 'emulator', 'testkit', 'index.ts')],
    outfile: join(root, 'testing', 'index.js'),
    external: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs'],
  });
  const tsc = spawnSync(join(root, 'node_modules', '.bin', 'tsc'), [
    join(root, 'emulator', 'testkit', 'index.ts'), '--ignoreConfig', '--declaration', '--emitDeclarationOnly', '--skipLibCheck', '--types', 'node',
    '--rootDir', root, '--outDir', join(root, 'testing', 'types'),
    '--resolveJsonModule', '--esModuleInterop', '--strict', '--target', 'ES2022', '--module', 'node16', '--moduleResolution', 'node16',
  ], { stdio: 'inherit' });
  if (tsc.status !== 0) throw new Error('the test kit\'s type declarations did not build');
  writeFileSync(join(root, 'testing', 'index.d.ts'), "export * from './types/emulator/testkit/index';\n");
}
console.log(`bundled ${handlers.length} handler(s): ${handlers.join(', ') || '(none)'}`);
