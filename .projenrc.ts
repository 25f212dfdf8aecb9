import { awscdk, javascript } from 'projen';

/**
 * The project definition. package.json, the tsconfigs and the tasks are generated from here:
 * edit this file, then run `npx projen`.
 */
const project = new awscdk.AwsCdkConstructLibrary({
  name: 'cdk-lambda-microvms',
  description: 'AWS CDK constructs for AWS Lambda MicroVMs: images, image versions, network connectors and fleets.',
  author: 'cdk-lambda-microvms maintainers',
  authorAddress: 'maintainers@users.noreply.cdk-lambda-microvms.example',
  repositoryUrl: 'https://github.com/cdk-lambda-microvms/cdk-lambda-microvms.git',
  keywords: ['cdk', 'aws-cdk', 'lambda', 'microvm', 'microvms', 'awscdk'],
  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,
  cdkVersion: '2.276.0',
  constructsVersion: '10.8.1',
  jsiiVersion: '~6.0.0',
  typescriptVersion: '~6.0.0',
  // Node 20 is end-of-life; the AWS SDK for JavaScript requires Node 22 from January 2027. The
  // package and its build run on the LTS lines 22 and 24.
  minNodeVersion: '22.0.0',
  // No hosted workflows: CI is `.ci/run` on the submitting machine.
  github: false,
  release: false,
  sampleCode: false,
  lambdaAutoDiscover: false,
  integrationTestAutoDiscover: false,
  tsconfigDevFile: 'tsconfig.dev.json',
  // One dev tsconfig covers src, test, lambda, emulator, bench and example: lint against it.
  eslintOptions: {
    dirs: ['src'],
    devdirs: ['test', 'lambda', 'emulator', 'bench', 'example', 'local', 'scripts'],
    tsconfigPath: './tsconfig.dev.json',
    projectService: false,
  },
  tsconfigDev: {
    include: ['.projenrc.ts', 'projenrc/**/*.ts', 'lambda/**/*.ts', 'emulator/**/*.ts', 'bench/**/*.ts', 'example/**/*.ts', 'local/**/*.ts', 'scripts/**/*.ts'],
    compilerOptions: {},
  },
  publishToPypi: {
    distName: 'cdk-lambda-microvms',
    module: 'cdk_lambda_microvms',
  },
  publishToMaven: {
    javaPackage: 'io.github.cdklambdamicrovms',
    mavenGroupId: 'io.github.cdklambdamicrovms',
    mavenArtifactId: 'cdk-lambda-microvms',
  },
  jestOptions: {
    jestVersion: '^30',
    // Snapshots never rewrite themselves: `npx projen test:update` does that on purpose.
    updateSnapshot: javascript.UpdateSnapshot.NEVER,
    jestConfig: {
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testTimeout: 60_000,
      coverageReporters: ['text-summary'],
      snapshotSerializers: ['<rootDir>/test/support/asset-hash-serializer.ts'],
    },
  },
  devDeps: [
    // Bundled into the handlers (Lambda's built-in SDK predates the service).
    '@aws-sdk/client-lambda-microvms@3.1131.0',
    '@aws-sdk/client-secrets-manager',
    '@aws-sdk/client-dynamodb',
    // Handlers read the values staged as an asset object (lambda/shared/staged.ts).
    '@aws-sdk/client-s3',
    // The fleet reconciler reads its stack's status (lambda/fleet/reconciler-entry.ts).
    '@aws-sdk/client-cloudformation',
    // The handler entry assumes each resource's own role (lambda/shared/credentials.ts).
    '@aws-sdk/client-sts',
    '@aws-sdk/credential-provider-node',
    '@smithy/signature-v4',
    '@smithy/protocol-http',
    '@aws-crypto/sha256-js',
    '@types/aws-lambda',
    'esbuild',
    'aws-sdk-client-mock',
    'cdk-nag@^3',
    'aws-cdk@2.1148.1',
    'tsx',
  ],
  gitignore: ['/lambda-dist/', '/emulator-dist/', '/testing/', '/.venv', '/.local/', '/cdk.out/', '/example/cdk.out/', '/bench/results/'],
  npmignoreEnabled: true,
});

