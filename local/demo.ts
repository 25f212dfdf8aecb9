/**
 * `npm run demo`: the whole library working on this machine, with no AWS account.
 *
 * Starts ministack (CloudFormation, Lambda, Step Functions, S3, IAM, ...) and our MicroVMs
 * control-plane emulator on 127.0.0.1, then with the real `cdk` CLI: bootstraps, deploys the
 * example app (example/), changes the image's code and deploys again (a new image version, the
 * fleet replaced in rolling batches), destroys it, and checks that nothing is left in either
 * emulator. Exits non-zero on any failure; the servers are stopped in every case.
 *
 * Work files and logs: .local/demo/ (git-ignored).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateMicrovmAuthTokenCommand, LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { destroyLeftovers, Inventory } from './aws';
import { CdkResult, EmulatorState, LocalDeployment, microvmSamples, parseCdkEvent, runningTimeline } from './deploy';
import { LOCAL_REGION, MINISTACK_VERSION, ROOT } from './servers';
import { formatWaitReport, WaitReport, waitReport, waiterRuns } from './waits';
import { callMicrovmEndpoint } from '../emulator/src/endpoint-call';

const STACK = 'MicroVmsExample';
const FLEET_SIZE = 3;
const workDir = path.join(ROOT, '.local', 'demo');
const imageDir = path.join(workDir, 'image');

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = paint('1');
const dim = paint('2');
const green = paint('32');
const red = paint('31');

interface StepResult { name: string; ok: boolean; seconds: number; detail: string }
const results: StepResult[] = [];
const checks: Array<{ name: string; ok: boolean; detail: string }> = [];
/** Per deploy: the waiters' rounds and time past real completion (local/waits.ts, issue 13). */
const waits: Array<{ deploy: string; report: WaitReport }> = [];

class DemoFailure extends Error {}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function check(name: string, ok: boolean, detail: string): void {
  checks.push({ name, ok, detail });
  say(`  ${ok ? green('✔') : red('✘')} ${name}${detail ? dim(`: ${detail}`) : ''}`);
  if (!ok) throw new DemoFailure(`check failed: ${name} (${detail})`);
}

async function step<T>(name: string, fn: () => Promise<{ value: T; detail: string }>): Promise<T> {
  say(`\n${bold(`▶ ${name}`)}`);
  const started = Date.now();
  try {
    const { value, detail } = await fn();
    results.push({ name, ok: true, seconds: (Date.now() - started) / 1000, detail });
    return value;
  } catch (e) {
    results.push({ name, ok: false, seconds: (Date.now() - started) / 1000, detail: e instanceof Error ? e.message.split('\n')[0] : String(e) });
    throw e;
  }
}

/**
 * Prints each resource's progress from the CDK CLI's events, one compact line each: every event
 * of our custom resources and of the stack, and the final state of every other resource.
 */
function progressPrinter(): (line: string) => void {
  return (line) => {
    const ev = parseCdkEvent(line);
    if (ev) {
      const ours = ev.type.startsWith('Custom::') || ev.type === 'AWS::CloudFormation::Stack';
      if (!ours && /IN_PROGRESS$/.test(ev.status)) return;
      const failed = /FAILED/.test(ev.status);
      const status = failed ? red(ev.status.padEnd(26)) : /COMPLETE$/.test(ev.status) ? green(ev.status.padEnd(26)) : ev.status.padEnd(26);
      const where = ev.resource.replace(/ \([A-Za-z0-9]+\)$/, '');
      const text = `  ${status} ${ev.type.padEnd(34)} ${where}`;
      say(ours ? bold(text) : text);
      if (ev.reason) say(`      ${red(ev.reason.slice(0, 600))}`);
    } else if (/❌|Error:|failed/i.test(line) && !/^\s*at /.test(line)) {
      say(`  ${red(line.trim().slice(0, 400))}`);
    }
  };
}

function cdkFailed(what: string, r: CdkResult): DemoFailure {
  return new DemoFailure(`${what} exited with ${r.exitCode}; full CDK log: ${path.relative(ROOT, r.logFile)}`);
}

