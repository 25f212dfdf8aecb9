import * as fs from 'node:fs';
import * as path from 'node:path';
import { RemovalPolicy } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ManagedNetworkConnector, MicroVmCode, MicroVmFleet, MicroVmImage, MicroVmImageVersion, NetworkConnector } from '../src';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';

/**
 * The 24 operations of the Lambda MicroVMs API reference ("2026/06/22 - Lambda MicroVMs - 24 new api
 * methods", /work/shared/reference/lambda-microvms-api-2026-06-22.txt), in its order.
 */
const OPERATIONS = [
  'ListManagedMicrovmImages', 'UpdateMicrovmImageVersion', 'GetMicrovmImageVersion', 'ListMicrovmImageVersions',
  'ListMicrovmImages', 'ListMicrovmImageBuilds', 'ListManagedMicrovmImageVersions', 'CreateMicrovmImage',
  'ResumeMicrovm', 'ListMicrovms', 'CreateMicrovmAuthToken', 'GetMicrovmImage',
  'SuspendMicrovm', 'ListTags', 'TerminateMicrovm', 'RunMicrovm',
  'TagResource', 'CreateMicrovmShellAuthToken', 'DeleteMicrovmImageVersion', 'UpdateMicrovmImage',
  'GetMicrovmImageBuild', 'GetMicrovm', 'UntagResource', 'DeleteMicrovmImage',
];

/** Every `new <Operation>Command(` in the provider handlers. */
function operationsCalledByHandlers(): Set<string> {
  const called = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {walk(file);} else if (entry.name.endsWith('.ts')) {
        for (const m of fs.readFileSync(file, 'utf8').matchAll(/new (\w+)Command\(/g)) called.add(m[1]);
      }
    }
  };
  walk(path.join(__dirname, '..', 'lambda'));
  return called;
}

/** `lambda:*` actions of every policy in a stack with every construct and every grant method. */
function policyActions(): { provider: Set<string>; user: Set<string> } {
  const { stack } = newStack();
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 1, natGateways: 0, subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
  const connector = new NetworkConnector(stack, 'Connector', { vpc });
  const image = new MicroVmImage(stack, 'Image', {
    code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), keepVersions: 5, terminateMicroVmsOnDelete: true, adoptExisting: true, imageName: 'app',
  });
  new MicroVmImageVersion(stack, 'Version', { image, imageVersion: '1.0', removalPolicy: RemovalPolicy.DESTROY });
  const fleet = new MicroVmFleet(stack, 'Fleet', {
    image, desiredCount: 1, ingress: [ManagedNetworkConnector.SHELL_INGRESS], egressConnectors: [connector],
  });
  const user = new iam.Role(stack, 'User', { assumedBy: new iam.AccountRootPrincipal() });
  image.grantRead(user);
  image.grantRun(user);
  fleet.grantConnect(user);
  fleet.grantShell(user);
  fleet.grantManage(user);
  connector.grantRead(user);

  const provider = new Set<string>();
  const users = new Set<string>();
  const t = Template.fromStack(stack);
  // The provider acts through each resource's own handler role (inline policies); grants land in
  // the user's role policy.
  const documents: Array<[Set<string>, any]> = [
    ...Object.entries(t.findResources('AWS::IAM::Role')).filter(([id]) => /HandlerRole/.test(id))
      .flatMap(([, role]) => ((role as any).Properties.Policies ?? []).map((p: any): [Set<string>, any] => [provider, p.PolicyDocument])),
    ...Object.entries(t.findResources('AWS::IAM::Policy')).filter(([id]) => !/Provider|reconciler/.test(id))
      .map(([, policy]): [Set<string>, any] => [users, (policy as any).Properties.PolicyDocument]),
  ];
  for (const [target, document] of documents) {
    for (const statement of document.Statement) {
      for (const action of [statement.Action].flat()) {
        if (String(action).startsWith('lambda:')) target.add(String(action).slice('lambda:'.length));
      }
    }
  }
  return { provider, user: users };
}

describe('the 24 operations of the API reference', () => {
  test('the list is the SDK\'s: 24 commands', () => {
    const sdk = fs.readdirSync(path.join(path.dirname(require.resolve('@aws-sdk/client-lambda-microvms/package.json')), 'dist-types', 'commands'))
      .filter((f) => f.endsWith('Command.d.ts')).map((f) => f.replace(/Command\.d\.ts$/, ''));
    expect([...OPERATIONS].sort()).toEqual(sdk.sort());
  });

  test('each is called by a handler (and granted to its provider) or granted by a construct method', () => {
    const called = operationsCalledByHandlers();
    const { provider, user } = policyActions();
    const uncovered = OPERATIONS.filter((op) => !(called.has(op) && provider.has(op)) && !user.has(op));
    expect(uncovered).toEqual([]);
    // A handler call without the provider's permission fails with AccessDenied in AWS (the emulator does not check IAM).
    const calledNotGranted = OPERATIONS.filter((op) => called.has(op) && !provider.has(op));
    expect(calledNotGranted).toEqual([]);
  });
});
