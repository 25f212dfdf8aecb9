import {
  DeleteMicrovmImageVersionCommand,
  GetMicrovmImageVersionCommand,
  ListMicrovmImageVersionsCommand,
  ListTagsCommand,
  RunMicrovmCommand,
  TerminateMicrovmCommand,
  UpdateMicrovmImageCommand,
} from '@aws-sdk/client-lambda-microvms';
import { handlerEnv, HandlerEnv } from './support/handler-env';
import { imageProps, ImageWire, TEST_ACCOUNT } from './support/image-props';
import { LifecycleDriver, Waiter } from './support/lifecycle-driver';
import { ImageHandler } from '../lambda/image/image-handler';
import { pinnedVersions } from '../lambda/image/pins';
import { compareVersions, pruneImageVersions } from '../lambda/image/prune';
import { ImageVersionHandler } from '../lambda/image-version/image-version-handler';
import { ROUND_MS } from '../lambda/shared/framework';
import { ImageVersionProps, PIN_TAG_PREFIX, ResourceType } from '../src/private/wire';

const ACCOUNT = TEST_ACCOUNT;
const STACK_ID = `arn:aws:cloudformation:us-east-1:${ACCOUNT}:stack/VersionsStack/7b3c2a10-0000-4000-8000-000000000001`;