function runningVms(state: EmulatorState) {
  return state.microvms.filter((vm) => vm.state === 'RUNNING' || vm.state === 'PENDING');
}

async function deployAndShow(
  env: LocalDeployment, name: string, expectVersion: string, codeVersion: string, previousIds: string[],
): Promise<string[]> {
  const sampler = env.sampleState();
  const deployStarted = Date.now();
  const r = await env.cdk(['deploy', STACK, '--require-approval', 'never', '--progress', 'events'], {
    name,
    onLine: progressPrinter(),
    context: { imageDirectory: imageDir, stackName: STACK },
  });
  const deployMs = Date.now() - deployStarted;
  const stateSamples = await sampler.stop();
  const samples = microvmSamples(stateSamples);
  if (r.exitCode !== 0) throw cdkFailed(`cdk deploy (${name})`, r);
  const report = waitReport(await waiterRuns(env.aws, deployStarted), stateSamples, deployMs);
  waits.push({ deploy: name, report });
  say('\n  waiter rounds and time past real completion (local/waits.ts):');
  for (const line of formatWaitReport(report)) say(`    ${line}`);

  const stack = await env.aws.describeStack(STACK);
  say('');
  check('stack status', /^(CREATE|UPDATE)_COMPLETE$/.test(stack?.status ?? ''), stack?.status ?? 'missing');
  const out = stack!.outputs;
  say(`  image          ${out.ImageArn}`);
  say(`  image version  ${out.ImageVersion} (code ${codeVersion})`);
  say(`  connector      ${out.NetworkConnectorArn}`);
  check('new image version', out.ImageVersion === expectVersion, `${out.ImageVersion}, expected ${expectVersion}`);

  const state = await env.emulatorState();
  const image = state.images.find((i) => i.imageArn === out.ImageArn || out.ImageArn?.endsWith(`:${i.name}`));
  check('image version SUCCESSFUL and ACTIVE in the emulator',
    !!image?.versions.some((v) => v.imageVersion === expectVersion && v.state === 'SUCCESSFUL' && v.status === 'ACTIVE'),
    image ? image.versions.map((v) => `${v.imageVersion} ${v.state}/${v.status}`).join(', ') : 'image not found');

  const endpoints = (out.FleetEndpoints ?? '').split(',').filter(Boolean);
  say(`  fleet          ${out.FleetId}: ${endpoints.length} instance(s) of version ${out.FleetImageVersion}`);
  endpoints.forEach((e, i) => say(`    [${i}] ${e}`));
  const vms = runningVms(state);
  const ids = vms.map((vm) => vm.microvmId);
  check(`fleet of ${FLEET_SIZE} running`, vms.length === FLEET_SIZE && endpoints.length === FLEET_SIZE,
    `${vms.length} running MicroVM(s) in the emulator, ${endpoints.length} endpoint(s) in the outputs`);
  check(`every instance runs version ${expectVersion}`, vms.every((vm) => vm.imageVersion === expectVersion),
    vms.map((vm) => `${vm.microvmId}@${vm.imageVersion}`).join(', '));
  check('the outputs list exactly the running instances\' endpoints',
    [...endpoints].sort().join() === vms.map((vm) => vm.endpoint).sort().join(), `${endpoints.length} endpoint(s)`);
  await callInstance(env, vms.find((vm) => vm.state === 'RUNNING') ?? vms[0]);
  if (previousIds.length) {
    const timeline = runningTimeline(samples);
    say(`  RUNNING instances during the deploy: ${timeline.join(' → ')}`);
    check('rolling: old and new versions served side by side, never fewer than 2 RUNNING',
      timeline.some((t) => t.includes('×1.0') && t.includes('×2.0')) && samples.every((s) => s.filter((vm) => vm.state === 'RUNNING').length >= FLEET_SIZE - 1),
      `${timeline.length} distinct states sampled`);
    check('every instance replaced (rolling update)', ids.every((id) => !previousIds.includes(id)), `old ${previousIds.join(', ')} → new ${ids.join(', ')}`);
  }
  return ids;
}

