import { CreateMicrovmImageCommand, LambdaMicrovmsClient, GetMicrovmImageCommand, GetMicrovmImageVersionCommand, ListMicrovmImageVersionsCommand, ListTagsCommand, RunMicrovmCommand, GetMicrovmCommand } from '@aws-sdk/client-lambda-microvms';
import { CREDENTIALS, handlerEnv, HandlerEnv } from './support/handler-env';
import { imageProps, ImageWire, TEST_ACCOUNT } from './support/image-props';
import { LifecycleDriver, LifecycleResult, Waiter } from './support/lifecycle-driver';
import { imageConfig } from '../lambda/image/image-config';
import { ImageHandler } from '../lambda/image/image-handler';
import { ROUND_MS } from '../lambda/shared/framework';
import { HANDLER_TAG_PREFIX, OWNER_TAG_KEY } from '../lambda/shared/ownership';
import { ImageProps, ResourceType } from '../src/private/wire';

const ACCOUNT = TEST_ACCOUNT;
const props = imageProps;
/** The user's tags, without the handler's owner and fence tags. */
const userTags = (tags: Record<string, string> = {}) => Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith(HANDLER_TAG_PREFIX)));

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

  test('create waits until CREATED and returns every attribute', async () => {
    const d = driver();
    const started = env.clock.now();
    const r = await d.create(props('img-create'));
    expect(r.status).toBe('SUCCESS');
    expect(r.physicalResourceId).toBe(`arn:aws:lambda:us-east-1:${ACCOUNT}:microvm-image:img-create`);
    expect(r.data).toEqual({
      ImageArn: r.physicalResourceId, ImageName: 'img-create', ImageVersion: '1.0', LatestActiveImageVersion: '1.0',
    });
    // It really waited for the build (500 ms pending + 2500 ms in progress), within the first
    // isComplete call, and answered within one round (1.5 s) of the build's end, not a query interval later.
    expect(r.polls).toBe(1);
    expect(env.clock.now() - started).toBeGreaterThanOrEqual(3000);
    expect(env.clock.now() - started).toBeLessThanOrEqual(3000 + ROUND_MS);
    const image = await env.client.send(new GetMicrovmImageCommand({ imageIdentifier: r.physicalResourceId }));
    expect(image.state).toBe('CREATED');
  });

  test('a replayed Create (same request) creates the image once', async () => {
    const r = await driver().create(props('img-replay'), { replayOnEvent: true });
    expect(r.status).toBe('SUCCESS');
    expect(env.emu.snapshot().images.map((i: any) => i.name)).toEqual(['img-replay']);
    expect(await versions(r.physicalResourceId!)).toEqual(['1.0:SUCCESSFUL']);
  });

  test('a failed build fails the deploy with the version, the build reasons and the log; the rollback\'s Delete removes the image', async () => {
    env.emu.faults.failNextBuild({ imageName: 'img-fail', reasonCode: 'CONTAINER_BUILD_FAILED' });
    const d = driver();
    const r = await d.create(props('img-fail'));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/MicroVM image img-fail version 1\.0 failed \(image state CREATE_FAILED\)/);
    expect(r.reason).toMatch(/CONTAINER_BUILD_FAILED/);
    expect(r.reason).toMatch(/build log: CloudWatch log group \/mvm\/builds/);
    expect(r.reason).toMatch(/The rollback deletes the image this deploy created/);
    // isComplete failed: the framework answers with the REAL id, and the rollback's Delete reaches the handler.
    expect(r.physicalResourceId).toBe(`arn:aws:lambda:us-east-1:${ACCOUNT}:microvm-image:img-fail`);
    const deleted = await d.delete();
    expect(deleted.status).toBe('SUCCESS');
    expect(deleted.polls).toBeGreaterThan(0);
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
    expect(r.reason).toMatch(/The rollback deletes the image this deploy created/);
  });

  test('a tags-only update changes tags without a build', async () => {
    const d = driver();
    const created = await d.create(props('img-tags', { Tags: { team: 'a', old: 'x' } }));
    const r = await d.update(props('img-tags', { Tags: { team: 'b', added: 'y' } }));
    expect(r.status).toBe('SUCCESS');
    expect(r.data.ImageVersion).toBe('1.0');
    expect(await versions(created.physicalResourceId!)).toEqual(['1.0:SUCCESSFUL']);
    const tags = await env.client.send(new ListTagsCommand({ Resource: created.physicalResourceId }));
    expect(userTags(tags.Tags)).toEqual({ team: 'b', added: 'y' });
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
    const started = env.clock.now();
    const r = await d.delete();
    expect(r.status).toBe('SUCCESS');
    // DELETING for 1 s, waited for within the first isComplete call.
    expect(r.polls).toBe(1);
    expect(env.clock.now() - started).toBeGreaterThanOrEqual(1000);
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

  // Issue 15: adopting an image made elsewhere (`adoptExisting`), and the managed base image checked at deploy.
  const imageNames = () => env.emu.snapshot().images.map((i: any) => i.name).sort();
  /** An image made with another tool (the L1, the console): no owner tag; waits for its build. */
  const createElsewhere = async (p: ImageWire) => {
    const created = await env.client.send(new CreateMicrovmImageCommand({ ...imageConfig(p), name: p.Name }));
    env.clock.advance(3600_000);
    expect((await env.client.send(new GetMicrovmImageCommand({ imageIdentifier: created.imageArn }))).state).toBe('CREATED');
    return created.imageArn!;
  };

  test('adopts an image made elsewhere with the same configuration: no rebuild, no second image', async () => {
    const arn = await createElsewhere(props('legacy'));
    const d = driver();
    const r = await d.create(props('legacy', { AdoptExisting: 'true', Tags: { team: 'a' } }));
    expect(r.status).toBe('SUCCESS');
    expect(r.physicalResourceId).toBe(arn);
    expect(r.data?.ImageVersion).toBe('1.0');
    expect(await versions(arn)).toEqual(['1.0:SUCCESSFUL']);
    expect(imageNames()).toEqual(['legacy']);
    const tags = (await env.client.send(new ListTagsCommand({ Resource: arn }))).Tags!;
    expect(tags.team).toBe('a');
    expect(tags[OWNER_TAG_KEY]).toBeDefined();
    // From now on it is this resource's: the stack's Delete removes it.
    expect((await d.delete()).status).toBe('SUCCESS');
    expect(imageNames()).toEqual([]);
  });

  test('adopts an image whose configuration differs with one update (a new version), never a second image', async () => {
    const arn = await createElsewhere(props('legacy-old'));
    const r = await driver().create(props('legacy-old', { AdoptExisting: 'true', CodeUri: 's3://assets/code-v2.zip' }));
    expect(r.status).toBe('SUCCESS');
    expect(r.physicalResourceId).toBe(arn);
    expect(r.data?.ImageVersion).toBe('2.0');
    expect(await versions(arn)).toEqual(['1.0:SUCCESSFUL', '2.0:SUCCESSFUL']);
    expect(imageNames()).toEqual(['legacy-old']);
  });

  test('refuses to adopt an image another stack of ours manages, and changes nothing', async () => {
    const first = await driver('First').create(props('shared'));
    expect(first.status).toBe('SUCCESS');
    const r = await driver('Second').create(props('shared', { AdoptExisting: 'true', CodeUri: 's3://assets/code-v2.zip' }));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/cannot adopt MicroVM image arn:aws:lambda:us-east-1:\d+:microvm-image:shared: another cdk-lambda-microvms resource manages it .*Nothing was changed/);
    expect(await versions(first.physicalResourceId!)).toEqual(['1.0:SUCCESSFUL']);
  });

  test('without adoptExisting, an existing image fails with the ways out', async () => {
    await createElsewhere(props('taken'));
    const r = await driver().create(props('taken'));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/a MicroVM image named 'taken' already exists.*take it over with `adoptExisting: true`/);
  });

  test('a base image that is not managed fails with what ListManagedMicrovmImages returns, before any create', async () => {
    const r = await driver().create(props('img-base', { BaseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2099-1' }));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/base image arn:aws:lambda:us-east-1:aws:microvm-image:al2099-1 is not a Lambda-managed MicroVM image in this Region. ListManagedMicrovmImages returns: al2023-1/);
    expect(imageNames()).toEqual([]);
  });

  test('a pinned base version that does not exist fails with what ListManagedMicrovmImageVersions returns', async () => {
    const r = await driver().create(props('img-basev', { BaseImageVersion: '7' }));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/base image al2023-1 has no version 7. ListManagedMicrovmImageVersions returns: 1 \(AVAILABLE\), 0 \(AVAILABLE\)/);
    expect(imageNames()).toEqual([]);
    // "1.0", the service's full form of "1", is the same version.
    expect((await driver('Pinned').create(props('img-basev1', { BaseImageVersion: '1.0' }))).status).toBe('SUCCESS');
  });
});