describe('image version handler against the emulator', () => {
  let env: HandlerEnv;
  let images: ImageHandler;
  let handler: ImageVersionHandler;
  const imageDriver = () => new LifecycleDriver<ImageWire>({
    handler: images, resourceType: ResourceType.IMAGE, logicalResourceId: 'Image', stackId: STACK_ID, wait: env.wait,
  });
  const versionDriver = (logicalResourceId = 'ImageCurrentVersion') => new LifecycleDriver<ImageVersionProps>({
    handler, resourceType: ResourceType.IMAGE_VERSION, logicalResourceId, stackId: STACK_ID, wait: env.wait,
  });
  const vprops = (imageArn: string, imageVersion: string, extra: Partial<ImageVersionProps> = {}): ImageVersionProps =>
    ({ ImageArn: imageArn, ImageVersion: imageVersion, Status: 'ACTIVE', RemovalPolicy: 'retain', ...extra });
  const versions = async (arn: string) =>
    (await env.client.send(new ListMicrovmImageVersionsCommand({ imageIdentifier: arn }))).items!
      .map((v) => `${v.imageVersion}:${v.state}:${v.status}`).sort((a, b) => compareVersions(a.split(':')[0], b.split(':')[0]));
  const tags = async (arn: string) => (await env.client.send(new ListTagsCommand({ Resource: arn }))).Tags ?? {};
  const pins = async (arn: string) => [...pinnedVersions(await tags(arn))].sort(compareVersions);
  const getVersion = (arn: string, v: string) => env.client.send(new GetMicrovmImageVersionCommand({ imageIdentifier: arn, imageVersion: v }));
  /** Creates an image and builds `count` versions (1.0 … count.0). */
  async function imageWithVersions(name: string, count: number, extra: Partial<ImageWire> = {}) {
    const d = imageDriver();
    const created = await d.create(imageProps(name, extra));
    expect(created.status).toBe('SUCCESS');
    for (let i = 2; i <= count; i++) {
      const r = await d.update(imageProps(name, { ...extra, CodeUri: `s3://assets/code-v${i}.zip` }));
      expect(r.status).toBe('SUCCESS');
    }
    return { d, arn: created.physicalResourceId! };
  }

  beforeEach(async () => {
    env = await handlerEnv();
    images = new ImageHandler(env.client, { clock: env.handlerClock });
    handler = new ImageVersionHandler(env.client, { clock: env.handlerClock });
  });
  afterEach(async () => env.emu.close());

  test('create adopts a built version: attributes, and a pin tag on the image', async () => {
    const { arn } = await imageWithVersions('iv-create', 1);
    const r = await versionDriver().create(vprops(arn, '1.0'));
    expect(r.status).toBe('SUCCESS');
    expect(r.physicalResourceId).toBe(`${arn}:1.0`);
    expect(r.data).toEqual({
      ImageArn: arn,
      ImageVersion: '1.0',
      ImageVersionArn: `${arn}:1.0`,
      VersionState: 'SUCCESSFUL',
      VersionStatus: 'ACTIVE',
      BuildIds: expect.stringMatching(/^[0-9a-f-]{36},[0-9a-f-]{36}$/),
      MemorySnapshotSizeBytes: expect.stringMatching(/^[1-9]\d*$/),
      DiskSnapshotSizeBytes: expect.stringMatching(/^[1-9]\d*$/),
      CodeInstallSizeBytes: expect.stringMatching(/^[1-9]\d*$/),
    });
    const t = await tags(arn);
    const pinKeys = Object.keys(t).filter((k) => k.startsWith(PIN_TAG_PREFIX));
    expect(pinKeys).toEqual([expect.stringMatching(/^cdk-lambda-microvms:pinned:1\.0:[0-9a-f]{10}$/)]);
    expect(t[pinKeys[0]]).toMatch(/^VersionsStack\/ImageCurrentVersion@[0-9a-f]{16}$/); // who pins, @ the request that pinned last (the fence)
  });

  test('create waits for a version that is still building', async () => {
    const d = imageDriver();
    const created = await d.create(imageProps('iv-wait'));
    // Start a build outside the image resource and adopt its version while it builds.
    await env.client.send(new UpdateMicrovmImageCommand({
      imageIdentifier: created.physicalResourceId,
      baseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
      buildRoleArn: `arn:aws:iam::${ACCOUNT}:role/build`,
      codeArtifact: { uri: 's3://assets/code-v2.zip' },
    }));
    const started = env.clock.now();
    const r = await versionDriver().create(vprops(created.physicalResourceId!, '2.0'));
    expect(r.status).toBe('SUCCESS');
    // The 3 s build, waited for within the first isComplete call and answered within a round of its end.
    expect(r.polls).toBe(1);
    expect(env.clock.now() - started).toBeGreaterThanOrEqual(3000);
    expect(env.clock.now() - started).toBeLessThanOrEqual(3000 + ROUND_MS);
    expect(r.data.VersionState).toBe('SUCCESSFUL');
  });

  test('the pinned version keeps serving while the image moves on; user tag updates leave pins alone', async () => {
    const { d, arn } = await imageWithVersions('iv-pin', 1, { Tags: { team: 'a' } });
    const pinned = versionDriver('Pinned');
    expect((await pinned.create(vprops(arn, '1.0'))).status).toBe('SUCCESS');
    // currentVersion follows the image: physical id <arn>:<version>.
    const current = versionDriver('ImageCurrentVersion');
    expect((await current.create(vprops(arn, '1.0'))).status).toBe('SUCCESS');

    const moved = await d.update(imageProps('iv-pin', { Tags: { team: 'b', env: 'prod' }, CodeUri: 's3://assets/code-v2.zip' }));
    expect(moved.data.ImageVersion).toBe('2.0');
    const next = await current.update(vprops(arn, '2.0'));
    expect(next.status).toBe('SUCCESS');
    expect(next.physicalResourceId).toBe(`${arn}:2.0`);
    // The driver ran the cleanup Delete of <arn>:1.0: RETAIN keeps the version, only its pin is gone.
    expect(current.events.map((e) => e.requestType)).toEqual(['Create', 'Update', 'Delete']);

    expect(await versions(arn)).toEqual(['1.0:SUCCESSFUL:ACTIVE', '2.0:SUCCESSFUL:ACTIVE']);
    expect(await pins(arn)).toEqual(['1.0', '2.0']); // 1.0 still pinned by 'Pinned'
    const t = await tags(arn);
    expect(Object.keys(t).filter((k) => k.startsWith(PIN_TAG_PREFIX))).toHaveLength(2);
    expect(t.team).toBe('b');
    expect(t.env).toBe('prod');
    // The pinned version still launches MicroVMs.
    const vm = await env.client.send(new RunMicrovmCommand({ imageIdentifier: arn, imageVersion: '1.0' }));
    expect(vm.imageVersion).toBe('1.0');
  });

  test('status flips in place: INACTIVE blocks launches, ACTIVE allows them again', async () => {
    const { arn } = await imageWithVersions('iv-status', 2);
    const v = versionDriver();
    expect((await v.create(vprops(arn, '1.0'))).status).toBe('SUCCESS');

    const off = await v.update(vprops(arn, '1.0', { Status: 'INACTIVE' }));
    expect(off.status).toBe('SUCCESS');
    expect(off.physicalResourceId).toBe(`${arn}:1.0`);
    expect(off.data.VersionStatus).toBe('INACTIVE');
    expect((await getVersion(arn, '1.0')).status).toBe('INACTIVE');
    await expect(env.client.send(new RunMicrovmCommand({ imageIdentifier: arn, imageVersion: '1.0' }))).rejects.toThrow(/INACTIVE/);

    const on = await v.update(vprops(arn, '1.0', { Status: 'ACTIVE' }));
    expect(on.data.VersionStatus).toBe('ACTIVE');
    expect((await env.client.send(new RunMicrovmCommand({ imageIdentifier: arn, imageVersion: '1.0' }))).imageVersion).toBe('1.0');
    expect(v.events.map((e) => e.requestType)).toEqual(['Create', 'Update', 'Update']);
  });

  test('create with status INACTIVE sets it once the version is built', async () => {
    const { arn } = await imageWithVersions('iv-inactive', 2);
    const r = await versionDriver().create(vprops(arn, '1.0', { Status: 'INACTIVE' }));
    expect(r.data.VersionStatus).toBe('INACTIVE');
    expect(await versions(arn)).toEqual(['1.0:SUCCESSFUL:INACTIVE', '2.0:SUCCESSFUL:ACTIVE']);
  });

  test('rollback of a failed image update leaves the pinned version serving', async () => {
    const { d, arn } = await imageWithVersions('iv-rollback', 1);
    const current = versionDriver();
    expect((await current.create(vprops(arn, '1.0'))).status).toBe('SUCCESS');

    env.emu.faults.failNextBuild({ imageName: 'iv-rollback', reasonCode: 'CONTAINER_BUILD_FAILED' });
    const bad = await d.update(imageProps('iv-rollback', { CodeUri: 's3://assets/code-v2.zip' }));
    expect(bad.status).toBe('FAILED');
    // CloudFormation stops at the image: the version resource is never updated. Rolling back:
    const back = await d.rollback();
    expect(back.status).toBe('SUCCESS');
    expect(back.data.ImageVersion).toBe('1.0');

    expect(current.physicalResourceId).toBe(`${arn}:1.0`);
    expect(await pins(arn)).toEqual(['1.0']);
    expect(await versions(arn)).toEqual(['1.0:SUCCESSFUL:ACTIVE', '2.0:FAILED:ACTIVE']);
    expect((await env.client.send(new RunMicrovmCommand({ imageIdentifier: arn, imageVersion: '1.0' }))).imageVersion).toBe('1.0');
  });

  test('adopting a FAILED version fails with each build\'s reason and leaves no pin', async () => {
    const { d, arn } = await imageWithVersions('iv-failed', 1);
    env.emu.faults.failNextBuild({ imageName: 'iv-failed', reasonCode: 'ARCHIVE_DOCKERFILE_NOT_FOUND' });
    expect((await d.update(imageProps('iv-failed', { CodeUri: 's3://assets/code-v2.zip' }))).status).toBe('FAILED');
    const v = versionDriver('Pinned');
    const r = await v.create(vprops(arn, '2.0'));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/MicroVM image version 2\.0 of .*iv-failed FAILED: /);
    expect(r.reason).toMatch(/build [0-9a-f-]{36} \(ARM_64 gen \d\) FAILED: ARCHIVE_DOCKERFILE_NOT_FOUND/);
    expect(r.reason!.match(/ARCHIVE_DOCKERFILE_NOT_FOUND/g)!.length).toBeGreaterThanOrEqual(2); // both builds
    expect(await pins(arn)).toEqual([]);
    // isComplete failed: the framework answers with the real id and the rollback's Delete comes;
    // the version was never adopted (no pin), so it is left in place.
    const deleted = await v.delete();
    expect(deleted.status).toBe('SUCCESS');
    expect(deleted.polls).toBe(1);
    expect(await pins(arn)).toEqual([]);
  });

  test('adopting a version that does not exist fails clearly and leaves no pin', async () => {
    const { arn } = await imageWithVersions('iv-missing', 1);
    const r = await versionDriver().create(vprops(arn, '9.0'));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/version 9\.0 of .*iv-missing does not exist.*Pass an `imageVersion` the image has/);
    expect(await pins(arn)).toEqual([]);
  });

  test('adopting a version of an image that does not exist fails clearly', async () => {
    const r = await versionDriver().create(vprops(`arn:aws:lambda:us-east-1:${ACCOUNT}:microvm-image:nope`, '1.0'));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/MicroVM image .*:nope does not exist/);
  });

  test('DESTROY deletes the version and waits until it is gone', async () => {
    const { arn } = await imageWithVersions('iv-destroy', 2);
    const v = versionDriver();
    await v.create(vprops(arn, '1.0', { RemovalPolicy: 'destroy' }));
    const started = env.clock.now();
    const r = await v.delete();
    expect(r.status).toBe('SUCCESS');
    expect(r.polls).toBe(1); // DELETING for 1 s, waited for within the first isComplete call
    expect(env.clock.now() - started).toBeGreaterThanOrEqual(1000);
    expect(await versions(arn)).toEqual(['2.0:SUCCESSFUL:ACTIVE']);
    expect(await pins(arn)).toEqual([]);
  });

  test('RETAIN keeps the version and releases the pin', async () => {
    const { arn } = await imageWithVersions('iv-retain', 2);
    const v = versionDriver();
    await v.create(vprops(arn, '1.0'));
    const r = await v.delete();
    expect(r).toMatchObject({ status: 'SUCCESS', polls: 1 });
    expect(await versions(arn)).toEqual(['1.0:SUCCESSFUL:ACTIVE', '2.0:SUCCESSFUL:ACTIVE']);
    expect(await pins(arn)).toEqual([]);
  });

  test('delete of an already deleted version succeeds (twice)', async () => {
    const { arn } = await imageWithVersions('iv-gone', 2);
    const v = versionDriver();
    await v.create(vprops(arn, '1.0', { RemovalPolicy: 'destroy' }));
    await env.client.send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: arn, imageVersion: '1.0' }));
    expect((await v.delete()).status).toBe('SUCCESS'); // while DELETING
    env.clock.advance(60_000);
    expect((await v.delete()).status).toBe('SUCCESS'); // once gone
    expect(await versions(arn)).toEqual(['2.0:SUCCESSFUL:ACTIVE']);
  });

  test('delete after the image itself is gone succeeds', async () => {
    const { d, arn } = await imageWithVersions('iv-noimage', 1);
    const v = versionDriver();
    await v.create(vprops(arn, '1.0', { RemovalPolicy: 'destroy' }));
    expect((await d.delete()).status).toBe('SUCCESS');
    expect((await v.delete()).status).toBe('SUCCESS');
  });

  test('DESTROY of a version the service refuses to delete succeeds and leaves it (in use; last version)', async () => {
    const { arn } = await imageWithVersions('iv-refused', 2);
    const inUse = versionDriver('InUse');
    await inUse.create(vprops(arn, '1.0', { RemovalPolicy: 'destroy' }));
    const vm = await env.client.send(new RunMicrovmCommand({ imageIdentifier: arn, imageVersion: '1.0' }));
    const r = await inUse.delete();
    expect(r).toMatchObject({ status: 'SUCCESS', polls: 1 });
    expect(await versions(arn)).toEqual(['1.0:SUCCESSFUL:ACTIVE', '2.0:SUCCESSFUL:ACTIVE']);
    expect(await pins(arn)).toEqual([]); // released, so keepVersions prunes it once the MicroVM is gone

    await env.client.send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    env.clock.advance(60_000);
    await env.client.send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: arn, imageVersion: '1.0' }));
    env.clock.advance(60_000);
    const last = versionDriver('Last');
    await last.create(vprops(arn, '2.0', { RemovalPolicy: 'destroy' }));
    expect((await last.delete()).status).toBe('SUCCESS');
    expect(await versions(arn)).toEqual(['2.0:SUCCESSFUL:ACTIVE']);
  });

  test('keepVersions prunes exactly the oldest free versions, never pinned, in-use, or latest active ones', async () => {
    // 1.0 pinned, 2.0 runs a MicroVM, 3.0 free, 4.0 FAILED, 5.0 free; no pruning yet.
    const { d, arn } = await imageWithVersions('iv-prune', 3);
    const pinned = versionDriver('Pinned');
    await pinned.create(vprops(arn, '1.0'));
    const vm = await env.client.send(new RunMicrovmCommand({ imageIdentifier: arn, imageVersion: '2.0' }));
    env.emu.faults.failNextBuild({ imageName: 'iv-prune', reasonCode: 'CONTAINER_BUILD_FAILED' });
    expect((await d.update(imageProps('iv-prune', { CodeUri: 's3://assets/code-v4.zip' }))).status).toBe('FAILED');
    expect((await d.rollback()).status).toBe('SUCCESS');
    expect((await d.update(imageProps('iv-prune', { CodeUri: 's3://assets/code-v5.zip' }))).status).toBe('SUCCESS');
    expect(await versions(arn)).toHaveLength(5);

    // The deploy that sets keepVersions 2 builds 6.0 and prunes 3.0, 4.0 and 5.0.
    const r = await d.update(imageProps('iv-prune', { CodeUri: 's3://assets/code-v6.zip', KeepVersions: '2' }));
    expect(r.status).toBe('SUCCESS');
    expect(r.data.ImageVersion).toBe('6.0');
    env.clock.advance(60_000);
    expect(await versions(arn)).toEqual(['1.0:SUCCESSFUL:ACTIVE', '2.0:SUCCESSFUL:ACTIVE', '6.0:SUCCESSFUL:ACTIVE']);

    // Pin released and MicroVM terminated: the next update (tags only, no build) prunes 1.0 only.
    await pinned.delete();
    await env.client.send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    env.clock.advance(60_000);
    const again = await d.update(imageProps('iv-prune', { CodeUri: 's3://assets/code-v6.zip', KeepVersions: '2', Tags: { t: '1' } }));
    expect(again.status).toBe('SUCCESS');
    env.clock.advance(60_000);
    expect(await versions(arn)).toEqual(['2.0:SUCCESSFUL:ACTIVE', '6.0:SUCCESSFUL:ACTIVE']);
  });

  test('keepVersions 1 with currentVersion: the old version is pruned on the update after the stack moved on', async () => {
    const { d, arn } = await imageWithVersions('iv-current', 1, { KeepVersions: '1' });
    const current = versionDriver();
    await current.create(vprops(arn, '1.0'));
    for (const [code, version] of [['v2', '2.0'], ['v3', '3.0']]) {
      const r = await d.update(imageProps('iv-current', { CodeUri: `s3://assets/code-${code}.zip`, KeepVersions: '1' }));
      expect(r.data.ImageVersion).toBe(version);
      expect((await current.update(vprops(arn, version))).status).toBe('SUCCESS');
      env.clock.advance(60_000);
    }
    // During the 3.0 deploy, 1.0 (released) was pruned and 2.0 was still pinned by the old resource.
    expect(await versions(arn)).toEqual(['2.0:SUCCESSFUL:ACTIVE', '3.0:SUCCESSFUL:ACTIVE']);
    expect(await pins(arn)).toEqual(['3.0']);
  });

  test('pruning never fails the deploy: errors are logged and retried on the next update', async () => {
    const { arn } = await imageWithVersions('iv-prune-err', 3);
    env.emu.faults.operation({ operation: 'ListMicrovmImageVersions', mode: 'error', errorType: 'AccessDeniedException', status: 403, count: 1 });
    const r = await pruneImageVersions(env.client, arn, 1, ['3.0']);
    expect(r).toEqual({ deleted: [], kept: {} });
    expect(await versions(arn)).toHaveLength(3);
    const ok = await pruneImageVersions(env.client, arn, 1, ['3.0']);
    expect(ok.deleted).toEqual(['1.0', '2.0']);
  });

  test('versions compare numerically', () => {
    expect(['10.0', '2.0', '1.1', '1.0'].sort(compareVersions)).toEqual(['1.0', '1.1', '2.0', '10.0']);
  });

  describe('issue 11: cancelled creates, busy images, rollbacks, strict wire', () => {
    test('case 2: a create cancelled while the version builds releases its pin; the stale waiter stops without acting', async () => {
      const d = imageDriver();
      const imageWaiter = await d.startCreate(imageProps('iv-cancel'));
      if (!(imageWaiter instanceof Waiter)) throw new Error(imageWaiter.reason);
      const arn = imageWaiter.physicalResourceId;
      const v = versionDriver('Pinned');
      const waiter = await v.startCreate(vprops(arn, '1.0', { Status: 'INACTIVE' }));
      if (!(waiter instanceof Waiter)) throw new Error(waiter.reason);
      expect(await pins(arn)).toEqual(['1.0']);
      env.emu.faults.hold(arn); // the build outlasts one isComplete call
      expect(await waiter.poll()).toBeUndefined(); // PENDING / IN_PROGRESS
      env.emu.faults.release(arn);
      const deleted = await v.delete({ physicalResourceId: 'generated' });
      expect(deleted.status).toBe('SUCCESS');
      expect(await pins(arn)).toEqual([]);
      env.clock.advance(60_000); // the build ends
      const stale = await waiter.run();
      expect(stale.status).toBe('FAILED');
      expect(stale.reason).toMatch(/superseded.*pin tag was released/);
      expect((await getVersion(arn, '1.0')).status).toBe('ACTIVE'); // the stale waiter did not set INACTIVE
    });

    test('case 6: a status change while the image rebuilds (409 "already in state: UPDATING") waits, then applies', async () => {
      const { d, arn } = await imageWithVersions('iv-busy', 1);
      const v = versionDriver();
      expect((await v.create(vprops(arn, '1.0'))).status).toBe('SUCCESS');
      const rebuild = await d.startUpdate(imageProps('iv-busy', { CodeUri: 's3://assets/code-v2.zip' }));
      expect(rebuild).toBeInstanceOf(Waiter);
      env.emu.resetStats();
      const r = await v.update(vprops(arn, '1.0', { Status: 'INACTIVE' }));
      expect(r.status).toBe('SUCCESS');
      expect(r.data.VersionStatus).toBe('INACTIVE');
      expect(env.emu.stats().operations.UpdateMicrovmImageVersion).toBeGreaterThan(1); // refused first
    });

    test('the rollback of a failed replacement releases the pin the replacement set', async () => {
      const { arn } = await imageWithVersions('iv-replace', 2);
      const v = versionDriver();
      expect((await v.create(vprops(arn, '1.0'))).status).toBe('SUCCESS');
      const failed = await v.update(vprops(arn, '2.0', { Status: 'BOGUS' as any }), {});
      expect(failed.status).toBe('FAILED');
      const crashed = await v.update(vprops(arn, '2.0'), { crashIsCompleteOnPoll: 1 });
      expect(crashed.status).toBe('FAILED');
      expect(await pins(arn)).toEqual(['1.0', '2.0']);
      expect((await v.rollback()).status).toBe('SUCCESS');
      expect(await pins(arn)).toEqual(['1.0']);
    });

    test('case 10: a malformed Status or RemovalPolicy names the property and the version mismatch', async () => {
      const { arn } = await imageWithVersions('iv-wire', 1);
      const r = await versionDriver().create(vprops(arn, '1.0', { Status: 'active' }));
      expect(r.status).toBe('FAILED');
      expect(r.reason).toMatch(/property Status is "active", expected one of ACTIVE, INACTIVE: the construct and handler versions differ/);
      const p = await versionDriver('Other').create(vprops(arn, '1.0', { RemovalPolicy: '' }));
      expect(p.reason).toMatch(/property RemovalPolicy is "", expected one of destroy, retain/);
      expect(await pins(arn)).toEqual([]);
    });
  });
});
