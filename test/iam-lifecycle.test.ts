import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetMicrovmImageCommand, GetMicrovmImageVersionCommand, LambdaMicrovmsClient, RunMicrovmCommand, TerminateMicrovmCommand } from '@aws-sdk/client-lambda-microvms';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { handlerEnv, HandlerEnv } from './support/handler-env';
import { IamChecker, ResolveContext, resolveIntrinsics, resourceProperties } from './support/iam-check';
import { inMemoryBucket, stagedObjects } from './support/iam-s3';
import { inMemoryTable } from './support/iam-table';
import { LifecycleDriver } from './support/lifecycle-driver';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';
import { ClientFactory, handlerFor, withoutHandlerRole } from '../lambda/provider/dispatch';
import { providerEntry } from '../lambda/provider/entry';
import { reconcilerSessionName } from '../lambda/shared/credentials';
import { LambdaCoreClient } from '../lambda/shared/lambda-core-client';
import { BaseImage, MicroVmCode, MicroVmFleet, MicroVmImage, MicroVmImageProps, MicroVmImageVersion, MicroVmImageVersionStatus, NetworkConnector } from '../src';
import { ResourceType } from '../src/private/wire';

/**
 * Lifecycle tests with IAM on: every call the handlers make (through the one provider's dispatch,
 * with the clients it builds from the resource's role session) is checked against the inline
 * policy the synthesized template gives that role at that moment of the deployment. A refused
 * call fails like on AWS; `checker.unauthorized()` lists calls that no role CloudFormation held
 * for the resource could make.
 */

let env: HandlerEnv;
let checker: IamChecker;
let tableItems: Map<string, Record<string, any>>;
/** `<resource type> <action>` of every grant of the handler roles of this file's templates, and of every call. */
const granted = new Set<string>();
const called = new Set<string>();
/** The asset bucket: what `cdk deploy` would have uploaded for the templates synthesized so far. */
const objects = new Map<string, string>();
/** The /run payload of every RunMicrovm a handler sent in the current test. */
let runPayloads: Array<string | undefined> = [];

function synth(build: (stack: Stack) => void): any {
  const { app, stack } = newStack();
  build(stack);
  const template = Template.fromStack(stack).toJSON();
  stagedObjects(app.outdir, objects);
  return template;
}

function logicalId(template: any, type: string, prefix: string): string {
  const ids = Object.entries<any>(template.Resources).filter(([id, r]) => r.Type === type && id.startsWith(prefix)).map(([id]) => id);
  if (ids.length !== 1) throw new Error(`${ids.length} ${type} resources start with ${prefix}`);
  return ids[0];
}

function context(atts: Record<string, string> = {}): ResolveContext {
  return { account: env.emu.account, region: env.emu.region, refs: {}, atts };
}

function deploy(template: any, atts: Record<string, string> = {}): Record<string, string> {
  const roles = checker.deployRoles(template, context(atts));
  for (const a of checker.grantedActions()) granted.add(a);
  return roles;
}

/** Waits pass on the emulator's clock, with a little real time so sent requests arrive in order. */
const emulatorClock = {
  now: () => env.clock.now(),
  sleep: async (ms: number) => { await new Promise((r) => setTimeout(r, Math.ceil(ms / 50))); env.clock.advance(ms); },
};

function driver<P extends object>(resourceType: string, logicalResourceId: string): LifecycleDriver<P> {
  const options = {
    assumeRole: checker.assumeRole,
    clients,
    clock: emulatorClock,
  };
  return new LifecycleDriver<P>({
    handler: {
      onEvent: (e) => handlerFor(e, options).onEvent(withoutHandlerRole(e)),
      isComplete: (e) => handlerFor(e, options).isComplete(withoutHandlerRole(e)),
    },
    resourceType,
    logicalResourceId,
    wait: env.wait,
  });
}

const microvmsClient = (credentials: AwsCredentialIdentityProvider, maxAttempts: number) =>
  new LambdaMicrovmsClient({ endpoint: env.emu.url, region: env.emu.region, credentials, maxAttempts });

