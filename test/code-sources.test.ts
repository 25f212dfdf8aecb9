import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecr_assets from 'aws-cdk-lib/aws-ecr-assets';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BaseImage, MicroVmCode, MicroVmImage } from '../src';
import { handlerStatements } from './support/iam-template';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const PULL_ACTIONS = ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'];

/** The Dockerfile of the image's code asset, read from the synthesized cloud assembly. */
function dockerfileOf(app: App, stack: Stack): string {
  const assembly = app.synth();
  const props = Object.values(Template.fromStack(stack).findResources('Custom::LambdaMicroVmImage'))[0].Properties;
  const key = String(props.CodeUri).split('/').pop()!.replace(/\.zip$/, '');
  return fs.readFileSync(path.join(assembly.directory, `asset.${key}`, 'Dockerfile'), 'utf8');
}

/** The build role's policy statements. */
function buildRoleStatements(stack: Stack): any[] {
  const policies = Template.fromStack(stack).findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: Match.stringLikeRegexp('ImageBuildRole') }] },
  });
  return Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

describe('MicroVmCode.fromEcrImage', () => {
  test('a thin zip whose Dockerfile is FROM the ECR image, and exactly the pull rights on that repository', () => {
    const { app, stack } = newStack();
    const repo = ecr.Repository.fromRepositoryName(stack, 'Repo', 'team/app');
    new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromEcrImage(repo, 'v1.2.0') });
    expect(dockerfileOf(app, stack)).toBe('FROM 123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1.2.0\n');
    const statements = buildRoleStatements(stack);
    expect(statements).toEqual(expect.arrayContaining([
      expect.objectContaining({ Action: PULL_ACTIONS, Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ecr:us-east-1:123456789012:repository/team/app']] } }),
      expect.objectContaining({ Action: 'ecr:GetAuthorizationToken', Resource: '*' }),
      expect.objectContaining({ Action: 's3:GetObject' }),
    ]));
    // Nothing else on `*`.
    expect(statements.filter((s) => s.Resource === '*').map((s) => s.Action)).toEqual(['ecr:GetAuthorizationToken']);
  });

  test('a digest pins the content with @sha256:', () => {
    const { app, stack } = newStack();
    const repo = ecr.Repository.fromRepositoryName(stack, 'Repo', 'pinned');
    new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromEcrImage(repo, DIGEST) });
    expect(dockerfileOf(app, stack)).toBe(`FROM 123456789012.dkr.ecr.us-east-1.amazonaws.com/pinned@${DIGEST}\n`);
  });

  test('a new tag is a new code object (the image rebuilds); the same tag keeps it', () => {
    const uri = (tag: string) => {
      const { stack } = newStack();
      new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromEcrImage(ecr.Repository.fromRepositoryName(stack, 'Repo', 'app'), tag) });
      return Object.values(Template.fromStack(stack).findResources('Custom::LambdaMicroVmImage'))[0].Properties.CodeUri;
    };
    expect(uri('v1')).toEqual(uri('v1'));
    expect(uri('v2')).not.toEqual(uri('v1'));
  });

  test('cdk-nag AwsSolutions: the GetAuthorizationToken wildcard is acknowledged with its reason', () => {
    const { app, stack } = newStack('NagStack');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromEcrImage(ecr.Repository.fromRepositoryName(stack, 'Repo', 'app'), 'v1') });
    app.synth();
    const findings = [
      ...Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ...Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
    ];
    expect(findings.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
  });

  test('fails on a tag that is a repository URI', () => {
    const { stack } = newStack();
    const repo = ecr.Repository.fromRepositoryName(stack, 'Repo', 'app');
    expect(() => MicroVmCode.fromEcrImage(repo, '123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1'))
      .toThrow(/tagOrDigest must be a tag .* or a digest sha256:<64 hex digits>, got '123456789012.dkr.ecr.us-east-1.amazonaws.com\/app:v1': pass the tag or digest only/);
  });

  test('fails when the repository URI is unknown at synth (environment-agnostic stack)', () => {
    const stack = new Stack(new App(), 'Agnostic');
    const repo = ecr.Repository.fromRepositoryName(stack, 'Repo', 'app');
    expect(() => new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromEcrImage(repo, 'v1') }))
      .toThrow(/the Dockerfile \(FROM <repository URI>\) is written at synth, but the account, Region of repository Agnostic\/Repo is only known at deploy time: give the stack an explicit env/);
    const { stack: other } = newStack('Other');
    const created = new ecr.Repository(other, 'Repo');
    expect(() => new MicroVmImage(other, 'Image', { code: MicroVmCode.fromEcrImage(created, 'v1') }))
      .toThrow(/the repository name of repository Other\/Repo is only known at deploy time: .*import the repository by name \(ecr.Repository.fromRepositoryName/);
  });

  test('fails on a repository in another account', () => {
    const { stack } = newStack();
    const repo = ecr.Repository.fromRepositoryAttributes(stack, 'Repo', {
      repositoryName: 'app',
      repositoryArn: 'arn:aws:ecr:us-east-1:210987654321:repository/app',
    });
    expect(() => new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromEcrImage(repo, 'v1') }))
      .toThrow(/repository app is in account 210987654321, the image in 123456789012: .*replicate the image into this account/);
  });
});