// The handlers (and the emulator's command) are bundled with esbuild, SDK included, into
// lambda-dist/ and emulator-dist/: git-ignored, shipped in the npm package. So is the test kit,
// `cdk-lambda-microvms/testing` (testing/index.js and index.d.ts; see emulator/README.md).
project.npmignore?.include('/lambda-dist/', '/emulator-dist/', '/testing/');
project.npmignore?.exclude('/testkit-example/', '/emulator/', '/lambda/', '/local/', '/rosetta/', '/bench/', '/example/', '/scripts/', '/.ci/', '/docs/', '/test/', '/.venv', '/.local/');

// testkit-example/ is a user's project: it compiles against the packed package (.ci/run), not the sources.
project.tsconfigDev.addExclude('testkit-example');

// README and doc examples must compile (jsii-rosetta strict); API.md shows them in TypeScript,
// Python and Java (scripts/rosetta.mjs runs the extract, then jsii-docgen per language).
project.package.addField('jsiiRosetta', {
  strict: true,
  exampleDependencies: { '@types/node': '^22', 'cdk-nag': '^3' },
});
project.tasks.tryFind('docgen')?.reset('node scripts/rosetta.mjs');
project.gitignore.exclude('/.jsii.tabl.json');
// jsii-pacmak builds Java against a throwaway Maven repository by default: use Maven's own, the
// cache (and where scripts/cdk-lib-bindings.sh installs aws-cdk-lib when Maven Central lags).
project.tasks.tryFind('package:java')?.reset('bash scripts/package-java.sh');
project.addBins({ 'microvms-emulator': 'emulator-dist/cli.js' });

const bundle = project.addTask('bundle', {
  description: 'Bundle the provider handlers and the emulator with esbuild (SDK included, minified)',
  exec: 'node scripts/bundle.mjs',
});
project.preCompileTask.spawn(bundle);
// Every package embeds the npm tarball, and the tarball must carry the handler bundles:
// `compile` then `package:js` alone would ship a library whose every synth fails.
for (const name of ['package:js', 'package:python', 'package:java']) {
  project.tasks.tryFind(name)?.prependSpawn(bundle);
}

// The README's main command: the example app deployed to local emulators, changed, destroyed.
project.addTask('demo', {
  description: 'Deploy the example app to local emulators (ministack + our control plane), update it, destroy it',
  exec: 'tsx local/demo.ts',
});

// ts-jest and esbuild do not type-check: this does, for everything outside src/ (jsii checks src/).
const typecheck = project.addTask('typecheck', {
  description: 'Type-check lambda/, emulator/, test/, bench/, example/ and scripts/',
  exec: 'tsc --noEmit -p tsconfig.dev.json',
});
project.testTask.prependSpawn(typecheck);
project.testTask.prependSpawn(bundle);
project.tasks.tryFind('test:update')?.prependSpawn(bundle);

// The fast loop: every test but the end-to-end deploys (test/e2e: ministack, minutes) and the
// bundle checks (they need `npx projen bundle`); no eslint --fix. `npm test` before a commit.
const testUnit = project.addTask('test:unit', {
  description: 'Type-check and run the unit, handler and chaos-subset tests (no end-to-end deploys, no bundles)',
  receiveArgs: true,
});
testUnit.spawn(typecheck);
// The ignore pattern is one `=` value before the other flags: extra arguments (a test file) stay positional.
testUnit.exec("jest '--testPathIgnorePatterns=/test/(e2e/|bundle\\.test\\.ts)' --passWithNoTests --ci --coverage=false", { receiveArgs: true });

// jsii warns on every run that Node 20 is past end-of-life; some build machines still run Node 20.
project.tasks.addEnvironment('JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION', '1');


project.synth();
