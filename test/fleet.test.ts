import { CfnParameter, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  FleetUpdatePolicy,
  ManagedNetworkConnector,
  MicroVmCode,
  MicroVmFleet,
  MicroVmFleetProps,
  MicroVmImage,
  MicroVmLogging,
} from '../src';
import { stagedContent } from './support/iam-s3';
import { handlerRole, handlerStatements, policyStatements } from './support/iam-template';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';

const FLEET = 'Custom::LambdaMicroVmFleet';

function setup(id = 'TestStack') {
  const { app, stack } = newStack(id);
  const image = new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: 'fleet-image' });
  return { app, stack, image };
}

describe('MicroVmFleet', () => {
  test('renders the fleet with its inventory table and the defaults', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 3 });
    const t = Template.fromStack(stack);
    t.hasResourceProperties(FLEET, {
      ImageArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Image'), 'ImageArn'] },
      // Default version: the one the image's current deploy produced, so an image update rolls the fleet.
      ImageVersion: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Image'), 'ImageVersion'] },
      DesiredCount: '3',
      ExecutionRoleArn: Match.absent(),
      MaximumDurationSeconds: '28800',
      UpdatePolicy: 'ROLLING',
      BatchSize: Match.absent(), // the provider sizes the batch from LaunchRate
      LaunchRate: '5',
      SuspendAfterLaunch: Match.absent(),
      RunHookPayload: Match.absent(),
      TableName: { Ref: Match.stringLikeRegexp('^cdklambdamicrovmsProviderInventory') },
      TimeoutSeconds: '3300',
    });
    t.hasResource(FLEET, { DeletionPolicy: 'Delete' });
    t.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      },
      DeletionPolicy: 'Delete',
    });
    // No execution role unless something needs one.
    t.resourcePropertiesCountIs('AWS::IAM::Role', { Description: Match.stringLikeRegexp('Runs the MicroVMs') }, 0);
  });

  test('RETAIN keeps both the instances (no Delete is sent) and the inventory', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1, removalPolicy: RemovalPolicy.RETAIN });
    const t = Template.fromStack(stack);
    t.hasResource(FLEET, { DeletionPolicy: 'Retain' });
    t.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain' });
  });

  test('every setting reaches the wire; CloudWatch logging creates a log group and an execution role', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', {
      image,
      desiredCount: 0,
      ingress: [ManagedNetworkConnector.ALL_INGRESS, ManagedNetworkConnector.SHELL_INGRESS],
      egressConnectors: [ManagedNetworkConnector.INTERNET_EGRESS.refIn(stack)],
      idlePolicy: { suspendAfterIdle: Duration.minutes(5), terminateAfterSuspended: Duration.hours(1) },
      maximumDuration: Duration.hours(2),
      logging: MicroVmLogging.cloudWatch(),
      runHookPayload: '{"role":"worker"}',
      updatePolicy: FleetUpdatePolicy.replaceAll(),
      suspendAfterLaunch: true,
      launchRate: 10,
      timeout: Duration.minutes(30),
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties(FLEET, {
      DesiredCount: '0',
      IngressConnectors: [
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:us-east-1:aws:network-connector:aws-network-connector:ALL_INGRESS']] },
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:us-east-1:aws:network-connector:aws-network-connector:SHELL_INGRESS']] },
      ],
      EgressConnectors: [Match.anyValue()],
      IdlePolicy: { MaxIdleSeconds: '300', SuspendedSeconds: '3600', AutoResume: 'true' },
      MaximumDurationSeconds: '7200',
      Logging: { LogGroup: { Ref: Match.stringLikeRegexp('^FleetLogs') } },
      RunHookPayload: Match.absent(),
      StagedProperties: { Bucket: 'cdk-hnb659fds-assets-123456789012-us-east-1', Key: Match.stringLikeRegexp('^[0-9a-f]{64}\\.json$') },
      UpdatePolicy: 'REPLACE_ALL',
      BatchSize: Match.absent(),
      SuspendAfterLaunch: 'true',
      LaunchRate: '10',
      TimeoutSeconds: '1800',
      ExecutionRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^FleetExecutionRole'), 'Arn'] },
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^FleetExecutionRole') }],
      PolicyDocument: { Statement: [Match.objectLike({ Action: ['logs:CreateLogStream', 'logs:PutLogEvents'] })] },
    });
  });

  test('the provider may run and stop instances of exactly this image, use exactly this table, and pass exactly the execution role', () => {
    const { stack, image } = setup();
    const role = new iam.Role(stack, 'Exec', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 2, executionRole: role });
    const imageArn = { 'Fn::GetAtt': [expect.stringMatching(/^Image/), 'ImageArn'] };
    expect(handlerStatements(Template.fromStack(stack), /^Fleet/)).toEqual([
      {
        Effect: 'Allow',
        Action: ['lambda:RunMicrovm', 'lambda:TerminateMicrovm', 'lambda:GetMicrovm', 'lambda:SuspendMicrovm', 'lambda:ResumeMicrovm', 'lambda:GetMicrovmImageVersion', 'lambda:GetMicrovmImage'],
        Resource: [imageArn, { 'Fn::Join': ['', [imageArn, ':*']] }],
      },
      { Effect: 'Allow', Action: 'lambda:ListMicrovms', Resource: '*' },
      {
        Effect: 'Allow',
        Action: 'lambda:PassNetworkConnector',
        // No connectors given: exactly the service's defaults, never every managed one (SHELL_INGRESS).
        Resource: ['HTTP_INGRESS', 'INTERNET_EGRESS'].map((n) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:lambda:us-east-1:aws:network-connector:aws-network-connector:${n}`]] })),
      },
      {
        Effect: 'Allow',
        Action: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchWriteItem',
          // The reconciler (self-healing is on by default) deletes its run's lease item with this role.
          'dynamodb:DeleteItem'],
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^cdklambdamicrovmsProviderInventory/), 'Arn'] },
      },
      {
        Effect: 'Allow',
        Action: 'iam:PassRole',
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^Exec/), 'Arn'] },
        Condition: { StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
      },
    ]);
  });

  test('a given execution role with CloudWatch logging may write to the fleet\'s log group; SHELL_INGRESS is passed only when named', () => {
    const { stack, image } = setup();
    const role = new iam.Role(stack, 'Exec', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1, executionRole: role, logging: MicroVmLogging.cloudWatch(), ingress: [ManagedNetworkConnector.SHELL_INGRESS] });
    const t = Template.fromStack(stack);
    const execStatements = policyStatements(t, /^ExecDefaultPolicy/);
    expect(execStatements).toEqual([expect.objectContaining({
      Action: expect.arrayContaining(['logs:CreateLogStream', 'logs:PutLogEvents']),
      Resource: expect.objectContaining({ 'Fn::GetAtt': [expect.stringMatching(/^FleetLogs/), 'Arn'] }),
    })]);
    const pass = handlerStatements(t, /^Fleet/).find((s) => s.Action === 'lambda:PassNetworkConnector');
    expect(JSON.stringify(pass.Resource)).toMatch(/aws-network-connector:SHELL_INGRESS".*aws-network-connector:INTERNET_EGRESS"/);
    expect(JSON.stringify(pass.Resource)).not.toMatch(/HTTP_INGRESS|aws-network-connector:\*/);
  });

  test('a payload secret: only its ARN is in the template, and the provider may read exactly that secret', () => {
    const { stack, image } = setup();
    const secret = new secretsmanager.Secret(stack, 'Payload');
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1, runHookPayloadSecret: secret });
    const t = Template.fromStack(stack);
    t.hasResourceProperties(FLEET, { RunHookPayloadSecretArn: { Ref: Match.stringLikeRegexp('^Payload') }, RunHookPayload: Match.absent() });
    expect(handlerStatements(t, /^Fleet/)).toEqual(expect.arrayContaining([
      { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: { Ref: expect.stringMatching(/^Payload/) } },
    ]));
  });

  test('a fleet of up to 10 exposes its ids and endpoints; larger fleets point at the inventory', () => {
    const { stack, image } = setup();
    const small = new MicroVmFleet(stack, 'Small', { image, desiredCount: 2 });
    expect(JSON.stringify(stack.resolve(small.instanceEndpoints))).toMatch(/Fn::Split.*Endpoints/);
    expect(JSON.stringify(stack.resolve(small.instanceIds))).toMatch(/Fn::Split.*InstanceIds/);
    const big = new MicroVmFleet(stack, 'Big', { image, desiredCount: 11 });
    expect(() => big.instanceIds).toThrow(/desiredCount 11.*read the inventory table instead/);
    expect(stack.resolve(big.fleetId)).toEqual({ Ref: expect.stringMatching(/^Big/) });
  });

  test('grants: connect, shell, read, manage, read inventory', () => {
    const { stack, image } = setup();
    const fleet = new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1, ingress: [ManagedNetworkConnector.SHELL_INGRESS] });
    const app = new iam.Role(stack, 'App', { assumedBy: new iam.AccountRootPrincipal() });
    fleet.grantConnect(app);
    fleet.grantShell(app);
    fleet.grantManage(app);
    const imageArn = { 'Fn::GetAtt': [Match.stringLikeRegexp('^Image'), 'ImageArn'] };
    const onImage = [imageArn, { 'Fn::Join': ['', [imageArn, ':*']] }];
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^App') }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'lambda:CreateMicrovmAuthToken', Resource: onImage }),
          Match.objectLike({ Action: 'lambda:CreateMicrovmShellAuthToken', Resource: onImage }),
          Match.objectLike({ Action: 'lambda:GetMicrovm', Resource: onImage }),
          Match.objectLike({ Action: 'lambda:ListMicrovms', Resource: '*' }),
          Match.objectLike({ Action: ['dynamodb:Query', 'dynamodb:GetItem'], Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('^cdklambdamicrovmsProviderInventory'), 'Arn'] } }),
          Match.objectLike({ Action: ['lambda:SuspendMicrovm', 'lambda:ResumeMicrovm', 'lambda:TerminateMicrovm'], Resource: onImage }),
        ]),
      },
    });
  });

  test('an imported fleet grants on the imported image and table', () => {
    const { stack } = setup();
    const image = MicroVmImage.fromImageName(stack, 'Imported', 'other');
    const table = dynamodb.Table.fromTableName(stack, 'Table', 'inventory');
    const fleet = MicroVmFleet.fromFleetAttributes(stack, 'F', { fleetId: 'fleet-0123', image, inventoryTable: table });
    const fn = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    fleet.grantReadInventory(fn);
    expect(() => fleet.grantShell(fn)).toThrow(/does not have SHELL_INGRESS/);
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: [Match.objectLike({ Action: ['dynamodb:Query', 'dynamodb:GetItem'] })] },
    });
  });

  test('fleets share one provider and one inventory table with the stack', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'A', { image, desiredCount: 1 });
    new MicroVmFleet(stack, 'B', { image, desiredCount: 1 });
    const t = Template.fromStack(stack);
    t.resourceCountIs(FLEET, 2);
    t.resourceCountIs('AWS::DynamoDB::Table', 1);
    const handlers = t.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('fleets') } });
    expect(Object.keys(handlers)).toHaveLength(2);
  });

  test('snapshot', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 4, updatePolicy: FleetUpdatePolicy.rolling({ batchSize: 2 }), runHookPayload: 'hello' });
    expect(Template.fromStack(stack).toJSON()).toMatchSnapshot();
  });

  test('cdk-nag AwsSolutions: no unsuppressed findings', () => {
    const { app, stack, image } = setup('NagStack');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const fleet = new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 2, logging: MicroVmLogging.cloudWatch(), runHookPayloadSecret: new secretsmanager.Secret(stack, 'Payload') });
    const secret = stack.node.findChild('Payload');
    Validations.of(secret).acknowledge({ id: 'AwsSolutions-SMG4', reason: 'a test secret holding a /run payload: nothing to rotate' });
    const reader = new iam.Role(stack, 'Reader', { assumedBy: new iam.AccountRootPrincipal() });
    fleet.grantRead(reader);
    Validations.of(reader).acknowledge(
      { id: 'AwsSolutions-IAM5[Resource::<Image9D742C96.ImageArn>:*]', reason: 'the image\'s version-qualified ARNs' },
      { id: 'AwsSolutions-IAM5[Resource::*]', reason: 'ListMicrovms has no resource type in IAM' },
    );
    app.synth();
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
    expect(warnings.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
  });
});

describe('MicroVmFleet validation', () => {
  const make = (props: Partial<MicroVmFleetProps>) => {
    const { stack, image } = setup();
    return () => new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1, ...props });
  };

  test('fails on a negative desiredCount', () => {
    expect(make({ desiredCount: -1 })).toThrow(/desiredCount must be an integer from 0 to 10000, got -1/);
  });
  test('fails on a maximumDuration over 8 hours', () => {
    expect(make({ maximumDuration: Duration.hours(9) })).toThrow(/maximumDuration must be a whole number of seconds from 1 to 28800, got 9 hours/);
  });
  test('runHookPayload: a literal one is in no template, only in the staged object the fleet\'s role alone may read; a token stays inline with a warning', () => {
    const { app, stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1, runHookPayload: 'canary-payload' });
    const t = Template.fromStack(stack);
    expect(JSON.stringify(t.toJSON())).not.toContain('canary-payload');
    const [props] = Object.values(t.findResources(FLEET)).map((r) => r.Properties);
    expect(props.RunHookPayload).toBeUndefined();
    expect(stagedContent(app.outdir, props.StagedProperties)).toEqual({ RunHookPayload: 'canary-payload' });
    expect(handlerStatements(t, /^Fleet/)).toContainEqual({
      Action: 's3:GetObject',
      Effect: 'Allow',
      Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::cdk-hnb659fds-assets-123456789012-us-east-1/${props.StagedProperties.Key}`]] },
    });
    expect(JSON.stringify(handlerRole(t, /^Fleet/).Properties.Path)).toMatch(/\/staged-[0-9a-f]{16}\//);

    const other = setup('Other');
    const param = new CfnParameter(other.stack, 'Payload');
    new MicroVmFleet(other.stack, 'Fleet', { image: other.image, desiredCount: 1, runHookPayload: param.valueAsString });
    const t2 = Template.fromStack(other.stack);
    t2.hasResourceProperties(FLEET, { RunHookPayload: { Ref: 'Payload' }, StagedProperties: Match.absent() });
    expect(JSON.stringify(handlerStatements(t2, /^Fleet/))).not.toContain('s3:');
    Annotations.fromStack(other.stack).hasWarning('/Other/Fleet', Match.stringLikeRegexp('^runHookPayload holds a token.*runHookPayloadSecret'));
  });

  test('fails on a runHookPayload over 4096 bytes (counted in bytes, not characters)', () => {
    expect(make({ runHookPayload: 'é'.repeat(2049) })).toThrow(/runHookPayload must be at most 4096 bytes, got 4098/);
  });
  test('fails on both a payload and a payload secret', () => {
    const { stack, image } = setup();
    const secret = new secretsmanager.Secret(stack, 'S');
    expect(() => new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1, runHookPayload: 'x', runHookPayloadSecret: secret })).toThrow(/not both/);
  });
  test('fails on an idle policy that suspends before 60 seconds', () => {
    expect(make({ idlePolicy: { suspendAfterIdle: Duration.seconds(30), terminateAfterSuspended: Duration.seconds(0) } })).toThrow(/idlePolicy.suspendAfterIdle must be a whole number of seconds from 60 to 28800, got 30 seconds/);
  });
  test('fails on a launch rate of 0', () => {
    expect(make({ launchRate: 0 })).toThrow(/launchRate must be more than 0/);
  });
  test('fails on an egress connector passed as ingress', () => {
    expect(make({ ingress: [ManagedNetworkConnector.INTERNET_EGRESS] })).toThrow(/INTERNET_EGRESS is an EGRESS connector: pass it in egressConnectors/);
  });
  test('fails on more than 10 egress connectors', () => {
    const { stack, image } = setup();
    const ref = ManagedNetworkConnector.INTERNET_EGRESS.refIn(stack);
    expect(() => new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1, egressConnectors: Array(11).fill(ref) })).toThrow(/egressConnectors takes at most 10 item\(s\), got 11/);
  });
  test('fails on a rolling batch size of 0', () => {
    expect(() => FleetUpdatePolicy.rolling({ batchSize: 0 })).toThrow(/batchSize must be an integer from 1/);
  });
  test('fails on a timeout over 55 minutes', () => {
    expect(make({ timeout: Duration.minutes(58) })).toThrow(/timeout must be a whole number of seconds from 60 to 3300, got 58 minutes/);
  });
  test('fails on grantShell without SHELL_INGRESS', () => {
    const { stack, image } = setup();
    const fleet = new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1 });
    const role = new iam.Role(stack, 'R', { assumedBy: new iam.AccountRootPrincipal() });
    expect(() => fleet.grantShell(role)).toThrow(/does not have SHELL_INGRESS.*add ManagedNetworkConnector.SHELL_INGRESS/);
  });
});