/**
 * Issue 11: CloudFormation and the service as they really behave. Builds take 10 minutes here, so
 * that CloudFormation can move on while a build still runs.
 */
describe('image handler: rollbacks, cancelled and superseded requests, busy images (issue 11)', () => {
  let env: HandlerEnv;
  let handler: ImageHandler;
  const BUILD_MS = 10 * 60_000;
  /** Delegates to whichever handler is current: a test may swap in one whose client gives up fast. */
  const proxy = { onEvent: (e: any) => handler.onEvent(e), isComplete: (e: any) => handler.isComplete(e) };
  const driver = (logicalResourceId = 'Image') => new LifecycleDriver<ImageProps>({
    handler: proxy, resourceType: ResourceType.IMAGE, logicalResourceId, wait: env.wait, queryIntervalMs: 15_000,
  });
  const imageNames = () => env.emu.snapshot().images.map((i: any) => i.name).sort();
  const latestActiveCode = async (arn: string) => {
    const img = await env.client.send(new GetMicrovmImageCommand({ imageIdentifier: arn }));
    const v = await env.client.send(new GetMicrovmImageVersionCommand({ imageIdentifier: arn, imageVersion: img.latestActiveImageVersion! }));
    return v.codeArtifact?.uri;
  };
  /** Lets every build and delete the emulator runs finish. */
  const drain = () => env.clock.advance(2 * 3600_000);
  const mutations = () => {
    const ops = env.emu.stats().operations;
    return ['CreateMicrovmImage', 'UpdateMicrovmImage', 'DeleteMicrovmImage', 'UpdateMicrovmImageVersion'].reduce((n, o) => n + (ops[o] ?? 0), 0);
  };

  beforeEach(async () => {
    env = await handlerEnv({ delays: { imageBuildInProgress: BUILD_MS } });
    handler = new ImageHandler(env.client, { clock: env.handlerClock });
  });
  afterEach(async () => env.emu.close());

  describe('case 1: the rollback of a failed rename is a no-op, and the renamed image is gone', () => {
    const failures: Array<[string, (d: LifecycleDriver<ImageProps>) => Promise<LifecycleResult>]> = [
      ['its build fails', async (d) => {
        env.emu.faults.failNextBuild({ imageName: 'img-b', reasonCode: 'CONTAINER_BUILD_FAILED' });
        return d.update(props('img-b'));
      }],
      ['its polls are throttled past the retries', async (d) => {
        const patient = handler;
        // A client that gives up after 2 attempts, so that the test need not wait out the SDK's backoff.
        const impatient = new LambdaMicrovmsClient({ endpoint: env.emu.url, region: env.emu.region, credentials: CREDENTIALS, maxAttempts: 2 });
        handler = new ImageHandler(impatient, { clock: env.handlerClock });
        env.emu.faults.operation({ operation: 'ListTags', mode: 'throttle', count: 10 });
        const r = await d.update(props('img-b'));
        handler = patient;
        return r;
      }],
      ['isComplete crashes', (d) => d.update(props('img-b'), { crashIsCompleteOnPoll: 2 })],
      ['the name is taken by an image the stack does not own', async (d) => {
        await driver('Other').create(props('img-b'));
        return d.update(props('img-b'));
      }],
    ];
    test.each(failures)('when %s', async (what, fail) => {
      const d = driver();
      const a = await d.create(props('img-a'));
      const failed = await fail(d);
      expect(failed.status).toBe('FAILED');
      env.emu.faults.clear();
      env.emu.resetStats();
      const back = await d.rollback();
      expect(back.status).toBe('SUCCESS');
      expect(back.physicalResourceId).toBe(a.physicalResourceId);
      expect(d.events.at(-1)).toEqual({ requestType: 'Update', physicalResourceId: a.physicalResourceId });
      // Nothing changed on img-a: no create, no build, no status change.
      expect(env.emu.stats().operations.CreateMicrovmImage ?? 0).toBe(0);
      expect(env.emu.stats().operations.UpdateMicrovmImage ?? 0).toBe(0);
      expect(await latestActiveCode(a.physicalResourceId!)).toBe('s3://assets/code-v1.zip');
      drain();
      if (what.startsWith('the name is taken')) expect(imageNames()).toEqual(['img-a', 'img-b']); // not ours: kept
      else expect(imageNames()).toEqual(['img-a']);
    });
  });

  describe('case 2: a cancelled create leaves nothing, and the next deploy with the same name succeeds', () => {
    test.each(['generated', 'real'] as const)('Delete with the %s physical id while the build runs; the stale waiter runs on', async (id) => {
      const d = driver();
      const waiter = await d.startCreate(props('img-cancel'));
      if (!(waiter instanceof Waiter)) throw new Error(waiter.reason);
      expect(await waiter.poll()).toBeUndefined(); // building
      const deleted = await d.delete({ physicalResourceId: id });
      expect(deleted.status).toBe('SUCCESS');
      expect(deleted.polls).toBeGreaterThan(1); // refused while CREATING ("not yet"), then deleted
      const stale = await waiter.run();
      expect(stale.status).toBe('FAILED');
      expect(stale.reason).toMatch(/superseded|gone|not found/i);
      drain();
      expect(imageNames()).toEqual([]);
      const again = await driver().create(props('img-cancel'));
      expect(again.status).toBe('SUCCESS');
    });
  });

  describe('case 3: a superseded update: what is live is what the stack last asked for', () => {
    test('v1 → v2 (building) → rollback to v1 while v2 builds; the stale v2 waiter stops without acting', async () => {
      const d = driver();
      const created = await d.create(props('img-sup', { BuildTimeoutSeconds: '1800' }));
      const waiter = await d.startUpdate(props('img-sup', { BuildTimeoutSeconds: '1800', CodeUri: 's3://assets/code-v2.zip', KeepVersions: '1' }));
      if (!(waiter instanceof Waiter)) throw new Error(waiter.reason);
      expect(await waiter.poll()).toBeUndefined();
      const back = await d.rollback();
      expect(back.status).toBe('SUCCESS');
      expect(back.data.ImageVersion).toBe('1.0');
      const stale = await waiter.run();
      expect(stale.status).toBe('FAILED');
      expect(stale.reason).toMatch(/superseded/);
      drain();
      expect(await latestActiveCode(created.physicalResourceId!)).toBe('s3://assets/code-v1.zip');
      // The stale waiter pruned nothing (KeepVersions 1 would have deleted 1.0).
      const versions = await env.client.send(new ListMicrovmImageVersionsCommand({ imageIdentifier: created.physicalResourceId }));
      expect(versions.items!.map((v) => v.imageVersion)).toContain('1.0');
    });

    test('the v2 build runs past buildTimeout (40-minute build, 10-minute timeout): the rollback waits for it and v1 stays live', async () => {
      await env.emu.close();
      env = await handlerEnv({ delays: { imageBuildInProgress: 40 * 60_000 } });
      handler = new ImageHandler(env.client, { clock: env.handlerClock });
      const d = driver();
      const v1 = props('img-slow', { BuildTimeoutSeconds: '3000' });
      const created = await d.create(v1);
      expect(created.status).toBe('SUCCESS');
      const timedOut = await d.update({ ...v1, BuildTimeoutSeconds: '600', CodeUri: 's3://assets/code-v2.zip' });
      expect(timedOut.status).toBe('FAILED');
      expect(timedOut.reason).toMatch(/version 2\.0 timed out/);
      const back = await d.rollback();
      expect(back.status).toBe('SUCCESS');
      expect(back.data.ImageVersion).toBe('1.0');
      drain();
      expect(await latestActiveCode(created.physicalResourceId!)).toBe('s3://assets/code-v1.zip');
    });
  });

  test('case 4: a deploy while an abandoned build still runs waits (409 UPDATING), then updates', async () => {
    await env.emu.close();
    env = await handlerEnv({ delays: { imageBuildInProgress: 20 * 60_000 } });
    handler = new ImageHandler(env.client, { clock: env.handlerClock });
    const d = driver();
    const v1 = props('img-busy', { BuildTimeoutSeconds: '3000' });
    const created = await d.create(v1);
    // v2 times out; CloudFormation does not roll back (e.g. --no-rollback): its build runs on.
    expect((await d.update({ ...v1, BuildTimeoutSeconds: '600', CodeUri: 's3://assets/code-v2.zip' })).status).toBe('FAILED');
    const v3 = await d.update({ ...v1, CodeUri: 's3://assets/code-v3.zip' });
    expect(v3.reason).toBeUndefined();
    expect(v3.status).toBe('SUCCESS');
    expect(v3.data.ImageVersion).toBe('3.0');
    drain();
    expect(await latestActiveCode(created.physicalResourceId!)).toBe('s3://assets/code-v3.zip');
  });

  test('case 5: after an isComplete failure the Delete carries the real id and removes the image while its build still runs', async () => {
    const d = driver();
    const failed = await d.create(props('img-late', { BuildTimeoutSeconds: '60' }));
    expect(failed.status).toBe('FAILED');
    expect(failed.physicalResourceId).toMatch(/:microvm-image:img-late$/);
    env.emu.resetStats();
    const deleted = await d.delete();
    expect(deleted.status).toBe('SUCCESS');
    // Case 6: refused with the recorded 400 while CREATING, asked again until the build ended.
    expect(env.emu.stats().operations.DeleteMicrovmImage).toBeGreaterThan(1);
    drain();
    expect(imageNames()).toEqual([]);
  });

  test('case 6: a delete refused while MicroVMs are still TERMINATING is asked again', async () => {
    const d = driver();
    const created = await d.create(props('img-vms', { TerminateMicroVmsOnDelete: 'true' }));
    drain();
    await env.client.send(new RunMicrovmCommand({ imageIdentifier: created.physicalResourceId }));
    env.emu.resetStats();
    const deleted = await d.delete();
    expect(deleted.status).toBe('SUCCESS');
    expect(imageNames()).toEqual([]);
    expect(mutations()).toBeGreaterThanOrEqual(1);
  });

  test('case 2 with a crash: an onEvent replayed after its call reached the service creates once, and the cancel removes it', async () => {
    const d = driver();
    const waiter = await d.startCreate(props('img-replay2'), { crash: 'afterService' });
    expect(waiter).toBeInstanceOf(Waiter);
    expect(imageNames()).toEqual(['img-replay2']);
    expect((await d.delete({ physicalResourceId: 'generated' })).status).toBe('SUCCESS');
    drain();
    expect(imageNames()).toEqual([]);
  });
});
