import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { MicroVmCode, MicroVmImage, MicroVmImageVersion, MicroVmImageVersionStatus } from '../src';
import { handlerStatements } from './support/iam-template';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';

const code = () => MicroVmCode.fromAsset(HELLO_IMAGE_DIR);
const IMAGE_ARN = 'arn:aws:lambda:us-east-1:123456789012:microvm-image:other';
const imageArnAtt = { 'Fn::GetAtt': [Match.stringLikeRegexp('^Image'), 'ImageArn'] };

describe('MicroVmImageVersion', () => {
  test('defaults to the version the image deploy produced, ACTIVE and retained', () => {
    const { stack } = newStack();
    const image = new MicroVmImage(stack, 'Image', { code: code() });
    new MicroVmImageVersion(stack, 'Version', { image });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::LambdaMicroVmImageVersion', {
      ImageArn: imageArnAtt,
      ImageVersion: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Image'), 'ImageVersion'] },
      Status: 'ACTIVE',
      RemovalPolicy: 'retain',
    });
    // The pin must be released even when the version is retained: CloudFormation always sends Delete.
    t.hasResource('Custom::LambdaMicroVmImageVersion', { DeletionPolicy: 'Delete', UpdateReplacePolicy: 'Delete' });
    // The stack's one provider serves the image and its version.
    const fns = Object.values(t.findResources('AWS::Lambda::Function', { Properties: { Handler: 'index.onEvent' } })) as any[];
    expect(fns).toHaveLength(1);
  });

  test('pins an explicit version, INACTIVE, DESTROY', () => {
    const { stack } = newStack();
    const image = new MicroVmImage(stack, 'Image', { code: code() });
    new MicroVmImageVersion(stack, 'Pinned', {
      image, imageVersion: '3.0', status: MicroVmImageVersionStatus.INACTIVE, removalPolicy: RemovalPolicy.DESTROY,
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::LambdaMicroVmImageVersion', { ImageVersion: '3.0', Status: 'INACTIVE', RemovalPolicy: 'destroy' });
    t.hasResource('Custom::LambdaMicroVmImageVersion', { DeletionPolicy: 'Delete' });
  });

  test('exposes the attributes', () => {
    const { stack } = newStack();
    const image = new MicroVmImage(stack, 'Image', { code: code() });
    const v = new MicroVmImageVersion(stack, 'Version', { image });
    const resolved = (x: unknown) => stack.resolve(x);
    expect(resolved(v.imageVersion)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Version/), 'ImageVersion'] });
    expect(resolved(v.imageVersionArn)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Version/), 'ImageVersionArn'] });
    expect(resolved(v.versionState)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Version/), 'VersionState'] });
    expect(resolved(v.versionStatus)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Version/), 'VersionStatus'] });
    expect(resolved(v.buildIds)).toEqual({ 'Fn::Split': [',', { 'Fn::GetAtt': [expect.stringMatching(/^Version/), 'BuildIds'] }] });
    expect(resolved(v.memorySnapshotSizeBytes)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Version/), 'MemorySnapshotSizeBytes'] });
    expect(resolved(v.diskSnapshotSizeBytes)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Version/), 'DiskSnapshotSizeBytes'] });
    expect(resolved(v.codeInstallSizeBytes)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Version/), 'CodeInstallSizeBytes'] });
    expect(v.image).toBe(image);
  });

  test('image.currentVersion is one lazily created child, pinned to the image\'s imageVersion', () => {
    const { stack } = newStack();
    const image = new MicroVmImage(stack, 'Image', { code: code() });
    expect(image.node.tryFindChild('CurrentVersion')).toBeUndefined();
    const v = image.currentVersion;
    expect(image.currentVersion).toBe(v);
    expect(v.node.path).toBe('TestStack/Image/CurrentVersion');
    const t = Template.fromStack(stack);
    t.resourceCountIs('Custom::LambdaMicroVmImageVersion', 1);
    t.hasResourceProperties('Custom::LambdaMicroVmImageVersion', {
      ImageArn: imageArnAtt,
      ImageVersion: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Image'), 'ImageVersion'] },
      Status: 'ACTIVE',
      RemovalPolicy: 'retain',
    });
  });

  test('the provider may read, set the status of and tag exactly this image; delete only with DESTROY', () => {
    const { stack } = newStack();
    const image = MicroVmImage.fromImageArn(stack, 'Image', IMAGE_ARN);
    new MicroVmImageVersion(stack, 'Kept', { image, imageVersion: '1.0' });
    new MicroVmImageVersion(stack, 'Gone', { image, imageVersion: '2.0', removalPolicy: RemovalPolicy.DESTROY });
    const t = Template.fromStack(stack);
    const kept = handlerStatements(t, /^Kept/);
    expect(kept).toEqual([
      {
        Action: ['lambda:GetMicrovmImageVersion', 'lambda:UpdateMicrovmImageVersion', 'lambda:ListMicrovmImageBuilds', 'lambda:GetMicrovmImageBuild', 'lambda:ListTags', 'lambda:TagResource', 'lambda:UntagResource'],
        Effect: 'Allow',
        Resource: [IMAGE_ARN, `${IMAGE_ARN}:*`],
      },
      { Action: 'lambda:ListMicrovms', Effect: 'Allow', Resource: '*' },
    ]);
    expect(handlerStatements(t, /^Gone/)[0].Action).toContain('lambda:DeleteMicrovmImageVersion');
    // Each resource names its own role.
    const crs = t.findResources('Custom::LambdaMicroVmImageVersion') as Record<string, any>;
    for (const [id, cr] of Object.entries(crs)) {
      expect(cr.Properties.HandlerRoleArn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(new RegExp(`^${id.replace(/[A-F0-9]{8}$/, '')}HandlerRole`)), 'Arn'] });
    }
    // One provider for both.
    t.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
  });

  test('keepVersions reaches the image and lets its provider list and delete versions', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code(), imageName: 'img', keepVersions: 5 });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::LambdaMicroVmImage', { KeepVersions: '5' });
    expect(handlerStatements(t, /^Image/)[0].Action).toEqual(expect.arrayContaining(['lambda:ListMicrovmImageVersions', 'lambda:DeleteMicrovmImageVersion']));
  });

  test('without keepVersions the image keeps every version and its provider cannot delete one', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: code() });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::LambdaMicroVmImage', { KeepVersions: Match.absent() });
    expect(JSON.stringify(handlerStatements(t, /^Image/))).not.toContain('DeleteMicrovmImageVersion');
  });

  test('grantRun on a version grants RunMicrovm on its image', () => {
    const { stack } = newStack();
    const image = MicroVmImage.fromImageArn(stack, 'Image', IMAGE_ARN);
    const v = MicroVmImageVersion.fromVersionAttributes(stack, 'V', { image, imageVersion: '4.0' });
    const runner = new iam.Role(stack, 'Runner', { assumedBy: new iam.AccountRootPrincipal() });
    const exec = new iam.Role(stack, 'Exec', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    const grant = v.grantRun(runner, exec);
    expect(grant.success).toBe(true);
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('Runner') }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          { Action: 'lambda:RunMicrovm', Effect: 'Allow', Resource: [IMAGE_ARN, `${IMAGE_ARN}:*`] },
          Match.objectLike({ Action: 'iam:PassRole', Resource: { 'Fn::GetAtt': [Match.stringLikeRegexp('Exec'), 'Arn'] } }),
        ]),
      },
    });
  });

  test('imports by attributes', () => {
    const { stack } = newStack();
    const image = MicroVmImage.fromImageArn(stack, 'Image', IMAGE_ARN);
    const v = MicroVmImageVersion.fromVersionAttributes(stack, 'V', { image, imageVersion: '4.0' });
    expect(v.imageVersion).toBe('4.0');
    expect(v.imageVersionArn).toBe(`${IMAGE_ARN}:4.0`);
    expect(v.image).toBe(image);
    expect(v.env.account).toBe('123456789012');
    expect(v.node.children).toHaveLength(0); // no resource, no provider
    expect(stack.node.tryFindChild('cdk-lambda-microvms.Provider')).toBeUndefined();
  });

  test('fails without imageVersion for an imported image', () => {
    const { stack } = newStack();
    const image = MicroVmImage.fromImageArn(stack, 'Image', IMAGE_ARN);
    expect(() => new MicroVmImageVersion(stack, 'V', { image })).toThrow(/imageVersion is required for an imported image: pass the version to adopt/);
  });

  test('fails with a blank or whitespace imageVersion', () => {
    const { stack } = newStack();
    const image = MicroVmImage.fromImageArn(stack, 'Image', IMAGE_ARN);
    expect(() => new MicroVmImageVersion(stack, 'A', { image, imageVersion: '' })).toThrow(/imageVersion must be 1 to 2048 characters .* got '' \(0 characters\)/);
    expect(() => new MicroVmImageVersion(stack, 'B', { image, imageVersion: '2 .0' })).toThrow(/imageVersion must be .* got '2 \.0'/);
    expect(() => MicroVmImageVersion.fromVersionAttributes(stack, 'C', { image, imageVersion: ' ' })).toThrow(/imageVersion must be/);
  });

  test('fails with a removal policy other than RETAIN or DESTROY', () => {
    const { stack } = newStack();
    const image = MicroVmImage.fromImageArn(stack, 'Image', IMAGE_ARN);
    expect(() => new MicroVmImageVersion(stack, 'V', { image, imageVersion: '1.0', removalPolicy: RemovalPolicy.SNAPSHOT }))
      .toThrow(/removalPolicy must be RemovalPolicy.RETAIN or RemovalPolicy.DESTROY, got snapshot/);
  });

  test('fails with keepVersions outside 1 to 50', () => {
    const { stack } = newStack();
    expect(() => new MicroVmImage(stack, 'A', { code: code(), keepVersions: 0 })).toThrow(/keepVersions must be an integer from 1 to 50, got 0/);
    expect(() => new MicroVmImage(stack, 'B', { code: code(), keepVersions: 51 })).toThrow(/keepVersions must be an integer from 1 to 50, got 51/);
    expect(() => new MicroVmImage(stack, 'C', { code: code(), keepVersions: 2.5 })).toThrow(/keepVersions must be an integer/);
  });

  test('snapshot', () => {
    const { stack } = newStack();
    const image = new MicroVmImage(stack, 'Image', { code: code(), imageName: 'snapshot-image', keepVersions: 3 });
    void image.currentVersion;
    new MicroVmImageVersion(stack, 'Pinned', { image, imageVersion: '1.0', status: MicroVmImageVersionStatus.INACTIVE, removalPolicy: RemovalPolicy.DESTROY });
    expect(Template.fromStack(stack).toJSON()).toMatchSnapshot();
  });

  test('cdk-nag AwsSolutions: no unsuppressed findings', () => {
    const { app, stack } = newStack('NagStack');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const image = new MicroVmImage(stack, 'Image', { code: code(), keepVersions: 10 });
    const pinned = new MicroVmImageVersion(stack, 'Pinned', { image, imageVersion: '1.0', removalPolicy: RemovalPolicy.DESTROY });
    const runner = new iam.Role(stack, 'Runner', { assumedBy: new iam.AccountRootPrincipal() });
    pinned.grantRun(runner);
    // The user's own role: a grant on a version is on its image, which includes the image's
    // version-qualified ARNs, and on the AWS-managed connectors every RunMicrovm passes.
    Validations.of(runner).acknowledge(
      { id: 'AwsSolutions-IAM5[Resource::<Image9D742C96.ImageArn>:*]', reason: 'grantRun: <image arn>:* are the image\'s versions' },
      { id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:us-east-1:aws:network-connector:aws-network-connector:*]', reason: 'grantRun: the AWS-managed connectors every RunMicrovm passes' },
    );
    void image.currentVersion;
    app.synth();
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
    expect(warnings.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
  });
});
