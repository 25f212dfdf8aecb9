/**
 * Secrets in no log: a local deploy (ministack + emulator, the real cdk CLI and Provider framework)
 * of an image with a canary in its environment, a fleet with the canary in an inline /run payload
 * and a fleet whose payload secret holds the canary. The canary must appear in no CloudWatch log
 * group, no Step Functions execution history, no CloudFormation stack event and not in the
 * template: the literal environment and payload are staged as an asset object (uploaded to
 * ministack's S3 by the CLI), which the provider reads with the resource's own role.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateMicrovmAuthTokenCommand, LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { callMicrovmEndpoint } from '../../emulator/src/endpoint-call';
import { CdkResult, LocalDeployment } from '../../local/deploy';
import { LOCAL_REGION, ROOT } from '../../local/servers';

const STACK = 'MicroVmsCanary';
const CANARY = `canary${randomUUID().replace(/-/g, '')}`;

jest.setTimeout(10 * 60_000);

let env: LocalDeployment | undefined;
let workDir: string;
let secretArn: string;
let ok = false;

const local = (): LocalDeployment => {
  if (!env) throw new Error('the local servers did not start (see beforeAll)');
  return env;
};

function mustSucceed(what: string, r: CdkResult): void {
  if (r.exitCode !== 0) throw new Error(`${what} exited with ${r.exitCode} (log ${r.logFile}):\n${r.output.split('\n').slice(-40).join('\n')}`);
}

function cdk(name: string, args: string[]): Promise<CdkResult> {
  return local().cdk(args, {
    name,
    app: `npx tsx ${path.join(__dirname, 'canary-app.ts')}`,
    context: { stackName: STACK, canary: CANARY, secretArn, imageDirectory: path.join(ROOT, 'example', 'image') },
  });
}

/** Every place a log of the deployment can be read back, as text. */
async function everyLog(): Promise<Record<string, string>> {
  const aws = local().aws;
  const out: Record<string, string> = {};
  const groups = (await aws.json('logs', 'Logs_20140328.DescribeLogGroups', '1.1', {})).logGroups ?? [];
  for (const g of groups) {
    let token: string | undefined;
    const messages: string[] = [];
    do {
      const page = await aws.json('logs', 'Logs_20140328.FilterLogEvents', '1.1', { logGroupName: g.logGroupName, nextToken: token });
      messages.push(...(page.events ?? []).map((e: any) => e.message));
      token = page.nextToken;
    } while (token);
    out[`log group ${g.logGroupName}`] = messages.join('\n');
  }
  const machines = (await aws.json('states', 'AWSStepFunctions.ListStateMachines', '1.0', {})).stateMachines ?? [];
  for (const m of machines) {
    const executions = (await aws.json('states', 'AWSStepFunctions.ListExecutions', '1.0', { stateMachineArn: m.stateMachineArn })).executions ?? [];
    for (const e of executions) {
      const history = await aws.json('states', 'AWSStepFunctions.GetExecutionHistory', '1.0', { executionArn: e.executionArn });
      out[`execution ${e.executionArn}`] = JSON.stringify(history);
    }
  }
  out[`stack events of ${STACK}`] = await aws.query('cloudformation', 'DescribeStackEvents', '2010-05-15', { StackName: STACK });
  return out;
}

beforeAll(async () => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-lambda-microvms-canary-'));
  env = await LocalDeployment.start({ workDir, bundle: 'if-stale' });
  mustSucceed('cdk bootstrap', await env.bootstrap());
  const secret = await env.aws.json('secretsmanager', 'secretsmanager.CreateSecret', '1.1', { Name: 'microvms-canary-payload', SecretString: `secret-${CANARY}` });
  secretArn = secret.ARN;
}, 5 * 60_000);

afterAll(async () => {
  await env?.stop();
  if (ok) fs.rmSync(workDir, { recursive: true, force: true });
  else if (workDir) process.stderr.write(`canary work files and server logs kept in ${workDir}\n`);
});

/** The /run payload a MicroVM was launched with, as the emulator's endpoint echo reports it. */
async function payloadOf(vm: { microvmId: string; endpoint: string }): Promise<unknown> {
  const emulatorUrl = local().emulator.url;
  const client = new LambdaMicrovmsClient({ endpoint: emulatorUrl, region: LOCAL_REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const { authToken } = await client.send(new CreateMicrovmAuthTokenCommand({
    microvmIdentifier: vm.microvmId, expirationInMinutes: 5, allowedPorts: [{ allPorts: {} }],
  }));
  const r = await callMicrovmEndpoint(emulatorUrl, vm.endpoint, { path: '/', token: authToken?.['X-aws-proxy-auth'] });
  return JSON.parse(r.body).runHookPayload;
}

test('the canary (environment, inline payload, payload secret) is in no log, execution history, stack event or template', async () => {
  mustSucceed('cdk deploy', await cdk('deploy-canary', ['deploy', STACK, '--require-approval', 'never']));
  // The canary really went through: the image got its environment (read from the staged object in
  // ministack's S3), both fleets run with their payloads.
  const state = await local().emulatorState();
  expect(JSON.stringify(state)).toContain(`env-${CANARY}`);
  const running = state.microvms.filter((vm) => vm.state === 'RUNNING');
  expect(running).toHaveLength(2);
  expect(new Set(await Promise.all(running.map(payloadOf)))).toEqual(new Set([`inline-${CANARY}`, `secret-${CANARY}`]));

  const logs = await everyLog();
  expect(Object.keys(logs).filter((k) => k.startsWith('log group')).length).toBeGreaterThan(0);
  expect(Object.keys(logs).some((k) => k.startsWith('execution'))).toBe(true);
  const leaksOf = (value: string) => Object.entries(logs).filter(([, text]) => text.includes(value)).map(([where]) => where);

  // Nowhere: not the secret's value, nor the environment and the inline payload, which are staged
  // (README "What is in the template"), so neither the framework's waiter execution input nor the
  // framework functions' logs (ministack keeps their INFO lines) nor any stack event holds them.
  for (const value of [`secret-${CANARY}`, `env-${CANARY}`, `inline-${CANARY}`]) expect(leaksOf(value)).toEqual([]);
  const template = await local().aws.query('cloudformation', 'GetTemplate', '2010-05-15', { StackName: STACK });
  expect(template).toContain('StagedProperties');
  expect(template).not.toContain(CANARY);
  expect(Object.keys(logs).some((k) => /^log group .*cdklambdamicrovmsProviderLogs/.test(k))).toBe(true);

  mustSucceed('cdk destroy', await cdk('destroy-canary', ['destroy', STACK, '--force']));
  ok = true;
});
