import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { MicroVmCode, MicroVmFleet, MicroVmImage, MicroVmImageVersion, NetworkConnector } from '../src';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';
import { ResourceType } from '../src/private/wire';

/**
 * CloudFormation refuses to change a custom resource's ServiceToken on update ("Modifying service
 * token is not allowed"). Once a stack is deployed, the function behind the tokens must keep its
 * logical id for good: if this test fails, the change would break every deployed stack. Do not
 * update these ids; undo the change that moved them (README: "Upgrade notes").
 */
const PINNED_SERVICE_TOKEN = { 'Fn::GetAtt': ['cdklambdamicrovmsProviderframeworkonEvent982557EA', 'Arn'] };
const PINNED_PROVIDER_FUNCTIONS = [
  'cdklambdamicrovmsProviderIsComplete4939BAF5',
  'cdklambdamicrovmsProviderOnEvent9D189B76',
  'cdklambdamicrovmsProviderframeworkisComplete3CB856EB',
  'cdklambdamicrovmsProviderframeworkonEvent982557EA',
  'cdklambdamicrovmsProviderframeworkonTimeout5BA5C856',
];

function allFour() {
  const { stack } = newStack();
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 1, natGateways: 0, subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
  const connector = new NetworkConnector(stack, 'Connector', { vpc, networkConnectorName: 'conn' });
  const image = new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: 'img', egressConnectors: [connector] });
  new MicroVmImageVersion(stack, 'Version', { image, imageVersion: '1.0' });
  new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1 });
  return { stack, t: Template.fromStack(stack) };
}

describe('the one provider per stack', () => {
  test('every resource type\'s ServiceToken is the same, pinned function', () => {
    const { t } = allFour();
    for (const type of Object.values(ResourceType)) {
      const resources = Object.values(t.findResources(type)) as any[];
      expect(resources).toHaveLength(1);
      expect(resources[0].Properties.ServiceToken).toEqual(PINNED_SERVICE_TOKEN);
    }
    expect(Object.keys(t.findResources('AWS::Lambda::Function')).filter((id) => id.startsWith('cdklambdamicrovmsProvider')).sort()).toEqual(PINNED_PROVIDER_FUNCTIONS);
  });

  test('a stack with every construct type, a self-healing fleet included, has at most 5 library Lambda functions (the provider\'s) and 1 state machine', () => {
    const { t } = allFour();
    const functions = Object.keys(t.findResources('AWS::Lambda::Function'));
    // Issue 12: the fleet reconciler (issue 14) runs in the provider's onEvent function, not a sixth one.
    expect(functions.sort()).toEqual(PINNED_PROVIDER_FUNCTIONS);
    t.resourceCountIs('AWS::Lambda::Function', 5);
    t.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
    t.resourceCountIs('AWS::DynamoDB::Table', 1);
  });

  test('the provider role may only write its logs, assume this stack\'s handler roles and, for the reconciler\'s fence, read this stack\'s status', () => {
    const { t } = allFour();
    const [[roleId]] = Object.entries(t.findResources('AWS::IAM::Role')).filter(([id]) => /^cdklambdamicrovmsProviderRole[A-F0-9]{8}$/.test(id));
    const policies = Object.values(t.findResources('AWS::IAM::Policy')).filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId)) as any[];
    const statements = policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
    // DescribeStacks comes with the first self-healing fleet (test/fleet-reconciler-construct.test.ts).
    expect(statements.map((s) => s.Action)).toEqual([['logs:CreateLogStream', 'logs:PutLogEvents'], 'sts:AssumeRole', 'cloudformation:DescribeStacks']);
    expect(statements[2].Resource).toEqual({ Ref: 'AWS::StackId' });
    const assume = statements[1];
    expect(assume.Resource).toEqual({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, expect.stringMatching(/^:iam::123456789012:role\/cdk-lambda-microvms\/[0-9a-f]{12}\/\*$/)]] });

    // Every handler role trusts exactly the provider role and lives under that path.
    const handlerRoles = Object.entries(t.findResources('AWS::IAM::Role')).filter(([id]) => /HandlerRole/.test(id)) as Array<[string, any]>;
    expect(handlerRoles.map(([id]) => id.replace(/[A-F0-9]{8}$/, '')).sort()).toEqual(['ConnectorHandlerRole', 'FleetHandlerRole', 'ImageHandlerRole', 'VersionHandlerRole']);
    const prefix = (assume.Resource['Fn::Join'][1][2] as string).replace(/^:iam::123456789012:role/, '').replace(/\*$/, '');
    for (const [, role] of handlerRoles) {
      // A self-healing fleet's too: its reconciler runs in the provider's onEvent function, under this role.
      expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: { 'Fn::GetAtt': [roleId, 'Arn'] } } },
      ]);
      expect(JSON.stringify(role.Properties.Path)).toContain(prefix);
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  test('a resource\'s role path follows what names its ARNs: a fleet\'s follows its image\'s name', () => {
    const { t } = allFour();
    const fleetRole = Object.entries(t.findResources('AWS::IAM::Role')).find(([id]) => /^FleetHandlerRole/.test(id))![1] as any;
    expect(fleetRole.Properties.Path).toEqual({
      'Fn::Join': ['', [
        expect.stringMatching(/^\/cdk-lambda-microvms\/[0-9a-f]{12}\/fleet\/$/),
        { 'Fn::Select': [6, { 'Fn::Split': [':', { 'Fn::GetAtt': [expect.stringMatching(/^Image/), 'ImageArn'] }] }] },
        '/',
      ]],
    });
  });
});