/**
 * The data plane: an auth token for one fleet instance (CreateMicrovmAuthToken, real SDK), then a
 * request to its endpoint. The emulator answers endpoints on its own port by Host header; with no
 * backend named for the image, its built-in echo answers for the MicroVM.
 */
async function callInstance(env: LocalDeployment, vm: { microvmId: string; endpoint: string }): Promise<void> {
  const client = new LambdaMicrovmsClient({ endpoint: env.emulator.url, region: LOCAL_REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const { authToken } = await client.send(new CreateMicrovmAuthTokenCommand({
    microvmIdentifier: vm.microvmId, expirationInMinutes: 5, allowedPorts: [{ allPorts: {} }],
  }));
  const token = authToken?.['X-aws-proxy-auth'];
  say(`  GET https://${vm.endpoint}/hello  (X-aws-proxy-auth: a token from CreateMicrovmAuthToken)`);
  const r = await callMicrovmEndpoint(env.emulator.url, vm.endpoint, { path: '/hello', token });
  const echo = (() => { try { return JSON.parse(r.body); } catch { return undefined; } })();
  say(`    → ${r.status} ${echo ? JSON.stringify({ microvmId: echo.microvmId, imageVersion: echo.imageVersion, method: echo.method, path: echo.path }) : r.body.slice(0, 200)}`);
  check('a fleet instance answers on its endpoint with a token', r.status === 200 && echo?.microvmId === vm.microvmId, `${r.status}`);
  const denied = await callMicrovmEndpoint(env.emulator.url, vm.endpoint, { path: '/hello' });
  check('…and refuses a request without one', denied.status === 403 && denied.body === 'Request missing authentication', `${denied.status} ${denied.body}`);
}

async function main(): Promise<number> {
  const started = Date.now();
  say(bold('cdk-lambda-microvms demo: real cdk CLI, real CloudFormation Provider framework, no AWS account'));
  say(dim(`ministack ${MINISTACK_VERSION} (pinned, .venv/) + our MicroVMs emulator; work files in ${path.relative(ROOT, workDir)}/`));
  fs.rmSync(workDir, { recursive: true, force: true });
  fs.mkdirSync(workDir, { recursive: true });
  fs.cpSync(path.join(ROOT, 'example', 'image'), imageDir, { recursive: true });

  let env: LocalDeployment | undefined;
  let stopping: Promise<void> | undefined;
  const stopServers = () => {
    // One stop, however many times it is asked for (a signal can arrive during a normal stop).
    stopping ??= (async () => {
      const e = env;
      if (!e) return;
      await e.stop();
      say(dim(`\nstopped ministack (pid ${e.ministack.pid}) and the emulator (pid ${e.emulator.pid})`));
    })();
    return stopping;
  };
  // Ctrl-C reaches this process more than once (directly, and relayed by npm/tsx): every signal
  // waits for the same stop, and none takes the default action (exit without stopping anything).
  let signalled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    say(red(`\n${sig}: stopping the servers`));
    void stopServers().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  let ok = false;
  try {
    env = await step('Start ministack and the emulator on 127.0.0.1', async () => {
      const e = await LocalDeployment.start({ workDir, log: (l) => say(`  ${l}`) });
      return { value: e, detail: `ministack ${e.ministack.url}, emulator ${e.emulator.url}` };
    });
    const local = env;

    const baseline = await step('cdk bootstrap aws://000000000000/us-east-1', async () => {
      const r = await local.bootstrap();
      if (r.exitCode !== 0) throw cdkFailed('cdk bootstrap', r);
      const inv = await local.aws.inventory();
      say(`  bootstrapped (CDKToolkit stack: ${(await local.aws.describeStack('CDKToolkit'))?.status})`);
      return { value: inv, detail: 'CDKToolkit stack created' };
    });

    const v1Ids = await step('Deploy the example app (image v1, version, VPC + connector, fleet of 3)', async () => {
      const ids = await deployAndShow(local, 'deploy-v1', '1.0', 'v1', []);
      return { value: ids, detail: `image version 1.0, ${ids.length} MicroVMs` };
    });

    await step('Change the image code (server.mjs: v1 → v2) and deploy again', async () => {
      const file = path.join(imageDir, 'server.mjs');
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace("const VERSION = 'v1';", "const VERSION = 'v2';"));
      say(`  edited ${path.relative(ROOT, file)}`);
      const ids = await deployAndShow(local, 'deploy-v2', '2.0', 'v2', v1Ids);
      return { value: ids, detail: `image version 2.0, fleet replaced (${ids.length} new MicroVMs)` };
    });

    const destroyStarted = Date.now();
    const beforeDestroy = await local.aws.inventory();
    await step('cdk destroy', async () => {
      const r = await local.cdk(['destroy', STACK, '--force', '--progress', 'events'], {
        name: 'destroy', onLine: progressPrinter(), context: { imageDirectory: imageDir, stackName: STACK },
      });
      if (r.exitCode !== 0) throw cdkFailed('cdk destroy', r);
      return { value: undefined, detail: 'stack deleted' };
    });

    await step('Check that nothing is left in either emulator', async () => {
      const stack = await local.aws.describeStack(STACK);
      check('stack gone from CloudFormation', !stack || stack.status === 'DELETE_COMPLETE', stack?.status ?? 'does not exist');
      const { left, recreatedLogGroups } = await destroyLeftovers(local.aws, baseline as Inventory, beforeDestroy, destroyStarted);
      for (const g of recreatedLogGroups) {
        say(dim(`  note: ministack re-created log group ${g} after CloudFormation deleted it, by writing a framework Lambda's logs after its invocation (a ministack behaviour; see local/README.md)`));
      }
      check('ministack: no function, role, policy, state machine, log group, table, VPC, subnet, security group, secret or parameter left',
        Object.keys(left).length === 0, Object.keys(left).length ? JSON.stringify(left) : 'same as right after bootstrap');
      const state = await local.emulatorState();
      const vms = state.microvms.filter((vm) => vm.state !== 'TERMINATED');
      check('emulator: no image, connector or live MicroVM left', state.images.length === 0 && state.connectors.length === 0 && vms.length === 0,
        `${state.images.length} image(s), ${state.connectors.length} connector(s), ${vms.length} live MicroVM(s)`);
      return { value: undefined, detail: 'nothing left' };
    });
    ok = true;
  } catch (e) {
    say(red(`\n✘ ${e instanceof Error ? e.message : String(e)}`));
    if (!(e instanceof DemoFailure) && e instanceof Error && e.stack) say(dim(e.stack));
  } finally {
    await stopServers();
  }

  say(`\n${bold('Summary')}`);
  for (const r of results) say(`  ${r.ok ? green('✔') : red('✘')} ${r.name.padEnd(78)} ${dim(`${r.seconds.toFixed(1)} s`)}  ${dim(r.detail)}`);
  say(`  ${checks.filter((c) => c.ok).length}/${checks.length} checks passed`);
  if (waits.length) {
    const past = waits.reduce((n, w) => n + w.report.pastCompletionMs, 0);
    const poll = waits.reduce((n, w) => n + w.report.pollWaitMs, 0);
    const wall = waits.reduce((n, w) => n + w.report.wallMs, 0);
    say(`  deploys ran ${(past / 1000).toFixed(2)} s past real completion in ${(wall / 1000).toFixed(1)} s of deploy wall time: ${(100 * past / wall).toFixed(1)} %; ` +
      `of it waiting for a poll ${(poll / 1000).toFixed(2)} s: ${(100 * poll / wall).toFixed(1)} %`);
    fs.writeFileSync(path.join(workDir, 'waits.json'), `${JSON.stringify(waits, undefined, 2)}\n`);
  }
  say(`  ${ok ? green(bold('demo passed')) : red(bold('demo FAILED'))} in ${((Date.now() - started) / 1000).toFixed(0)} s; logs in ${path.relative(ROOT, path.join(workDir, 'logs'))}/`);
  return ok ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`${e?.stack ?? e}\n`);
  process.exit(1);
});