const clients: ClientFactory = {
  microvms: (credentials) => checker.attach(microvmsClient(credentials, 3), 'lambda'),
  microvmsRun: (credentials) => {
    const client = checker.attach(microvmsClient(credentials, 1), 'lambda');
    client.middlewareStack.add((next) => async (args) => {
      runPayloads.push((args.input as { runHookPayload?: string }).runHookPayload);
      return next(args);
    }, { step: 'initialize', name: 'recordPayload' });
    return client;
  },
  lambdaCore: (credentials) =>
    checker.wrapLambdaCore(new LambdaCoreClient({ endpoint: env.emu.url, region: env.emu.region, credentials }), credentials),
  dynamo: (credentials) => checker.attach(inMemoryTable(new DynamoDBClient({ region: env.emu.region, credentials }), tableItems), 'dynamodb'),
  secrets: (credentials) => checker.attach(new SecretsManagerClient({ region: env.emu.region, credentials, endpoint: 'http://127.0.0.1:9' }), 'secretsmanager'),
  s3: (credentials) => checker.attach(inMemoryBucket(new S3Client({ region: env.emu.region, credentials }), objects), 's3'),
};

beforeEach(async () => {
  env = await handlerEnv();
  tableItems = new Map();
  runPayloads = [];
  checker = new IamChecker({
    account: env.emu.account,
    region: env.emu.region,
    imageOfMicrovm: (id) => (env.emu.snapshot().microvms as any[]).find((m) => m.microvmId === id)?.imageArn,
  });
});
afterEach(async () => {
  for (const a of checker.calledActions()) called.add(a);
  await env.emu.close();
});

const imageStack = (name: string, extra: Partial<MicroVmImageProps> = {}) => synth((stack) => {
  new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: name, keepVersions: 1, terminateMicroVmsOnDelete: true, ...extra });
});

/** The environment of the image's latest active version, as the service holds it. */
async function liveEnvironment(imageName: string): Promise<Record<string, string> | undefined> {
  const admin = microvmsClient(async () => ({ accessKeyId: 'test', secretAccessKey: 'test' }), 1);
  const image = await admin.send(new GetMicrovmImageCommand({ imageIdentifier: imageName }));
  const live = await admin.send(new GetMicrovmImageVersionCommand({ imageIdentifier: imageName, imageVersion: image.latestActiveImageVersion }));
  return live.environmentVariables;
}

