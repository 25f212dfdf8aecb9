/**
 * The test kit (`cdk-lambda-microvms/testing`) on the example app's stack: every construct of the
 * library, deployed, updated, rolled back and destroyed against the emulator.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateMicrovmAuthTokenCommand, LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { App, Stack } from 'aws-cdk-lib';
import { MicroVmTestbed } from '../../emulator/testkit';
import { deployOrder, referencesOf, resolve } from '../../emulator/testkit/template';
import { ExampleStack } from '../../example/stack';
import { MicroVmCode, MicroVmFleet, MicroVmImage } from '../../src';

const EXAMPLE_IMAGE = path.join(__dirname, '..', '..', 'example', 'image');

/** The example stack on a copy of its image directory, with `marker` in the code (a change = a new image version). */
function exampleStack(marker: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'testkit-image-'));
  fs.cpSync(EXAMPLE_IMAGE, dir, { recursive: true });
  fs.appendFileSync(path.join(dir, 'server.mjs'), `\n// ${marker}\n`);
  return new ExampleStack(new App(), 'KitStack', { imageDirectory: dir });
}

let bed: MicroVmTestbed;
beforeAll(async () => {
  bed = await MicroVmTestbed.start();
});
afterAll(async () => { await bed.close(); });

const live = () => bed.emulator.snapshot().microvms.filter((vm: { state: string }) => vm.state !== 'TERMINATED');

test('deploy, call a fleet instance, update, a failed update rolls back, destroy leaves nothing', async () => {
  const created = await bed.deploy(exampleStack('v1'));
  expect([created.status, created.reason]).toEqual(['CREATE_COMPLETE', undefined]);
  expect(created.events.map((e) => `${e.requestType} ${e.path}`)).toEqual(['Create Connector', 'Create Image', 'Create Version', 'Create Fleet']);
  const [Image, Version, Fleet, Connector] = ['Image', 'Version', 'Fleet', 'Connector'].map((p) => bed.resource(p));
  expect(Image.attributes.ImageVersion).toBe('1.0');
  expect(Version.attributes.ImageVersion).toBe('1.0');
  expect(Connector.physicalResourceId).toMatch(/:network-connector:nc-[0-9a-f-]{36}$/);
  // The connector got the made-up subnets of the stack's VPC, in their real format.
  expect(Connector.properties.SubnetIds).toEqual([expect.stringMatching(/^subnet-[0-9a-f]{17}$/), expect.stringMatching(/^subnet-[0-9a-f]{17}$/)]);
  expect(live().map((vm: { imageVersion: string }) => vm.imageVersion)).toEqual(['1.0', '1.0', '1.0']);

  // A fleet instance's endpoint, with an auth token from the real SDK.
  const client = new LambdaMicrovmsClient(bed.clientConfig);
  const [instance] = Fleet.attributes.InstanceIds.split(',');
  const endpoint = Fleet.attributes.Endpoints.split(',')[0];
  const tokenInput = { microvmIdentifier: instance, expirationInMinutes: 5, allowedPorts: [{ allPorts: {} }] };
  const token = await client.send(new CreateMicrovmAuthTokenCommand(tokenInput));
  const answer = await bed.emulator.endpoints.call(endpoint, { path: '/hello', token: token.authToken!['X-aws-proxy-auth'] });
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.body)).toMatchObject({ microvmId: instance, path: '/hello' });

  const updated = await bed.deploy(exampleStack('v2'));
  expect([updated.status, updated.reason]).toEqual(['UPDATE_COMPLETE', undefined]);
  expect(bed.resource('Fleet').attributes.ImageVersion).toBe('2.0');
  expect(live().map((vm: { imageVersion: string }) => vm.imageVersion)).toEqual(['2.0', '2.0', '2.0']);

  const imageName = bed.resource('Image').physicalResourceId.split(':').pop()!;
  bed.emulator.faults.failNextBuild({ imageName, reasonCode: 'CONTAINER_BUILD_FAILED' });
  const failed = await bed.deploy(exampleStack('v3'));
  expect(failed.status).toBe('UPDATE_ROLLBACK_COMPLETE');
  expect(failed.reason).toMatch(/^Image: .*CONTAINER_BUILD_FAILED/);
  expect(failed.events.filter((e) => e.phase === 'rollback').map((e) => `${e.requestType} ${e.path} ${e.status}`)).toEqual(['Update Image SUCCESS']);
  expect(bed.resource('Fleet').attributes.ImageVersion).toBe('2.0');
  expect(live()).toHaveLength(3);

  const destroyed = await bed.destroy();
  expect([destroyed.status, destroyed.reason]).toEqual(['DELETE_COMPLETE', undefined]);
  expect(destroyed.events.map((e) => `${e.requestType} ${e.path}`)).toEqual(['Delete Fleet', 'Delete Version', 'Delete Image', 'Delete Connector']);
  bed.emulator.advance(60_000);
  const after = bed.emulator.snapshot();
  expect([after.images.length, after.connectors.length, live().length]).toEqual([0, 0, 0]);
});

