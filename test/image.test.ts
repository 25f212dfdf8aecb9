import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, CfnParameter, Duration, RemovalPolicy, Size, Stack, Tags, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BaseImage, MicroVmCode, MicroVmImage, MicroVmLogging, OsCapability } from '../src';
import { stagedContent } from './support/iam-s3';
import { handlerRole, handlerStatements } from './support/iam-template';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';

const code = () => MicroVmCode.fromAsset(HELLO_IMAGE_DIR);
/** An ARN as the stack renders it: the partition stays a reference. */
const arn = (rest: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, rest]] });

describe('MicroVmImage', () => {
  test('renders the custom resource with a stable name and the defaults', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code() });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::LambdaMicroVmImage', {
      Name: Match.stringLikeRegexp('^TestStack-Image-[A-F0-9]{8}$'),
      CodeUri: Match.stringLikeRegexp('^s3://cdk-.*\\.zip$'),
      BaseImageArn: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:', { Ref: 'AWS::Region' }, ':aws:microvm-image:al2023-1']] },
      BaseImageVersion: Match.absent(),
      BuildRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ImageBuildRole'), 'Arn'] },
      Logging: { LogGroup: { Ref: Match.stringLikeRegexp('ImageLogs') } },
      MemoryMiB: '2048',
      Architecture: 'ARM_64',
      BuildTimeoutSeconds: '3000',
      TerminateMicroVmsOnDelete: Match.absent(),
    });
    t.hasResource('Custom::LambdaMicroVmImage', { DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
    t.resourceCountIs('Custom::LambdaMicroVmImage', 1);
  });

  test('the name does not change when the code changes (only the code URI does)', () => {
    const render = (dir: string) => {
      const { stack } = newStack();
      new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(dir) });
      return Object.values(Template.fromStack(stack).findResources('Custom::LambdaMicroVmImage'))[0].Properties;
    };
    const changed = fs.mkdtempSync(path.join(os.tmpdir(), 'image-'));
    fs.cpSync(HELLO_IMAGE_DIR, changed, { recursive: true });
    fs.appendFileSync(path.join(changed, 'server.py'), '# changed\n');
    const before = render(HELLO_IMAGE_DIR);
    const after = render(changed);
    expect(after.CodeUri).not.toEqual(before.CodeUri);
    expect(after.Name).toEqual(before.Name);
  });

  test('three images in a stack share one provider (one onEvent/isComplete pair)', () => {
    const { stack } = newStack();
    const shared = code();
    new MicroVmImage(stack, 'A', { code: shared });
    new MicroVmImage(stack, 'B', { code: shared });
    new MicroVmImage(stack, 'C', { code: code() });
    const t = Template.fromStack(stack);
    t.resourceCountIs('Custom::LambdaMicroVmImage', 3);
    const handlers = t.findResources('AWS::Lambda::Function', { Properties: { Handler: Match.stringLikeRegexp('^index\\.(onEvent|isComplete)$') } });
    expect(Object.values(handlers).map((r: any) => r.Properties.Handler).sort()).toEqual(['index.isComplete', 'index.onEvent']);
    t.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
  });

  test('pins the provider settings', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code() });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.onEvent',
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 256,
      Timeout: 300,
      LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: Match.anyValue() }, ApplicationLogLevel: 'INFO', SystemLogLevel: 'WARN' },
    });
    // The framework's own functions log whole events at INFO (properties included): ERROR only.
    const framework = Object.values(t.findResources('AWS::Lambda::Function')).filter((f: any) => /framework/.test(f.Properties.Description ?? ''));
    expect(framework.length).toBe(3);
    for (const f of framework) expect((f as any).Properties.LoggingConfig).toMatchObject({ ApplicationLogLevel: 'ERROR' });
    t.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.isComplete', Runtime: 'nodejs24.x', Timeout: 300 });
    t.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: false },
    });
    // No endpoint override in a normal synth.
    const fns = t.findResources('AWS::Lambda::Function');
    expect(JSON.stringify(fns)).not.toContain('AWS_ENDPOINT_URL');
  });

  test('the local endpoint context option points the handlers at the emulator', () => {
    const app = new App({ context: { 'cdk-lambda-microvms:localEndpoint': 'http://127.0.0.1:4599' } });
    const stack = new Stack(app, 'TestStack', { env: { account: '123456789012', region: 'us-east-1' } });
    new MicroVmImage(stack, 'Image', { code: code() });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.onEvent',
      Environment: { Variables: Match.objectLike({ AWS_ENDPOINT_URL_LAMBDA_MICROVMS: 'http://127.0.0.1:4599', AWS_ENDPOINT_URL_LAMBDA_CORE: 'http://127.0.0.1:4599' }) },
    });
  });

  test('renders every configurable property', () => {
    const { app, stack } = newStack();
    const logGroup = new logs.LogGroup(stack, 'Group');
    const connector = lambda.NetworkConnector.fromNetworkConnectorArn(stack, 'Nc', 'arn:aws:lambda:us-east-1:123456789012:network-connector:nc-0123456789abcdef0');
    const image = new MicroVmImage(stack, 'Image', {
      code: code(),
      imageName: 'my-image',
      description: 'test image',
      baseImage: BaseImage.managed('al2023-1', '1'),
      logging: MicroVmLogging.cloudWatch(logGroup, 'builds'),
      memory: Size.gibibytes(4),
      osCapabilities: [OsCapability.ALL],
      environment: { STAGE: 'test' },
      hooks: { port: 9000, ready: {}, validate: { timeout: Duration.minutes(2) }, run: { timeout: Duration.seconds(10) }, terminate: {} },
      egressConnectors: [connector],
      tags: { team: 'a' },
      buildTimeout: Duration.minutes(20),
      terminateMicroVmsOnDelete: true,
    });
    image.addEnvironment('EXTRA', '1');
    Tags.of(stack).add('costcenter', '42');
    const t = Template.fromStack(stack);
    // The literal environment is staged as an asset object (added variables included), not in the template.
    const [props] = Object.values(t.findResources('Custom::LambdaMicroVmImage')).map((r) => r.Properties);
    expect(stagedContent(app.outdir, props.StagedProperties)).toEqual({ Environment: { STAGE: 'test', EXTRA: '1' } });
    t.hasResourceProperties('Custom::LambdaMicroVmImage', {
      Name: 'my-image',
      Description: 'test image',
      BaseImageVersion: '1',
      Logging: { LogGroup: { Ref: Match.stringLikeRegexp('Group') }, LogStream: 'builds' },
      MemoryMiB: '4096',
      OsCapabilities: ['ALL'],
      Environment: Match.absent(),
      StagedProperties: { Bucket: 'cdk-hnb659fds-assets-123456789012-us-east-1', Key: Match.stringLikeRegexp('^[0-9a-f]{64}\\.json$') },
      Hooks: { Port: '9000', Ready: { TimeoutSeconds: '30' }, Validate: { TimeoutSeconds: '120' }, Run: { TimeoutSeconds: '10' }, Terminate: { TimeoutSeconds: '1' } },
      EgressConnectors: ['arn:aws:lambda:us-east-1:123456789012:network-connector:nc-0123456789abcdef0'],
      Tags: { team: 'a', costcenter: '42' },
      BuildTimeoutSeconds: '1200',
      TerminateMicroVmsOnDelete: 'true',
    });
  });

  test('environment: literal values are in no template, only in the staged object its handler role alone may read; tokens stay inline with a warning', () => {
    const { app, stack } = newStack();
    const param = new CfnParameter(stack, 'Mode');
    const image = new MicroVmImage(stack, 'Image', { code: code(), imageName: 'env-image', environment: { SECRETISH: 'canary-value-1', MODE: param.valueAsString } });
    image.addEnvironment('LATER', 'canary-value-2');
    const t = Template.fromStack(stack);
    expect(JSON.stringify(t.toJSON())).not.toMatch(/canary-value/);
    const [props] = Object.values(t.findResources('Custom::LambdaMicroVmImage')).map((r) => r.Properties);
    expect(props.Environment).toEqual({ MODE: { Ref: 'Mode' } });
    expect(stagedContent(app.outdir, props.StagedProperties)).toEqual({ Environment: { SECRETISH: 'canary-value-1', LATER: 'canary-value-2' } });
    const role = handlerRole(t, /^Image/);
    expect(role.Properties.Path).toMatch(/^\/cdk-lambda-microvms\/[0-9a-f]{12}\/image\/env-image\/staged-[0-9a-f]{16}\/$/);
    expect(handlerStatements(t, /^Image/)).toContainEqual({
      Action: 's3:GetObject',
      Effect: 'Allow',
      Resource: arn(`:s3:::cdk-hnb659fds-assets-123456789012-us-east-1/${props.StagedProperties.Key}`),
    });
    Annotations.fromStack(stack).hasWarning('/TestStack/Image', Match.stringLikeRegexp('^environment \\(MODE\\) holds a token.*execution history'));
    expect(() => image.addEnvironment('TOO_LATE', 'x')).toThrow(/staged already, at synthesis: add variables before `cdk synth`/);
  });

  test('environment: a new value is a new object and a new handler role path; the same values, the same', () => {
    const synthRole = (value: string) => {
      const { stack } = newStack();
      new MicroVmImage(stack, 'Image', { code: code(), imageName: 'env-image', environment: { A: value } });
      const t = Template.fromStack(stack);
      const [props] = Object.values(t.findResources('Custom::LambdaMicroVmImage')).map((r) => r.Properties);
      return { key: props.StagedProperties.Key, path: handlerRole(t, /^Image/).Properties.Path };
    };
    const [one, again, two] = [synthRole('1'), synthRole('1'), synthRole('2')];
    expect(again).toEqual(one);
    expect(two.key).not.toEqual(one.key);
    expect(two.path).not.toEqual(one.path);
  });

  test('no environment: nothing staged, no S3 permission', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code(), imageName: 'plain' });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::LambdaMicroVmImage', { Environment: Match.absent(), StagedProperties: Match.absent() });
    expect(JSON.stringify(handlerStatements(t, /^Image/))).not.toContain('s3:');
    expect(handlerRole(t, /^Image/).Properties.Path).toMatch(/\/image\/plain\/$/);
  });

  test('logging disabled creates no log group and no log permissions', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code(), logging: MicroVmLogging.disabled() });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::LambdaMicroVmImage', { Logging: { Disabled: 'true' } });
    const buildPolicies = t.findResources('AWS::IAM::Policy', { Properties: { PolicyName: Match.stringLikeRegexp('ImageBuildRole') } });
    expect(JSON.stringify(buildPolicies)).not.toContain('logs:');
  });

  test('the build role trusts the Lambda service for this image only, reads only the code object and writes only its log group', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code(), imageName: 'img' });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'sts:AssumeRole',
            Principal: { Service: 'lambda.amazonaws.com' },
            Condition: {
              StringEquals: { 'aws:SourceAccount': '123456789012' },
              ArnLike: { 'aws:SourceArn': [arn(':lambda:us-east-1:123456789012:microvm-image:img'), arn(':lambda:us-east-1:123456789012:microvm-image:img:*')] },
            },
          }),
          Match.objectLike({ Action: 'sts:TagSession', Principal: { Service: 'lambda.amazonaws.com' } }),
        ]),
      },
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyName: Match.stringLikeRegexp('ImageBuildRole'),
      PolicyDocument: {
        Statement: [
          {
            Action: 's3:GetObject',
            Effect: 'Allow',
            Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, Match.stringLikeRegexp(':::cdk-.*-assets-123456789012-us-east-1/[0-9a-f]{64}\\.zip$')]] },
          },
          {
            Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
            Effect: 'Allow',
            Resource: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('ImageLogs'), 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [Match.stringLikeRegexp('ImageLogs'), 'Arn'] }, ':log-stream:*']] }],
          },
        ],
      },
    });
  });

  test('the provider may manage exactly this image and pass exactly its build role', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code(), imageName: 'img' });
    const t = Template.fromStack(stack);
    const image = arn(':lambda:us-east-1:123456789012:microvm-image:img');
    const versions = arn(':lambda:us-east-1:123456789012:microvm-image:img:*');
    expect(handlerStatements(t, /^Image/)).toEqual([
      expect.objectContaining({ Action: expect.arrayContaining(['lambda:UpdateMicrovmImage', 'lambda:DeleteMicrovmImage']), Resource: [image, versions] }),
      expect.objectContaining({ Action: ['lambda:CreateMicrovmImage', 'lambda:ListMicrovms', 'lambda:ListMicrovmImages', 'lambda:ListManagedMicrovmImages', 'lambda:ListManagedMicrovmImageVersions'], Resource: '*' }),
      expect.objectContaining({
        Action: 'iam:PassRole',
        Resource: { 'Fn::GetAtt': [expect.stringMatching(/^ImageBuildRole/), 'Arn'] },
        Condition: { StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
      }),
    ]);
    // The custom resource names its own role, which trusts exactly the provider role and lives under
    // a path made of the image name: a rename makes a new role and keeps the old one until cleanup.
    const cr = Object.values(t.findResources('Custom::LambdaMicroVmImage'))[0] as any;
    expect(cr.Properties.HandlerRoleArn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^ImageHandlerRole/), 'Arn'] });
    const role = handlerRole(t, /^Image/);
    expect(role.Properties.Path).toMatch(/^\/cdk-lambda-microvms\/[0-9a-f]{12}\/image\/img\/$/);
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: { 'Fn::GetAtt': [expect.stringMatching(/^cdklambdamicrovmsProviderRole/), 'Arn'] } } },
    ]);
  });

  test('a user-supplied build role gets no statements from the library', () => {
    const { stack } = newStack();
    const role = new iam.Role(stack, 'Mine', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    new MicroVmImage(stack, 'Image', { code: code(), buildRole: role });
    const t = Template.fromStack(stack);
    const policies = t.findResources('AWS::IAM::Policy');
    for (const p of Object.values(policies) as any[]) {
      expect(JSON.stringify(p.Properties.Roles)).not.toContain('Mine');
    }
  });

  test('code from a bucket grants exactly that object (and its versions when pinned)', () => {
    const { stack } = newStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'B', 'my-bucket');
    new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromBucket(bucket, 'app/image.zip', 'v123') });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::LambdaMicroVmImage', { CodeUri: 's3://my-bucket/app/image.zip', CodeObjectVersion: 'v123' });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: ['s3:GetObject', 's3:GetObjectVersion'], Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::my-bucket/app/image.zip']] } })]) },
    });
  });

  test('RETAIN is honoured', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code(), removalPolicy: RemovalPolicy.RETAIN });
    Template.fromStack(stack).hasResource('Custom::LambdaMicroVmImage', { DeletionPolicy: 'Retain' });
  });

  test('grantRun: RunMicrovm on the image, PassNetworkConnector on the managed and used connectors, PassRole on exactly the execution role', () => {
    const { stack } = newStack();
    const connector = lambda.NetworkConnector.fromNetworkConnectorArn(stack, 'Nc', 'arn:aws:lambda:us-east-1:123456789012:network-connector:nc-1');
    const image = new MicroVmImage(stack, 'Image', { code: code(), imageName: 'img', egressConnectors: [connector] });
    const runner = new iam.Role(stack, 'Runner', { assumedBy: new iam.AccountRootPrincipal() });
    const execution = new iam.Role(stack, 'Exec', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    image.grantRun(runner, execution);
    image.grantRead(runner);
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('Runner') }],
      PolicyDocument: {
        Statement: [
          { Action: 'lambda:RunMicrovm', Effect: 'Allow', Resource: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^Image'), 'ImageArn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^Image'), 'ImageArn'] }, ':*']] }] },
          {
            Action: 'lambda:PassNetworkConnector',
            Effect: 'Allow',
            // The service's defaults and the image's own: never SHELL_INGRESS.
            Resource: [
              arn(':lambda:us-east-1:aws:network-connector:aws-network-connector:HTTP_INGRESS'),
              arn(':lambda:us-east-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS'),
              'arn:aws:lambda:us-east-1:123456789012:network-connector:nc-1',
            ],
          },
          { Action: 'iam:PassRole', Effect: 'Allow', Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('Exec'), 'Arn'] }, Condition: { StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } } },
          Match.objectLike({ Action: Match.arrayWith(['lambda:GetMicrovmImage', 'lambda:ListMicrovmImageVersions']) }),
        ],
      },
    });
  });

  test('imports by name, ARN and attributes', () => {
    const { stack } = newStack();
    const byName = MicroVmImage.fromImageName(stack, 'ByName', 'other');
    expect(stack.resolve(byName.imageArn)).toEqual(arn(':lambda:us-east-1:123456789012:microvm-image:other'));
    const byArn = MicroVmImage.fromImageArn(stack, 'ByArn', 'arn:aws:lambda:us-east-1:123456789012:microvm-image:third');
    expect(byArn.imageName).toEqual('third');
    expect(byArn.microvmImageRef.imageArn).toEqual(byArn.imageArn);
    const role = new iam.Role(stack, 'R', { assumedBy: new iam.AccountRootPrincipal() });
    byArn.grantRun(role);
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'lambda:RunMicrovm', Resource: ['arn:aws:lambda:us-east-1:123456789012:microvm-image:third', 'arn:aws:lambda:us-east-1:123456789012:microvm-image:third:*'] })]) },
    });
  });

  test('warns when runtime hooks have no ready hook', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code(), hooks: { port: 9000, run: {} } });
    Annotations.fromStack(stack).hasWarning('/TestStack/Image', Match.stringLikeRegexp('ready build hook'));
  });

  test('snapshot', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code(), imageName: 'snapshot-image', hooks: { port: 9000, ready: {} }, environment: { A: 'b' } });
    expect(Template.fromStack(stack).toJSON()).toMatchSnapshot();
  });

  test('cdk-nag AwsSolutions: no unsuppressed findings', () => {
    const { app, stack } = newStack('NagStack');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const image = new MicroVmImage(stack, 'Image', { code: code() });
    const runner = new iam.Role(stack, 'Runner', { assumedBy: new iam.AccountRootPrincipal() });
    image.grantRun(runner);
    // The user's own role: grants on an image include its versions and the AWS-managed connectors.
    Validations.of(runner).acknowledge(
      { id: 'AwsSolutions-IAM5[Resource::<Image9D742C96.ImageArn>:*]', reason: 'grantRun: <image arn>:* are the image\'s versions' },
      { id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:us-east-1:aws:network-connector:aws-network-connector:*]', reason: 'grantRun: the AWS-managed connectors every RunMicrovm passes' },
    );
    app.synth();
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
    expect(warnings.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
  });
});