describe('IAM-checked lifecycles', () => {
  test('image rename: the cleanup Delete of the old image runs with the old role, which still holds the old ARN', async () => {
    const t1 = imageStack('iam-a');
    const id = logicalId(t1, ResourceType.IMAGE, 'Image');
    const roles1 = deploy(t1);
    const d = driver<any>(ResourceType.IMAGE, id);
    expect(await d.create(resourceProperties(t1, id, context()))).toMatchObject({ status: 'SUCCESS' });

    // A rebuild with tags on a pinned base version: tags, the base image check, builds and pruning under the same role.
    const t1b = imageStack('iam-a', { environment: { STAGE: 'b' }, tags: { team: 'x' }, baseImage: BaseImage.managed('al2023-1', '1') });
    deploy(t1b);
    expect(await d.update(resourceProperties(t1b, id, context()))).toMatchObject({ status: 'SUCCESS', data: { ImageVersion: '2.0' } });

    // Another tag instead: the old one is removed, without a build.
    const t1c = imageStack('iam-a', { environment: { STAGE: 'b' }, tags: { owner: 'y' } });
    const roles1c = deploy(t1c);
    // The staged environment's hash is in the role's path: the role changed with it (t1b), not with the tags.
    expect(roles1c).not.toEqual(roles1);
    expect(await d.update(resourceProperties(t1c, id, context()))).toMatchObject({ status: 'SUCCESS', data: { ImageVersion: '2.0' } });
    expect(checker.calls.some((c) => c.action === 'lambda:UntagResource' && c.allowed)).toBe(true);

    const t2 = imageStack('iam-b', { environment: { STAGE: 'b' }, tags: { owner: 'y' } });
    const roles2 = deploy(t2);
    const [oldRole, newRole] = [Object.values(roles1c)[0], Object.values(roles2)[0]];
    expect(newRole).not.toEqual(oldRole); // a new path: CloudFormation replaces the role
    const r = await d.update(resourceProperties(t2, id, context()));
    expect(r).toMatchObject({ status: 'SUCCESS', physicalResourceId: expect.stringMatching(/:microvm-image:iam-b$/) });
    checker.deleteRole(oldRole); // after the cleanup
    const deletes = checker.calls.filter((c) => c.action === 'lambda:DeleteMicrovmImage');
    expect(deletes).toEqual([expect.objectContaining({ role: oldRole, resource: expect.stringMatching(/:microvm-image:iam-a$/), allowed: true })]);

    // A MicroVM someone runs from the image: terminateMicroVmsOnDelete terminates it.
    await env.client.send(new RunMicrovmCommand({ imageIdentifier: r.physicalResourceId }));
    expect(await d.delete()).toMatchObject({ status: 'SUCCESS' });
    env.clock.advance(120_000);
    expect(env.emu.snapshot().images).toEqual([]);
    expect(checker.calls.some((c) => c.action === 'lambda:TerminateMicrovm' && c.allowed && c.role === newRole)).toBe(true);
    expect(checker.unauthorized()).toEqual([]);
  });

  test('a failed build fails the update with the build\'s reasons (read under the image\'s role) and rolls back', async () => {
    const t1 = imageStack('iam-g');
    const id = logicalId(t1, ResourceType.IMAGE, 'Image');
    deploy(t1);
    const d = driver<any>(ResourceType.IMAGE, id);
    expect(await d.create(resourceProperties(t1, id, context()))).toMatchObject({ status: 'SUCCESS' });
    const t2 = imageStack('iam-g', { environment: { BROKEN: '1' } });
    deploy(t2);
    env.emu.faults.failNextBuild({ imageName: 'iam-g', reasonCode: 'CONTAINER_BUILD_FAILED' });
    const r = await d.update(resourceProperties(t2, id, context()));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/CONTAINER_BUILD_FAILED/);
    expect(checker.calls.some((c) => c.action === 'lambda:ListMicrovmImageBuilds' && c.allowed)).toBe(true);
    expect(await d.rollback()).toMatchObject({ status: 'SUCCESS' });
    expect(await d.delete()).toMatchObject({ status: 'SUCCESS' });
    expect(checker.unauthorized()).toEqual([]);
  });

  test('the check bites: had the role dropped the old ARN before the cleanup (one policy moved in place), the old image would be left behind', async () => {
    const t1 = imageStack('iam-c');
    const id = logicalId(t1, ResourceType.IMAGE, 'Image');
    const [oldRole] = Object.values(deploy(t1));
    const d = driver<any>(ResourceType.IMAGE, id);
    expect(await d.create(resourceProperties(t1, id, context()))).toMatchObject({ status: 'SUCCESS' });
    const t2 = imageStack('iam-d');
    const [newRole] = Object.values(deploy(t2));
    checker.roles.set(oldRole, checker.roles.get(newRole)!); // what an in-place policy change would do
    const r = await d.update(resourceProperties(t2, id, context()));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/cleanup of .*iam-c failed: .*not authorized to perform: lambda:((Get|Delete)MicrovmImage|TagResource)/);
    expect(checker.unauthorized().length).toBeGreaterThan(0);
  });

  test('image rename rolled back: the new image is deleted with the new role, the old one kept', async () => {
    const t1 = imageStack('iam-e');
    const id = logicalId(t1, ResourceType.IMAGE, 'Image');
    deploy(t1);
    const d = driver<any>(ResourceType.IMAGE, id);
    await d.create(resourceProperties(t1, id, context()));
    const t2 = imageStack('iam-f');
    const [newRole] = Object.values(deploy(t2));
    expect(await d.update(resourceProperties(t2, id, context()), { deferCleanup: true })).toMatchObject({ status: 'SUCCESS' });
    const rolledBack = await d.rollback();
    expect(rolledBack.reason).toBeUndefined();
    expect(rolledBack).toMatchObject({ status: 'SUCCESS' });
    expect(checker.calls.filter((c) => c.action === 'lambda:DeleteMicrovmImage')).toEqual([
      expect.objectContaining({ role: newRole, resource: expect.stringMatching(/:microvm-image:iam-f$/), allowed: true }),
    ]);
    expect(await d.delete()).toMatchObject({ status: 'SUCCESS' });
    expect(checker.unauthorized()).toEqual([]);
  });

  test('staged environment: each change makes a new role, so the rollback reads the old values with the old role', async () => {
    const t1 = imageStack('iam-env', { environment: { MODE: 'one' } });
    const id = logicalId(t1, ResourceType.IMAGE, 'Image');
    const [role1] = Object.values(deploy(t1));
    expect(JSON.stringify(t1)).not.toContain('one');
    const d = driver<any>(ResourceType.IMAGE, id);
    expect(await d.create(resourceProperties(t1, id, context()))).toMatchObject({ status: 'SUCCESS' });
    const t2 = imageStack('iam-env', { environment: { MODE: 'two' } });
    const [role2] = Object.values(deploy(t2));
    expect(role2).not.toEqual(role1); // the staged object's hash is in the role's path
    expect(await d.update(resourceProperties(t2, id, context()))).toMatchObject({ status: 'SUCCESS', data: { ImageVersion: '2.0' } });
    const rolledBack = await d.rollback();
    expect(rolledBack.reason).toBeUndefined();
    expect(rolledBack).toMatchObject({ status: 'SUCCESS' });
    const reads = checker.calls.filter((c) => c.action === 's3:GetObject');
    expect(new Set(reads.map((c) => c.role))).toEqual(new Set([role1, role2]));
    expect(reads.every((c) => c.allowed)).toBe(true);
    expect(await liveEnvironment('iam-env')).toEqual({ MODE: 'one' });
    expect(await d.delete()).toMatchObject({ status: 'SUCCESS' });
    expect(checker.unauthorized()).toEqual([]);
  });

  test('staged environment: an update whose object is not in the bucket fails, and its rollback (sent those properties as the old ones) succeeds', async () => {
    const t1 = imageStack('iam-env-gone', { environment: { MODE: 'one' } });
    const id = logicalId(t1, ResourceType.IMAGE, 'Image');
    deploy(t1);
    const d = driver<any>(ResourceType.IMAGE, id);
    expect(await d.create(resourceProperties(t1, id, context()))).toMatchObject({ status: 'SUCCESS' });
    const uploaded = new Set(objects.keys());
    // Values no other test stages: the object's key is its content's hash.
    const t2 = imageStack('iam-env-gone', { environment: { MODE: 'never-uploaded' } });
    // The new values' object never reached the bucket (the template deployed without its assets).
    for (const key of [...objects.keys()]) if (!uploaded.has(key)) objects.delete(key);
    deploy(t2);
    const failed = await d.update(resourceProperties(t2, id, context()));
    expect(failed).toMatchObject({ status: 'FAILED' });
    expect(failed.reason).toMatch(/are not in the asset bucket/);
    // CloudFormation's rollback: the old properties again, the failed ones as OldResourceProperties.
    const rolledBack = await d.rollback();
    expect(rolledBack.reason).toBeUndefined();
    expect(rolledBack).toMatchObject({ status: 'SUCCESS' });
    expect(await liveEnvironment('iam-env-gone')).toEqual({ MODE: 'one' });
    expect(await d.delete()).toMatchObject({ status: 'SUCCESS' });
    expect(checker.unauthorized()).toEqual([]);
  });

  test('a pinned version, its status change and its delete, under the version\'s own role', async () => {
    const build = (status: 'ACTIVE' | 'INACTIVE') => synth((stack) => {
      const image = new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: 'iam-v' });
      new MicroVmImageVersion(stack, 'Version', { image, imageVersion: '1.0', status: MicroVmImageVersionStatus[status], removalPolicy: RemovalPolicy.DESTROY });
    });
    const t1 = build('ACTIVE');
    const imageId = logicalId(t1, ResourceType.IMAGE, 'Image');
    deploy(t1);
    const image = driver<any>(ResourceType.IMAGE, imageId);
    const created = await image.create(resourceProperties(t1, imageId, context()));
    const atts = { [`${imageId}.ImageArn`]: created.physicalResourceId!, [`${imageId}.ImageVersion`]: '1.0' };
    const versionId = logicalId(t1, ResourceType.IMAGE_VERSION, 'Version');
    deploy(t1, atts);
    const v = driver<any>(ResourceType.IMAGE_VERSION, versionId);
    const vc = await v.create(resourceProperties(t1, versionId, context(atts)));
    expect(vc.reason).toBeUndefined();
    expect(vc).toMatchObject({ status: 'SUCCESS' });
    const t2 = build('INACTIVE');
    deploy(t2, atts);
    expect(await v.update(resourceProperties(t2, versionId, context(atts)))).toMatchObject({ status: 'SUCCESS' });
    expect(await v.delete()).toMatchObject({ status: 'SUCCESS' });
    expect(await image.delete()).toMatchObject({ status: 'SUCCESS' });
    expect(checker.unauthorized()).toEqual([]);
  });

  test('a fleet switching image terminates the old image\'s instances with its previous role; rollback and delete', async () => {
    const build = (imageName: 'A' | 'B') => synth((stack) => {
      const a = new MicroVmImage(stack, 'A', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: 'iam-fleet-a' });
      const b = new MicroVmImage(stack, 'B', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: 'iam-fleet-b' });
      new MicroVmFleet(stack, 'Fleet', { image: imageName === 'A' ? a : b, desiredCount: 2 });
    });
    const t1 = build('A');
    deploy(t1);
    const atts: Record<string, string> = {};
    for (const name of ['A', 'B']) {
      const id = logicalId(t1, ResourceType.IMAGE, name);
      const r = await driver<any>(ResourceType.IMAGE, id).create(resourceProperties(t1, id, context()));
      atts[`${id}.ImageArn`] = r.physicalResourceId!;
      atts[`${id}.ImageVersion`] = r.data.ImageVersion;
    }
    const fleetId = logicalId(t1, ResourceType.FLEET, 'Fleet');
    const [roleA] = Object.entries(deploy(t1, atts)).filter(([id]) => id.startsWith('Fleet')).map(([, arn]) => arn);
    const fleet = driver<any>(ResourceType.FLEET, fleetId);
    const createdFleet = await fleet.create(resourceProperties(t1, fleetId, context(atts)));
    expect(createdFleet.reason).toBeUndefined();
    expect(createdFleet).toMatchObject({ status: 'SUCCESS' });

    const t2 = build('B');
    const [roleB] = Object.entries(deploy(t2, atts)).filter(([id]) => id.startsWith('Fleet')).map(([, arn]) => arn);
    expect(roleB).not.toEqual(roleA);
    expect(await fleet.update(resourceProperties(t2, fleetId, context(atts)))).toMatchObject({ status: 'SUCCESS' });
    const oldImage = Object.entries(atts).find(([k]) => /^A.*\.ImageArn$/.test(k))![1];
    const onOld = checker.calls.filter((c) => c.action === 'lambda:TerminateMicrovm' && c.resource === oldImage);
    expect(onOld.filter((c) => c.allowed).map((c) => c.role)).toEqual([roleA, roleA]);
    expect(onOld.filter((c) => !c.allowed).every((c) => c.role === roleB && c.resolved)).toBe(true);

    expect(await fleet.rollback()).toMatchObject({ status: 'SUCCESS' });
    expect(await fleet.delete()).toMatchObject({ status: 'SUCCESS' });
    expect((env.emu.snapshot().microvms as any[]).filter((m) => m.state !== 'TERMINATED')).toEqual([]);
    expect(checker.unauthorized()).toEqual([]);
  });

  test('a fleet of an imported image follows its latest active version; a memory quota refusal is explained under the fleet\'s role', async () => {
    await env.emu.close();
    env = await handlerEnv({ memoryQuotaMiB: 4096 });
    const t0 = imageStack('iam-imported');
    const imageId = logicalId(t0, ResourceType.IMAGE, 'Image');
    deploy(t0);
    const image = await driver<any>(ResourceType.IMAGE, imageId).create(resourceProperties(t0, imageId, context()));
    const build = (desiredCount: number) => synth((stack) => {
      new MicroVmFleet(stack, 'Fleet', { image: MicroVmImage.fromImageArn(stack, 'Imported', image.physicalResourceId!), desiredCount });
    });
    const t1 = build(1);
    deploy(t1);
    const fleetId = logicalId(t1, ResourceType.FLEET, 'Fleet');
    const fleet = driver<any>(ResourceType.FLEET, fleetId);
    expect(await fleet.create(resourceProperties(t1, fleetId, context()))).toMatchObject({ status: 'SUCCESS' });
    expect(checker.calls.some((c) => c.action === 'lambda:GetMicrovmImage' && c.allowed && /fleet/.test(c.role))).toBe(true);
    const t2 = build(5); // 5 x 2 GiB > the 4 GiB quota
    deploy(t2);
    const r = await fleet.update(resourceProperties(t2, fleetId, context()));
    expect(r.status).toBe('FAILED');
    expect(checker.calls.some((c) => c.action === 'lambda:GetMicrovmImageVersion' && c.allowed && /fleet/.test(c.role))).toBe(true);
    await fleet.rollback();
    expect(await fleet.delete()).toMatchObject({ status: 'SUCCESS' });
    expect(checker.unauthorized()).toEqual([]);
  });

  test('the fleet reconciler runs under the fleet\'s own handler role, assumed by the provider role, in a reconciler session (issue 12 meets issue 14)', async () => {
    const t = synth((stack) => {
      const image = new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: 'iam-heal' });
      new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 2, runHookPayload: 'staged-heal-payload' });
    });
    deploy(t);
    const imageId = logicalId(t, ResourceType.IMAGE, 'Image');
    const image = await driver<any>(ResourceType.IMAGE, imageId).create(resourceProperties(t, imageId, context()));
    const atts = { [`${imageId}.ImageArn`]: image.physicalResourceId!, [`${imageId}.ImageVersion`]: image.data.ImageVersion };
    const [fleetRole] = Object.entries(deploy(t, atts)).filter(([id]) => id.startsWith('Fleet')).map(([, arn]) => arn);
    const fleetId = logicalId(t, ResourceType.FLEET, 'Fleet');
    const props = resourceProperties(t, fleetId, context(atts));
    const created = await driver<any>(ResourceType.FLEET, fleetId).create(props);
    expect(created).toMatchObject({ status: 'SUCCESS' });
    // The run is served by the provider's onEvent function (issue 12), so the provider role assumes
    // the fleet's handler role, which trusts exactly it (the checker does not evaluate trust), and
    // the provider role itself may read exactly this stack's status (the run's fence).
    const providerRole = Object.keys(t.Resources).find((id) => /^cdklambdamicrovmsProviderRole[0-9A-F]{8}$/.test(id));
    const handlerRoleId = Object.keys(t.Resources).find((id) => id.startsWith('FleetHandlerRole'))!;
    expect(t.Resources[handlerRoleId].Properties.AssumeRolePolicyDocument.Statement).toEqual([expect.objectContaining({ Principal: { AWS: { 'Fn::GetAtt': [providerRole, 'Arn'] } } })]);
    const providerStatements = Object.values(t.Resources).filter((r: any) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x: any) => x.Ref === providerRole))
      .flatMap((p: any) => p.Properties.PolicyDocument.Statement);
    expect(providerStatements).toContainEqual({ Action: 'cloudformation:DescribeStacks', Effect: 'Allow', Resource: { Ref: 'AWS::StackId' } });

    // One instance ends out of band; a scheduled run replaces it with the fleet's role.
    const [gone] = created.data.InstanceIds.split(',');
    await microvmsClient(async () => ({ accessKeyId: 'test', secretAccessKey: 'test' }), 1).send(new TerminateMicrovmCommand({ microvmIdentifier: gone }));
    env.clock.advance(120_000);
    // The schedule's own input, as EventBridge Scheduler sends it, to the provider's onEvent entry
    // (lambda/provider/entry.ts), which routes it to the reconciler by its marker.
    const [schedule] = Object.values(t.Resources).filter((r: any) => r.Type === 'AWS::Scheduler::Schedule') as any[];
    const refs = { [fleetId]: created.physicalResourceId! };
    const input = JSON.parse(resolveIntrinsics(schedule.Properties.Target.Input, t, { ...context(atts), refs }));
    expect(input).toMatchObject({ Invocation: 'cdk-lambda-microvms:ReconcileFleet', FleetId: created.physicalResourceId, HandlerRoleArn: fleetRole });
    const sessions: string[] = [];
    const entry = providerEntry({
      assumeRole: (role, session) => { sessions.push(session); return checker.assumeRole(role, session); },
      clients,
      clock: emulatorClock,
      reconciler: { deployState: async () => 'SETTLED', metrics: () => undefined, random: () => 0.5 },
    });
    const report = await entry.onEvent(input, { awsRequestId: 'run-1' });
    expect(report).toMatchObject({ outcome: 'reconciled', replacedTerminated: 1 });
    expect(sessions).toEqual([reconcilerSessionName('run-1')]);
    const runCalls = checker.calls.filter((c) => c.role === fleetRole);
    expect(runCalls.some((c) => c.action === 'dynamodb:DeleteItem' && c.allowed)).toBe(true);
    // The payload is staged: the deploy and the run read it with the fleet's role; the replacement got it.
    expect(props.RunHookPayload).toBeUndefined();
    expect(runCalls.filter((c) => c.action === 's3:GetObject' && c.allowed).length).toBeGreaterThanOrEqual(2);
    expect(runPayloads.length).toBeGreaterThanOrEqual(3);
    expect(new Set(runPayloads)).toEqual(new Set(['staged-heal-payload']));
    expect(runCalls.some((c) => c.action === 'lambda:RunMicrovm' && c.allowed)).toBe(true);
    expect(checker.unauthorized()).toEqual([]);
  });

  test('a warm pool suspends its instances under its own role', async () => {
    const t = synth((stack) => {
      const image = new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: 'iam-warm' });
      new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1, suspendAfterLaunch: true });
    });
    deploy(t);
    const imageId = logicalId(t, ResourceType.IMAGE, 'Image');
    const image = await driver<any>(ResourceType.IMAGE, imageId).create(resourceProperties(t, imageId, context()));
    const atts = { [`${imageId}.ImageArn`]: image.physicalResourceId!, [`${imageId}.ImageVersion`]: image.data.ImageVersion };
    deploy(t, atts);
    const fleetId = logicalId(t, ResourceType.FLEET, 'Fleet');
    const fleet = driver<any>(ResourceType.FLEET, fleetId);
    expect(await fleet.create(resourceProperties(t, fleetId, context(atts)))).toMatchObject({ status: 'SUCCESS' });
    expect(checker.calls.some((c) => c.action === 'lambda:SuspendMicrovm' && c.allowed)).toBe(true);
    // Warm pool off: the same role resumes the suspended instances.
    const off = synth((stack) => {
      const warmImage = new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: 'iam-warm' });
      new MicroVmFleet(stack, 'Fleet', { image: warmImage, desiredCount: 1, suspendAfterLaunch: false });
    });
    deploy(off, atts);
    expect(await fleet.update(resourceProperties(off, fleetId, context(atts)))).toMatchObject({ status: 'SUCCESS' });
    expect(checker.calls.some((c) => c.action === 'lambda:ResumeMicrovm' && c.allowed)).toBe(true);
    expect(await fleet.delete()).toMatchObject({ status: 'SUCCESS' });
    expect(checker.unauthorized()).toEqual([]);
  });

  test('a network connector: create, update, tags, delete under its own role', async () => {
    const build = (sg: string, tags: Record<string, string>) => synth((stack) => {
      const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', { vpcId: 'vpc-0123', availabilityZones: ['us-east-1a'], isolatedSubnetIds: ['subnet-0aaa'] });
      new NetworkConnector(stack, 'Connector', {
        vpc, networkConnectorName: 'iam-conn', securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', sg)], tags,
      });
    });
    const t1 = build('sg-0ccc', { team: 'a' });
    deploy(t1);
    const id = logicalId(t1, ResourceType.NETWORK_CONNECTOR, 'Connector');
    const d = driver<any>(ResourceType.NETWORK_CONNECTOR, id);
    expect(await d.create(resourceProperties(t1, id, context()))).toMatchObject({ status: 'SUCCESS' });
    const t2 = build('sg-0ddd', { team: 'b', env: 'x' });
    deploy(t2);
    expect(await d.update(resourceProperties(t2, id, context()))).toMatchObject({ status: 'SUCCESS' });
    const t3 = build('sg-0ddd', {});
    deploy(t3);
    expect(await d.update(resourceProperties(t3, id, context()))).toMatchObject({ status: 'SUCCESS' });
    expect(await d.delete()).toMatchObject({ status: 'SUCCESS' });
    expect(checker.unauthorized()).toEqual([]);
  });

  // Runs last (jest runs a file's tests in order): after every lifecycle above.
  test('every action a handler role is granted was needed by some handler call above', () => {
    // Listed here only with why the client cannot see the call.
    const notVisibleAtTheClient: Record<string, string> = {
      'network-connector ec2:describesubnets': 'Lambda Core validates a connector\'s subnets with the caller\'s credentials (forward access): no client call of ours',
      'network-connector ec2:describesecuritygroups': 'as ec2:DescribeSubnets, for the security groups',
      'network-connector iam:createservicelinkedrole': 'Lambda Core creates its service-linked role on the first connector of an account, with the caller\'s credentials',
    };
    expect(granted.size).toBeGreaterThan(10);
    expect([...granted].filter((a) => !called.has(a) && !(a in notVisibleAtTheClient)).sort()).toEqual([]);
  });
});

