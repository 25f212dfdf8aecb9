import { App, RemovalPolicy, Stack, Tags, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ManagedNetworkConnector, MicroVmCode, MicroVmImage, NetworkConnector, NetworkConnectorDirection } from '../src';
import { handlerStatements, policyStatements } from './support/iam-template';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';

/** A VPC with two private (isolated) subnets, flow logs on, for cdk-nag. */
function vpcIn(stack: Stack): ec2.Vpc {
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });
  vpc.addFlowLog('FlowLog');
  return vpc;
}

const CONNECTOR = 'Custom::LambdaNetworkConnector';

describe('NetworkConnector', () => {
  test('renders the custom resource with the defaults', () => {
    const { stack } = newStack();
    const vpc = vpcIn(stack);
    new NetworkConnector(stack, 'Connector', { vpc });
    const t = Template.fromStack(stack);
    t.hasResourceProperties(CONNECTOR, {
      Name: Match.stringLikeRegexp('^TestStack-Connector-[A-F0-9]{8}$'),
      SubnetIds: [{ Ref: Match.stringLikeRegexp('^Vpcprivate.*Subnet1') }, { Ref: Match.stringLikeRegexp('^Vpcprivate.*Subnet2') }],
      SecurityGroupIds: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('ConnectorSecurityGroup'), 'GroupId'] }],
      NetworkProtocol: 'IPv4',
      ComputeType: 'MicroVm',
      OperatorRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ConnectorOperatorRole'), 'Arn'] },
      TimeoutSeconds: '1800',
    });
    t.hasResource(CONNECTOR, { DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
  });

  test('the default security group has no outbound rules: egress is opt-in', () => {
    const { stack } = newStack();
    new NetworkConnector(stack, 'Connector', { vpc: vpcIn(stack) });
    Template.fromStack(stack).hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('no egress until opened'),
      // aws-cdk-lib's way of saying "no egress": one rule to 255.255.255.255/32 on an impossible port.
      SecurityGroupEgress: [Match.objectLike({ CidrIp: '255.255.255.255/32', IpProtocol: 'icmp', FromPort: 252, ToPort: 86 })],
    });
  });

  test('connections.allowTo opens exactly the path to the database', () => {
    const { stack } = newStack();
    const vpc = vpcIn(stack);
    const connector = new NetworkConnector(stack, 'Connector', { vpc });
    const db = new ec2.SecurityGroup(stack, 'Db', { vpc });
    connector.connections.allowTo(db, ec2.Port.tcp(5432), 'MicroVMs to Postgres');
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
      GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('ConnectorSecurityGroup'), 'GroupId'] },
      DestinationSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Db'), 'GroupId'] },
      FromPort: 5432,
      ToPort: 5432,
      IpProtocol: 'tcp',
    });
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Db'), 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('ConnectorSecurityGroup'), 'GroupId'] },
      FromPort: 5432,
    });
  });

  test('the operator role trusts lambda.amazonaws.com and may create interfaces only in the connector\'s subnets and security groups', () => {
    const { stack } = newStack();
    new NetworkConnector(stack, 'Connector', { vpc: vpcIn(stack) });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }],
      },
      Description: Match.stringLikeRegexp('network interfaces of a Lambda network connector'),
      ManagedPolicyArns: Match.absent(),
    });
    const statements = policyStatements(t, /^ConnectorOperatorRoleDefaultPolicy/);
    expect(statements).toHaveLength(3);
    const [scoped, eni, tags] = statements;
    expect(scoped.Action).toBe('ec2:CreateNetworkInterface');
    const resources = JSON.stringify(scoped.Resource);
    expect(scoped.Resource).toHaveLength(3); // two subnets, one security group
    expect(resources).toMatch(/:ec2:","?\{"Ref":"AWS::Region"\}|:ec2:us-east-1:\*:subnet\//);
    expect(resources).toContain(':*:subnet/');
    expect(resources).toContain(':*:security-group/');
    expect(resources).not.toMatch(/subnet\/\*|security-group\/\*/);
    expect(eni).toMatchObject({
      Action: 'ec2:CreateNetworkInterface',
      Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['aws:lambda:networkConnectorName', 'aws:lambda:networkConnectorId'] } },
    });
    expect(JSON.stringify(eni.Resource)).toContain(':ec2:us-east-1:123456789012:network-interface/*');
    expect(tags).toMatchObject({
      Action: 'ec2:CreateTags',
      Condition: { StringEquals: { 'ec2:CreateAction': 'CreateNetworkInterface', 'ec2:ManagedResourceOperator': 'network-connectors.lambda.amazonaws.com' } },
    });
    // The connector waits for the role's policy.
    const connector = Object.values(t.findResources(CONNECTOR))[0] as any;
    expect(connector.DependsOn).toEqual(expect.arrayContaining([expect.stringMatching(/^ConnectorOperatorRoleDefaultPolicy/), expect.stringMatching(/^ConnectorOperatorRole[A-F0-9]{8}$/)]));
  });

  test('the provider may pass exactly the operator role and manage connectors in this account and Region', () => {
    const { stack } = newStack();
    new NetworkConnector(stack, 'Connector', { vpc: vpcIn(stack) });
    const t = Template.fromStack(stack);
    const statements = handlerStatements(t, /^Connector/);
    expect(statements).toEqual(expect.arrayContaining([
      expect.objectContaining({
        Action: expect.arrayContaining(['lambda:CreateNetworkConnector', 'lambda:UpdateNetworkConnector', 'lambda:TagResource', 'lambda:UntagResource']),
        Resource: [
          { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:us-east-1:123456789012:network-connector:*']] },
          { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:us-east-1:123456789012:network-connector:*:*']] },
        ],
      }),
      expect.objectContaining({
        Action: 'iam:PassRole',
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^ConnectorOperatorRole/), 'Arn'] },
        Condition: { StringEquals: { 'iam:PassedToService': ['lambda.amazonaws.com', 'network-connectors.lambda.amazonaws.com'] } },
      }),
    ]));
    const connector = Object.values(t.findResources(CONNECTOR))[0] as any;
    expect(connector.Properties.HandlerRoleArn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^ConnectorHandlerRole/), 'Arn'] });
  });

  test('a given operator role and security groups are used as they are', () => {
    const { stack } = newStack();
    const vpc = vpcIn(stack);
    const role = iam.Role.fromRoleArn(stack, 'Op', 'arn:aws:iam::123456789012:role/connector-operator', { mutable: false });
    const sgs = [1, 2].map((i) => ec2.SecurityGroup.fromSecurityGroupId(stack, `Sg${i}`, `sg-000${i}`));
    const connector = new NetworkConnector(stack, 'Connector', {
      vpc,
      vpcSubnets: { subnets: [vpc.isolatedSubnets[0]] },
      securityGroups: sgs,
      operatorRole: role,
      networkProtocol: lambda.NetworkConnectorProtocol.DUAL_STACK,
      networkConnectorName: 'db-access',
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties(CONNECTOR, {
      Name: 'db-access',
      SubnetIds: [{ Ref: Match.stringLikeRegexp('Subnet1') }],
      SecurityGroupIds: ['sg-0001', 'sg-0002'],
      NetworkProtocol: 'DualStack',
      OperatorRoleArn: 'arn:aws:iam::123456789012:role/connector-operator',
    });
    // No operator role of ours: only the provider's roles and the connector's handler role.
    expect(Object.keys(t.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('network connector') } })))
      .toEqual([expect.stringMatching(/^ConnectorHandlerRole/)]);
    t.resourceCountIs('AWS::EC2::SecurityGroup', 0);
    expect(connector.securityGroup).toBeUndefined();
    expect(connector.operatorRole).toBe(role);
  });

  test('tags and Tags.of() render into the Tags property', () => {
    const { stack } = newStack();
    const connector = new NetworkConnector(stack, 'Connector', { vpc: vpcIn(stack), tags: { team: 'data' } });
    Tags.of(connector).add('env', 'prod');
    Template.fromStack(stack).hasResourceProperties(CONNECTOR, { Tags: { team: 'data', env: 'prod' } });
  });

  test('removalPolicy RETAIN keeps the connector, its role and its security group', () => {
    const { stack } = newStack();
    new NetworkConnector(stack, 'Connector', { vpc: vpcIn(stack), removalPolicy: RemovalPolicy.RETAIN });
    const t = Template.fromStack(stack);
    t.hasResource(CONNECTOR, { DeletionPolicy: 'Retain' });
    t.hasResource('AWS::IAM::Role', { DeletionPolicy: 'Retain', Properties: { Description: Match.stringLikeRegexp('network connector') } });
    t.hasResource('AWS::EC2::SecurityGroup', { DeletionPolicy: 'Retain' });
  });

  test('attributes come from the custom resource and it implements aws-cdk-lib\'s INetworkConnectorRef', () => {
    const { stack } = newStack();
    const connector = new NetworkConnector(stack, 'Connector', { vpc: vpcIn(stack) });
    const ref: lambda.INetworkConnectorRef = connector;
    expect(stack.resolve(ref.networkConnectorRef.networkConnectorArn)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Connector/), 'NetworkConnectorArn'] });
    expect(stack.resolve(connector.networkConnectorId)).toEqual({ 'Fn::GetAtt': [expect.any(String), 'NetworkConnectorId'] });
    expect(stack.resolve(connector.networkConnectorName)).toEqual({ 'Fn::GetAtt': [expect.any(String), 'NetworkConnectorName'] });
  });

  test('grantPass and grantRead name exactly the connector and its versions', () => {
    const { stack } = newStack();
    const connector = new NetworkConnector(stack, 'Connector', { vpc: vpcIn(stack) });
    const role = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    connector.grantPass(role);
    connector.grantRead(role);
    const arnAtt = { 'Fn::GetAtt': [expect.stringMatching(/^Connector/), 'NetworkConnectorArn'] };
    const statements = policyStatements(Template.fromStack(stack), /^CallerDefaultPolicy/);
    expect(statements).toEqual([
      expect.objectContaining({ Action: 'lambda:PassNetworkConnector', Resource: [arnAtt, { 'Fn::Join': ['', [arnAtt, ':*']] }] }),
      expect.objectContaining({ Action: ['lambda:GetNetworkConnector', 'lambda:ListTags'], Resource: [arnAtt, { 'Fn::Join': ['', [arnAtt, ':*']] }] }),
    ]);
  });

  test('an image whose egress goes through the connector may pass exactly that connector', () => {
    const { stack } = newStack();
    const connector = new NetworkConnector(stack, 'Connector', { vpc: vpcIn(stack) });
    new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), egressConnectors: [connector] });
    const t = Template.fromStack(stack);
    const arnAtt = { 'Fn::GetAtt': [expect.stringMatching(/^Connector/), 'NetworkConnectorArn'] };
    t.hasResourceProperties('Custom::LambdaMicroVmImage', { EgressConnectors: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^Connector'), 'NetworkConnectorArn'] }] });
    const pass = handlerStatements(t, /^Image/).find((s) => s.Action === 'lambda:PassNetworkConnector');
    expect(pass.Resource).toEqual(arnAtt);
  });

  test('aws-cdk-lib\'s own L2 and L1 connectors are accepted as egress connectors', () => {
    const { stack } = newStack();
    const vpc = vpcIn(stack);
    const l2 = new lambda.NetworkConnector(stack, 'CdkConnector', {
      configuration: lambda.NetworkConnectorConfiguration.vpcEgress({
        computeType: lambda.NetworkConnectorComputeType.MICRO_VM,
        vpc,
        securityGroups: [new ec2.SecurityGroup(stack, 'CdkSg', { vpc, allowAllOutbound: false })],
      }),
    });
    const l1 = new lambda.CfnNetworkConnector(stack, 'CfnConnector', {
      configuration: { vpcEgressConfiguration: { subnetIds: ['subnet-1'], securityGroupIds: ['sg-1'], networkProtocol: 'IPv4', associatedComputeResourceTypes: ['MicroVm'] } },
    });
    new MicroVmImage(stack, 'A', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), egressConnectors: [l2] });
    new MicroVmImage(stack, 'B', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), egressConnectors: [l1] });
    const images = Object.values(Template.fromStack(stack).findResources('Custom::LambdaMicroVmImage')).map((r: any) => r.Properties.EgressConnectors);
    expect(images).toEqual(expect.arrayContaining([
      [expect.objectContaining({ 'Fn::GetAtt': [expect.stringMatching(/^CdkConnector/), 'Arn'] })],
      [{ Ref: 'CfnConnector' }], // the L1's reference is its Ref, the ARN
    ]));
  });

  test('imports by ARN parse the id and environment; connections need security groups', () => {
    const { stack } = newStack();
    const arn = 'arn:aws:lambda:eu-west-1:210987654321:network-connector:nc-0123abcd';
    const byArn = NetworkConnector.fromNetworkConnectorArn(stack, 'ByArn', arn);
    expect(byArn.networkConnectorArn).toBe(arn);
    expect(byArn.networkConnectorId).toBe('nc-0123abcd');
    expect(byArn.env).toEqual(expect.objectContaining({ account: '210987654321', region: 'eu-west-1' }));
    expect(() => byArn.connections).toThrow(/pass securityGroups to NetworkConnector.fromNetworkConnectorAttributes/);

    const vpc = vpcIn(stack);
    const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0abc', { allowAllOutbound: false });
    const withSg = NetworkConnector.fromNetworkConnectorAttributes(stack, 'WithSg', { networkConnectorArn: arn, securityGroups: [sg] });
    withSg.connections.allowTo(new ec2.SecurityGroup(stack, 'Cache', { vpc }), ec2.Port.tcp(6379));
    Template.fromStack(stack).hasResourceProperties('AWS::EC2::SecurityGroupEgress', { GroupId: 'sg-0abc', FromPort: 6379 });
  });

  test('managed connectors have region-correct ARNs and are INetworkConnectorRefs', () => {
    const { stack } = newStack();
    expect(ManagedNetworkConnector.INTERNET_EGRESS.arnIn(stack)).toMatch(/:lambda:us-east-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS$/);
    expect(stack.resolve(ManagedNetworkConnector.SHELL_INGRESS.arnIn(stack))).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:us-east-1:aws:network-connector:aws-network-connector:SHELL_INGRESS']],
    });
    const agnostic = new Stack(new App(), 'Agnostic');
    expect(agnostic.resolve(ManagedNetworkConnector.ALL_INGRESS.arnIn(agnostic))).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:', { Ref: 'AWS::Region' }, ':aws:network-connector:aws-network-connector:ALL_INGRESS']],
    });
    expect(ManagedNetworkConnector.NO_INGRESS.direction).toBe(NetworkConnectorDirection.INGRESS);
    expect(ManagedNetworkConnector.INTERNET_EGRESS.direction).toBe(NetworkConnectorDirection.EGRESS);

    const ref = ManagedNetworkConnector.INTERNET_EGRESS.refIn(stack);
    expect(ManagedNetworkConnector.INTERNET_EGRESS.refIn(stack)).toBe(ref); // one per stack
    expect(ref.env.account).toBe('aws');
    expect(ManagedNetworkConnector.isManaged(ref)).toBe(true);
    expect(ManagedNetworkConnector.directionOf(ManagedNetworkConnector.SHELL_INGRESS.refIn(stack))).toBe(NetworkConnectorDirection.INGRESS);
    const connector = new NetworkConnector(stack, 'Connector', { vpc: vpcIn(stack) });
    expect(ManagedNetworkConnector.isManaged(connector)).toBe(false);
    expect(ManagedNetworkConnector.directionOf(connector)).toBe(NetworkConnectorDirection.EGRESS);

    new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), egressConnectors: [ref] });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::LambdaMicroVmImage', {
      EgressConnectors: [{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:us-east-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS']] }],
    });
    expect(ManagedNetworkConnector.of('HTTP_INGRESS', NetworkConnectorDirection.INGRESS).connectorName).toBe('HTTP_INGRESS');
  });

  test('snapshot', () => {
    const { stack } = newStack();
    const vpc = vpcIn(stack);
    const connector = new NetworkConnector(stack, 'Connector', { vpc, networkConnectorName: 'db-access', tags: { team: 'data' } });
    connector.connections.allowTo(new ec2.SecurityGroup(stack, 'Db', { vpc }), ec2.Port.tcp(5432));
    expect(Template.fromStack(stack).toJSON()).toMatchSnapshot();
  });

  test('cdk-nag AwsSolutions finds nothing unacknowledged', () => {
    const { app, stack } = newStack();
    const vpc = vpcIn(stack);
    const connector = new NetworkConnector(stack, 'Connector', { vpc });
    connector.connections.allowTo(new ec2.SecurityGroup(stack, 'Db', { vpc }), ec2.Port.tcp(5432));
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    app.synth();
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
  });

  describe('validation', () => {
    test('fails with a name that is not 1-64 letters, digits, hyphens and underscores', () => {
      const { stack } = newStack();
      const vpc = vpcIn(stack);
      expect(() => new NetworkConnector(stack, 'C', { vpc, networkConnectorName: 'db access' }))
        .toThrow(/networkConnectorName must be 1 to 64 characters.*got 'db access'.*letters, digits, hyphens and underscores/);
      expect(() => new NetworkConnector(stack, 'D', { vpc, networkConnectorName: 'x'.repeat(65) })).toThrow(/65 characters/);
    });

    test('fails with more than 16 subnets', () => {
      const { stack } = newStack();
      const vpc = vpcIn(stack);
      const subnets = Array.from({ length: 17 }, (_, i) => ec2.Subnet.fromSubnetAttributes(stack, `S${i}`, { subnetId: `subnet-${i}`, availabilityZone: 'us-east-1a' }));
      expect(() => new NetworkConnector(stack, 'C', { vpc, vpcSubnets: { subnets } })).toThrow(/vpcSubnets takes 1 to 16 item\(s\), got 17/);
    });

    test('fails when the selection yields no subnets', () => {
      const { stack } = newStack();
      const vpc = vpcIn(stack);
      expect(() => new NetworkConnector(stack, 'C', { vpc, vpcSubnets: { subnets: [] } })).toThrow(/vpcSubnets takes 1 to 16 item\(s\), got 0/);
    });

    test('fails with more than 5 security groups, or an empty list', () => {
      const { stack } = newStack();
      const vpc = vpcIn(stack);
      const sgs = Array.from({ length: 6 }, (_, i) => ec2.SecurityGroup.fromSecurityGroupId(stack, `G${i}`, `sg-${i}`));
      expect(() => new NetworkConnector(stack, 'C', { vpc, securityGroups: sgs })).toThrow(/securityGroups takes 1 to 5 item\(s\), got 6/);
      expect(() => new NetworkConnector(stack, 'D', { vpc, securityGroups: [] })).toThrow(/securityGroups takes 1 to 5 item\(s\), got 0.*default security group/);
    });

    test('fails to import a version-qualified or malformed ARN', () => {
      const { stack } = newStack();
      expect(() => NetworkConnector.fromNetworkConnectorArn(stack, 'V', 'arn:aws:lambda:us-east-1:123456789012:network-connector:nc-1:3'))
        .toThrow(/unqualified connector ARN.*drop any :<version> suffix/);
      expect(() => NetworkConnector.fromNetworkConnectorArn(stack, 'M', 'nc-1')).toThrow(/unqualified connector ARN/);
    });

    test('fails to define a managed connector with a malformed name', () => {
      expect(() => ManagedNetworkConnector.of('internet egress', NetworkConnectorDirection.EGRESS)).toThrow(/upper-case letters/);
    });
  });
});
