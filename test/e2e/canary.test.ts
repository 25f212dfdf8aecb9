/**
 * Secrets in no log: a local deploy (ministack + emulator, the real cdk CLI and Provider framework)
 * of an image with a canary in its environment, a fleet with the canary in an inline /run payload
 * and a fleet whose payload secret holds the canary. The canary must appear in no CloudWatch log
 * group, no Step Functions execution history and no CloudFormation stack event. Met for the
 * secret; the environment and the inline payload are in the template, and the framework's waiter
 * execution input holds them too (see the test).
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CdkResult, LocalDeployment } from '../../local/deploy';
import { ROOT } from '../../local/servers';

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

test('the payload secret\'s value is in no log, execution history or stack event; template values are in none of our logs or the stack events', async () => {
  mustSucceed('cdk deploy', await cdk('deploy-canary', ['deploy', STACK, '--require-approval', 'never']));
  // The canary really went through: the image got its environment, both fleets run.
  const state = await local().emulatorState();
  expect(JSON.stringify(state)).toContain(`env-${CANARY}`);
  expect(state.microvms.filter((vm) => vm.state === 'RUNNING')).toHaveLength(2);

  const logs = await everyLog();
  expect(Object.keys(logs).filter((k) => k.startsWith('log group')).length).toBeGreaterThan(0);
  expect(Object.keys(logs).some((k) => k.startsWith('execution'))).toBe(true);
  const leaksOf = (value: string) => Object.entries(logs).filter(([, text]) => text.includes(value)).map(([where]) => where);

  // The secret's value: nowhere.
  expect(leaksOf(`secret-${CANARY}`)).toEqual([]);
  // Values that are in the template (environment, inline payload: README "What is in the
  // template"): in none of our handlers' logs and no stack event. Known, and documented: the
  // Provider framework's waiter state machine takes the whole CloudFormation event as its
  // execution input, so GetExecutionHistory shows the properties (on AWS too); and ministack
  // does not filter the framework functions' logs by their ApplicationLogLevel (ERROR in the
  // template, test/image.test.ts), so here their INFO lines, which print the event, are kept.
  const known = (where: string) => where.startsWith('execution ') || /^log group .*cdklambdamicrovmsProviderFrameworkLogs/.test(where);
  for (const value of [`env-${CANARY}`, `inline-${CANARY}`]) {
    const leaks = leaksOf(value);
    expect(leaks.filter((w) => !known(w))).toEqual([]);
  }
  expect(Object.keys(logs).some((k) => /^log group .*cdklambdamicrovmsProviderLogs/.test(k))).toBe(true);

  mustSucceed('cdk destroy', await cdk('destroy-canary', ['destroy', STACK, '--force']));
  ok = true;
});