describe('MicroVmImage validation', () => {
  const make = (props: Partial<ConstructorParameters<typeof MicroVmImage>[2]>) => {
    const { stack } = newStack();
    return () => new MicroVmImage(stack, 'Image', { code: code(), ...props });
  };

  test('fails on a name with invalid characters', () => {
    expect(make({ imageName: 'my image!' })).toThrow(/imageName must be 1 to 64 characters matching .*got 'my image!'.*letters, digits, hyphens and underscores/);
  });
  test('fails on a name longer than 64 characters', () => {
    expect(make({ imageName: 'a'.repeat(65) })).toThrow(/imageName must be 1 to 64 characters.*\(65 characters\)/);
  });
  test('fails on a memory size that is not a service tier', () => {
    expect(make({ memory: Size.mebibytes(3000) })).toThrow(/memory \(MiB\) must be one of 512, 1024, 2048, 4096, 8192, got 3000/);
  });
  test('fails on more than 50 environment variables', () => {
    const env: Record<string, string> = {};
    for (let i = 0; i < 51; i++) env[`V${i}`] = 'x';
    expect(make({ environment: env })).toThrow(/environment takes at most 50 item\(s\), got 51/);
  });
  test('fails on an environment value over 4096 characters', () => {
    expect(make({ environment: { BIG: 'x'.repeat(4097) } })).toThrow(/environment variable BIG must be 0 to 4096 characters/);
  });
  test('fails on an environment name with whitespace', () => {
    expect(make({ environment: { 'A B': 'x' } })).toThrow(/environment variable name must be 1 to 256 characters.*'A B'/);
  });
  test('fails on addEnvironment beyond 50 variables', () => {
    const env: Record<string, string> = {};
    for (let i = 0; i < 50; i++) env[`V${i}`] = 'x';
    const { stack } = newStack();
    const image = new MicroVmImage(stack, 'Image', { code: code(), environment: env });
    expect(() => image.addEnvironment('ONE_MORE', 'x')).toThrow(/at most 50 item\(s\), got 51/);
  });
  test('fails on a hook port out of range', () => {
    expect(make({ hooks: { port: 70000, ready: {} } })).toThrow(/hooks.port must be an integer from 1 to 65535, got 70000/);
  });
  test('fails on a runtime hook timeout over 60 seconds', () => {
    expect(make({ hooks: { port: 9000, ready: {}, run: { timeout: Duration.seconds(61) } } })).toThrow(/hooks.run.timeout must be a whole number of seconds from 1 to 60, got 1 minute 1 second \(61 seconds\): runtime hooks wait/);
  });
  test('fails on a build hook timeout over one hour', () => {
    expect(make({ hooks: { port: 9000, ready: { timeout: Duration.hours(2) } } })).toThrow(/hooks.ready.timeout must be a whole number of seconds from 1 to 3600, got 2 hours \(7200 seconds\): build hooks wait/);
  });
  test('fails on more than one egress connector', () => {
    const { stack } = newStack();
    const a = lambda.NetworkConnector.fromNetworkConnectorArn(stack, 'A', 'arn:aws:lambda:us-east-1:123456789012:network-connector:nc-a');
    const b = lambda.NetworkConnector.fromNetworkConnectorArn(stack, 'B', 'arn:aws:lambda:us-east-1:123456789012:network-connector:nc-b');
    expect(() => new MicroVmImage(stack, 'Image', { code: code(), egressConnectors: [a, b] })).toThrow(/egressConnectors takes at most 1 item\(s\), got 2/);
  });
  test('fails on a build timeout beyond CloudFormation\'s hour', () => {
    expect(make({ buildTimeout: Duration.minutes(58) })).toThrow(/buildTimeout must be from 1 to 55 minutes, got 58 minutes/);
  });
  test('fails on a build timeout under a minute', () => {
    expect(make({ buildTimeout: Duration.seconds(30) })).toThrow(/buildTimeout must be from 1 to 55 minutes/);
  });
  test('fails on an asset directory without a Dockerfile', () => {
    expect(() => MicroVmCode.fromAsset(path.join(__dirname, 'fixtures', 'no-dockerfile'))).toThrow(/has no Dockerfile at its root/);
  });
  test('fails on a bucket key that is not a zip', () => {
    const { stack } = newStack();
    expect(() => MicroVmCode.fromBucket(s3.Bucket.fromBucketName(stack, 'B', 'my-bucket'), 'app.tar')).toThrow(/key must name a .zip object, got 'app.tar'/);
  });
  test('fails on a base image ARN that is not a MicroVM image', () => {
    expect(() => BaseImage.fromArn('arn:aws:lambda:us-east-1:aws:function:x')).toThrow(/is not a MicroVM image ARN/);
  });
  test('fails on a malformed local endpoint', () => {
    const app = new App({ context: { 'cdk-lambda-microvms:localEndpoint': 'localhost:4599' } });
    const stack = new Stack(app, 'TestStack', { env: { account: '123456789012', region: 'us-east-1' } });
    expect(() => new MicroVmImage(stack, 'Image', { code: code() })).toThrow(/must be an http\(s\) URL/);
  });
  test('skips unresolved tokens', () => {
    const { stack } = newStack();
    const name = new CfnParameter(stack, 'Name').valueAsString;
    expect(() => new MicroVmImage(stack, 'Image', { code: code(), imageName: name })).not.toThrow();
  });
});