describe('MicroVmCode.fromDockerImageAsset', () => {
  test('FROM the asset in the bootstrap repository, with pull rights on exactly that repository', () => {
    const { app, stack } = newStack();
    const asset = new ecr_assets.DockerImageAsset(stack, 'Asset', { directory: HELLO_IMAGE_DIR, platform: ecr_assets.Platform.LINUX_ARM64 });
    new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromDockerImageAsset(asset) });
    expect(dockerfileOf(app, stack)).toBe(`FROM 123456789012.dkr.ecr.us-east-1.amazonaws.com/${asset.repository.repositoryName}:${asset.imageTag}\n`);
    expect(buildRoleStatements(stack)).toEqual(expect.arrayContaining([
      expect.objectContaining({
        Action: PULL_ACTIONS,
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ecr:us-east-1:123456789012:repository/${asset.repository.repositoryName}`]] },
      }),
      expect.objectContaining({ Action: 'ecr:GetAuthorizationToken', Resource: '*' }),
    ]));
  });
});

describe('MicroVmImage.grantPull', () => {
  test('a private ECR FROM: the build role may pull exactly that repository', () => {
    const { stack } = newStack();
    const image = new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR) });
    const repo = new ecr.Repository(stack, 'Base');
    const grant = image.grantPull(repo);
    expect(grant.success).toBe(true);
    expect(buildRoleStatements(stack)).toEqual(expect.arrayContaining([
      expect.objectContaining({ Action: PULL_ACTIONS, Resource: { 'Fn::GetAtt': [expect.stringMatching(/^Base/), 'Arn'] } }),
      expect.objectContaining({ Action: 'ecr:GetAuthorizationToken', Resource: '*' }),
    ]));
  });
});

describe('BaseImage.fromImage', () => {
  test('an image of the app: built after it, on the version its current deploy produced', () => {
    const { stack } = newStack();
    const base = new MicroVmImage(stack, 'Base', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR) });
    new MicroVmImage(stack, 'App', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), baseImage: BaseImage.fromImage(base) });
    const t = Template.fromStack(stack);
    const [baseId] = Object.keys(t.findResources('Custom::LambdaMicroVmImage', { Properties: { Name: Match.stringLikeRegexp('Base') } }));
    t.hasResourceProperties('Custom::LambdaMicroVmImage', {
      Name: Match.stringLikeRegexp('-App-'),
      BaseImageArn: { 'Fn::GetAtt': [baseId, 'ImageArn'] },
      BaseImageVersion: { 'Fn::GetAtt': [baseId, 'ImageVersion'] },
    });
  });

  test('a pinned version, and an imported image on its latest version', () => {
    const { stack } = newStack();
    const imported = MicroVmImage.fromImageName(stack, 'Imported', 'platform');
    new MicroVmImage(stack, 'Pinned', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), baseImage: BaseImage.fromImage(imported, '3.0') });
    new MicroVmImage(stack, 'Latest', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), baseImage: BaseImage.fromImage(imported) });
    const t = Template.fromStack(stack);
    const importedArn = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:us-east-1:123456789012:microvm-image:platform']] };
    t.hasResourceProperties('Custom::LambdaMicroVmImage', { Name: Match.stringLikeRegexp('-Pinned-'), BaseImageArn: importedArn, BaseImageVersion: '3.0' });
    t.hasResourceProperties('Custom::LambdaMicroVmImage', { Name: Match.stringLikeRegexp('-Latest-'), BaseImageArn: importedArn, BaseImageVersion: Match.absent() });
  });
});

describe('MicroVmImage adoptExisting', () => {
  test('sends AdoptExisting, and the provider may list images and managed base images (no IAM resource type: *)', () => {
    const { stack } = newStack();
    new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: 'legacy', adoptExisting: true });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('Custom::LambdaMicroVmImage', { Name: 'legacy', AdoptExisting: 'true' });
    // The image's own handler role (one role per resource) holds the statement.
    expect(handlerStatements(t, /^Image/)).toContainEqual(expect.objectContaining({
      Action: expect.arrayContaining(['lambda:ListMicrovmImages', 'lambda:ListManagedMicrovmImages', 'lambda:ListManagedMicrovmImageVersions']),
      Resource: '*',
    }));
  });

  test('fails without imageName', () => {
    const { stack } = newStack();
    expect(() => new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), adoptExisting: true }))
      .toThrow(/adoptExisting: true needs imageName, the name of the image to take over/);
  });
});
