import { GetMicrovmImageCommand, ListMicrovmImageVersionsCommand, ListTagsCommand, RunMicrovmCommand, GetMicrovmCommand } from '@aws-sdk/client-lambda-microvms';
import { handlerEnv, HandlerEnv } from './support/handler-env';
import { imageProps, TEST_ACCOUNT } from './support/image-props';
import { LifecycleDriver } from './support/lifecycle-driver';
import { ImageHandler } from '../lambda/image/image-handler';
import { ImageProps, ResourceType } from '../src/private/wire';

const ACCOUNT = TEST_ACCOUNT;
const props = imageProps;

describe('image handler against the emulator', () => {
  let env: HandlerEnv;
  let handler: ImageHandler;
  const driver = (logicalResourceId = 'Image') => new LifecycleDriver<ImageProps>({
    handler, resourceType: ResourceType.IMAGE, logicalResourceId, wait: env.wait, queryIntervalMs: 15_000,
  });
  const versions = async (arn: string) =>
    (await env.client.send(new ListMicrovmImageVersionsCommand({ imageIdentifier: arn }))).items!.map((v) => `${v.imageVersion}:${v.state}`).sort();

  beforeEach(async () => {
    env = await handlerEnv();
    handler = new ImageHandler(env.client, { clock: env.handlerClock });
  });
  afterEach(async () => env.emu.close());

  test('create polls until CREATED and returns every attribute', async () => {
    const d = driver();
    const r = await d.create(props('img-create'));
    expect(r.status).toBe('SUCCESS');
    expect(r.physicalResourceId).toBe(`arn:aws:lambda:us-east-1:${ACCOUNT}:microvm-image:img-create`);
    expect(r.data).toEqual({
      ImageArn: r.physicalResourceId, ImageName: 'img-create', ImageVersion: '1.0', LatestActiveImageVersion: '1.0',
    });
    expect(r.polls).toBeGreaterThan(1); // it really waited for the build
    const image = await env.client.send(new GetMicrovmImageCommand({ imageIdentifier: r.physicalResourceId }));
    expect(image.state).toBe('CREATED');
  });

  test('a replayed Create (same request) creates the image once', async () => {
    const r = await driver().create(props('img-replay'), { replayOnEvent: true });
    expect(r.status).toBe('SUCCESS');
    expect(env.emu.snapshot().images.map((i: any) => i.name)).toEqual(['img-replay']);
    expect(await versions(r.physicalResourceId!)).toEqual(['1.0:SUCCESSFUL']);
  });

  test('a failed build fails the deploy with the version, the build reasons and the log, and deletes the image', async () => {
    env.emu.faults.failNextBuild({ imageName: 'img-fail', reasonCode: 'CONTAINER_BUILD_FAILED' });
    const d = driver();
    const r = await d.create(props('img-fail'));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/MicroVM image img-fail version 1\.0 failed \(image state CREATE_FAILED\)/);
    expect(r.reason).toMatch(/CONTAINER_BUILD_FAILED/);
    expect(r.reason).toMatch(/build log: CloudWatch log group \/mvm\/builds/);
    expect(r.reason).toMatch(/The image this deploy created was deleted/);
    // The framework sends no Delete after a failed Create: the handler cleaned up.
    expect((await d.delete()).polls).toBe(0);
    env.clock.advance(60_000);
    expect(env.emu.snapshot().images).toEqual([]);
  });

  test('a build that outlives the deadline fails with the last state, not "did not stabilize"', async () => {
    await env.emu.close();
    env = await handlerEnv({ delays: { imageBuildInProgress: 2 * 3600_000 } });
    handler = new ImageHandler(env.client, { clock: env.handlerClock });
    const r = await driver().create(props('img-slow', { BuildTimeoutSeconds: '60' }));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/img-slow version 1\.0 timed out \(image state CREATING\)/);
    expect(r.reason).toMatch(/build .* (PENDING|IN_PROGRESS)/);
    expect(r.reason).toMatch(/could not be deleted yet/);
  });

  test('a tags-only update changes tags without a build', async () => {
    const d = driver();
    const created = await d.create(props('img-tags', { Tags: { team: 'a', old: 'x' } }));
    const r = await d.update(props('img-tags', { Tags: { team: 'b', added: 'y' } }));
    expect(r.status).toBe('SUCCESS');
    expect(r.data.ImageVersion).toBe('1.0');
    expect(await versions(created.physicalResourceId!)).toEqual(['1.0:SUCCESSFUL']);
    const tags = await env.client.send(new ListTagsCommand({ Resource: created.physicalResourceId }));
    expect(tags.Tags).toEqual({ team: 'b', added: 'y' });
  });

  test('a code change builds a new version; a failed update rolls back without a rebuild', async () => {
    const d = driver();
    const created = await d.create(props('img-roll'));
    const v2 = await d.update(props('img-roll', { CodeUri: 's3://assets/code-v2.zip' }));
    expect(v2.status).toBe('SUCCESS');
    expect(v2.data).toMatchObject({ ImageVersion: '2.0', LatestActiveImageVersion: '2.0' });

    env.emu.faults.failNextBuild({ imageName: 'img-roll', reasonCode: 'ARCHIVE_DOCKERFILE_NOT_FOUND' });
    const bad = await d.update(props('img-roll', { CodeUri: 's3://assets/code-v3.zip' }));
    expect(bad.status).toBe('FAILED');
    expect(bad.reason).toMatch(/version 3\.0 failed .*ARCHIVE_DOCKERFILE_NOT_FOUND/);
    expect(bad.reason).not.toMatch(/deleted/); // an update never deletes the image

    const back = await d.rollback();
    expect(back.status).toBe('SUCCESS');
    expect(back.data).toMatchObject({ ImageVersion: '2.0', LatestActiveImageVersion: '2.0' });
    expect(back.polls).toBe(1);
    expect(await versions(created.physicalResourceId!)).toEqual(['1.0:SUCCESSFUL', '2.0:SUCCESSFUL', '3.0:FAILED']);
  });

  test('an update back to an older configuration than the latest active still builds', async () => {
    const d = driver();
    const created = await d.create(props('img-revert'));
    await d.update(props('img-revert', { CodeUri: 's3://assets/code-v2.zip' }));
    const r = await d.update(props('img-revert'));
    expect(r.status).toBe('SUCCESS');
    expect(r.data.ImageVersion).toBe('3.0');
    expect(await versions(created.physicalResourceId!)).toEqual(['1.0:SUCCESSFUL', '2.0:SUCCESSFUL', '3.0:SUCCESSFUL']);
  });

  test('a new name replaces the image; the old one is deleted in the cleanup', async () => {
    const d = driver();
    const a = await d.create(props('img-a'));
    const b = await d.update(props('img-b'));
    expect(b.status).toBe('SUCCESS');
    expect(b.physicalResourceId).not.toBe(a.physicalResourceId);
    expect(d.events.map((e) => e.requestType)).toEqual(['Create', 'Update', 'Delete']);
    env.clock.advance(60_000);
    expect(env.emu.snapshot().images.map((i: any) => i.name)).toEqual(['img-b']);
  });

  test('delete waits until the image is gone; deleting a missing image succeeds', async () => {
    const d = driver();
    await d.create(props('img-del'));
    const r = await d.delete();
    expect(r.status).toBe('SUCCESS');
    expect(r.polls).toBeGreaterThan(1);
    expect(env.emu.snapshot().images).toEqual([]);
    const again = await d.delete();
    expect(again.status).toBe('SUCCESS');
  });

  test('delete while MicroVMs run fails with their ids, unless the image may terminate them', async () => {
    const d = driver();
    const created = await d.create(props('img-busy'));
    const vm = await env.client.send(new RunMicrovmCommand({ imageIdentifier: created.physicalResourceId }));
    const refused = await d.delete();
    expect(refused.status).toBe('FAILED');
    expect(refused.reason).toContain(vm.microvmId);
    expect(refused.reason).toMatch(/1 MicroVM\(s\) still run from it.*terminateMicroVmsOnDelete: true/);
    expect(env.emu.snapshot().images.map((i: any) => i.name)).toEqual(['img-busy']);

    d.properties = props('img-busy', { TerminateMicroVmsOnDelete: 'true' });
    const r = await d.delete();
    expect(r.status).toBe('SUCCESS');
    const after = await env.client.send(new GetMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    expect(after.state).toBe('TERMINATED');
    expect(env.emu.snapshot().images).toEqual([]);
  });

  test('throttling is retried with backoff; a validation error is not', async () => {
    env.emu.faults.operation({ operation: 'GetMicrovmImage', mode: 'throttle', count: 3 });
    const r = await driver().create(props('img-throttled'));
    expect(r.status).toBe('SUCCESS');
    expect(env.emu.stats().operations.GetMicrovmImage).toBeGreaterThanOrEqual(4);

    env.emu.resetStats();
    const bad = await driver('Bad').create(props('bad name!'));
    expect(bad.status).toBe('FAILED');
    expect(bad.reason).toMatch(/name/);
    expect(env.emu.stats().operations.CreateMicrovmImage).toBe(1);
  });

  test('a duplicate name fails with the fix, not the raw conflict', async () => {
    await driver('First').create(props('img-dup'));
    const r = await driver('Second').create(props('img-dup'));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/a MicroVM image named 'img-dup' already exists.*choose another `name`/);
  });
});