test('template evaluation: references, order and intrinsic functions', () => {
  const template = {
    Parameters: { Size: { Default: '3' } },
    Conditions: { Big: { 'Fn::Equals': [{ Ref: 'Size' }, '3'] } },
    Resources: {
      Role: { Type: 'AWS::IAM::Role' },
      B: { Type: 'Custom::LambdaMicroVmFleet', Properties: { ImageArn: { 'Fn::GetAtt': ['A', 'ImageArn'] }, N: { 'Fn::If': ['Big', { Ref: 'Size' }, '1'] } } },
      A: {
        Type: 'Custom::LambdaMicroVmImage',
        Properties: {
          Role: { 'Fn::GetAtt': ['Role', 'Arn'] },
          Uri: { 'Fn::Sub': 's3://cdk-assets-${AWS::AccountId}-${AWS::Region}/${!Literal}x.zip' },
          Az: { 'Fn::Select': [1, { 'Fn::GetAZs': '' }] },
          Gone: { Ref: 'AWS::NoValue' },
          Joined: { 'Fn::Join': [',', { 'Fn::Split': ['|', 'a|b'] }] },
        },
      },
    },
  };
  expect([...referencesOf(template.Resources.B.Properties)]).toEqual(['A', 'Size']);
  expect(deployOrder(template, (t) => t.startsWith('Custom::'))).toEqual(['A', 'B']);
  const ctx = { region: 'eu-west-1', account: '111122223333', stackName: 'S', stackId: 'id', deployed: (id: string) => (id === 'A' ? { physicalResourceId: 'arn-a', data: { ImageArn: 'arn-a' } } : undefined) };
  expect(resolve(template, template.Resources.A.Properties, ctx)).toEqual({
    Role: expect.stringMatching(/^arn:aws:iam::111122223333:role\/S-Role-[0-9A-F]{12}$/),
    Uri: 's3://cdk-assets-111122223333-eu-west-1/${Literal}x.zip',
    Az: 'eu-west-1b',
    Joined: 'a,b',
  });
  expect(resolve(template, template.Resources.B.Properties, ctx)).toEqual({ ImageArn: 'arn-a', N: '3' });
});

test('a stack in another region than the emulator is refused with the fix', async () => {
  const app = new App();
  const stack = new ExampleStack(app, 'Elsewhere', { imageDirectory: EXAMPLE_IMAGE, env: { region: 'eu-west-1', account: '123456789012' } });
  await expect(bed.deploy(stack)).rejects.toThrow("the stack's region is eu-west-1 but the testbed's emulator uses us-east-1: start it with MicroVmTestbed.start({ emulator: { region: 'eu-west-1' } })");
});

test('values staged as assets (an image\'s environment, a fleet\'s payload) reach the emulator from the cloud assembly', async () => {
  const kit = await MicroVmTestbed.start();
  try {
    const stack = new Stack(new App(), 'StagedStack');
    const image = new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(EXAMPLE_IMAGE), environment: { MODE: 'staged-env' } });
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 1, runHookPayload: 'staged-payload' });
    const r = await kit.deploy(stack);
    expect([r.status, r.reason]).toEqual(['CREATE_COMPLETE', undefined]);
    expect(kit.resource('Image').properties.StagedProperties).toBeDefined();
    expect(JSON.stringify(kit.emulator.snapshot().images)).toContain('staged-env');
    const fleet = kit.resource('Fleet');
    const client = new LambdaMicrovmsClient(kit.clientConfig);
    const token = await client.send(new CreateMicrovmAuthTokenCommand({
      microvmIdentifier: fleet.attributes.InstanceIds, expirationInMinutes: 5, allowedPorts: [{ allPorts: {} }],
    }));
    const answer = await kit.emulator.endpoints.call(fleet.attributes.Endpoints, { path: '/', token: token.authToken!['X-aws-proxy-auth'] });
    expect(JSON.parse(answer.body).runHookPayload).toBe('staged-payload');
  } finally {
    await kit.close();
  }
});
