import {
  CreateMicrovmImageCommand, DeleteMicrovmImageCommand, DeleteMicrovmImageVersionCommand, GetMicrovmImageBuildCommand, GetMicrovmImageCommand,
  GetMicrovmImageVersionCommand, ListManagedMicrovmImagesCommand, ListManagedMicrovmImageVersionsCommand, ListMicrovmImageBuildsCommand,
  ListMicrovmImagesCommand, ListMicrovmImageVersionsCommand, RunMicrovmCommand, TerminateMicrovmCommand, UpdateMicrovmImageCommand,
  UpdateMicrovmImageVersionCommand,
} from '@aws-sdk/client-lambda-microvms';
import { Env, errorOf, imageInput, setup } from './helpers';

let env: Env;
beforeAll(async () => { env = await setup({ faults: true, rateLimits: false }); });
afterAll(async () => { await env.emu.close(); });
beforeEach(() => env.emu.reset());

const send = (cmd: any) => env.client.send(cmd) as Promise<any>;

describe('image lifecycle', () => {
  test('create → CREATING, version 1.0 PENDING → IN_PROGRESS → SUCCESSFUL, image CREATED with latestActive', async () => {
    const created = await send(new CreateMicrovmImageCommand(imageInput('app', { tags: { team: 'a' } })));
    expect(created.$metadata.httpStatusCode).toBe(201);
    expect(created).toMatchObject({ state: 'CREATING', imageVersion: '1.0', name: 'app', baseImageVersion: '1.0', imageArn: 'arn:aws:lambda:us-east-1:123456789012:microvm-image:app', tags: { team: 'a' } });
    expect(created.latestActiveImageVersion).toBeUndefined();
    expect(created.resources).toEqual([{ minimumMemoryInMiB: 2048 }]);
    expect(created.egressNetworkConnectors).toEqual(['arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS']);
    const states: string[] = [];
    for (let i = 0; i < 4; i++) {
      states.push((await send(new GetMicrovmImageVersionCommand({ imageIdentifier: created.imageArn, imageVersion: '1.0' }))).state);
      env.clock.advance(1000);
    }
    expect(states).toEqual(['PENDING', 'IN_PROGRESS', 'IN_PROGRESS', 'SUCCESSFUL']);
    const img = await send(new GetMicrovmImageCommand({ imageIdentifier: created.imageArn }));
    expect(img).toMatchObject({ state: 'CREATED', latestActiveImageVersion: '1.0', tags: { team: 'a' } });
    expect(img.createdAt).toBeInstanceOf(Date);
    const byName = await send(new GetMicrovmImageCommand({ imageIdentifier: 'app' }));
    expect(byName.imageArn).toBe(created.imageArn);
  });

  test('builds: two Graviton builds per version with snapshot sizes once successful', async () => {
    const created = await send(new CreateMicrovmImageCommand(imageInput('builds')));
    env.clock.advance(3000);
    const builds = await send(new ListMicrovmImageBuildsCommand({ imageIdentifier: created.imageArn, imageVersion: '1.0' }));
    expect(builds.items.map((b: any) => [b.architecture, b.chipset, b.chipsetGeneration, b.buildState])).toEqual([['ARM_64', 'GRAVITON', '4', 'SUCCESSFUL'], ['ARM_64', 'GRAVITON', '3', 'SUCCESSFUL']]);
    const b = await send(new GetMicrovmImageBuildCommand({ imageIdentifier: created.imageArn, imageVersion: '1.0', buildId: builds.items[0].buildId }));
    expect(b.snapshotBuild.memorySnapshotSizeInBytes).toBeGreaterThan(0);
    const missing = await errorOf(send(new GetMicrovmImageBuildCommand({ imageIdentifier: created.imageArn, imageVersion: '1.0', buildId: 'nope' })));
    expect(missing.name).toBe('ResourceNotFoundException');
  });

  test('failed build carries the reason code on the build and "one or more builds failed" on the version', async () => {
    env.emu.faults.failNextBuild({ imageName: 'broken', reasonCode: 'CONTAINER_BUILD_FAILED' });
    const created = await send(new CreateMicrovmImageCommand(imageInput('broken')));
    env.clock.advance(3000);
    const img = await send(new GetMicrovmImageCommand({ imageIdentifier: created.imageArn }));
    expect(img).toMatchObject({ state: 'CREATE_FAILED', latestFailedImageVersion: '1.0' });
    expect(img.latestActiveImageVersion).toBeUndefined();
    const ver = await send(new GetMicrovmImageVersionCommand({ imageIdentifier: created.imageArn, imageVersion: '1.0' }));
    expect(ver).toMatchObject({ state: 'FAILED', stateReason: 'one or more builds failed' });
    const builds = await send(new ListMicrovmImageBuildsCommand({ imageIdentifier: created.imageArn, imageVersion: '1.0' }));
    expect(builds.items[0]).toMatchObject({ buildState: 'FAILED', stateReason: 'CONTAINER_BUILD_FAILED: The container image build failed.' });
    const run = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: created.imageArn })));
    expect(run.name).toBe('ResourceNotFoundException');
  });

  test('update → UPDATING 2.0 → UPDATED; a failed update leaves latestActive on the previous version and the image runnable', async () => {
    const created = await send(new CreateMicrovmImageCommand(imageInput('upd')));
    env.clock.advance(3000);
    const upd = await send(new UpdateMicrovmImageCommand({ imageIdentifier: created.imageArn, baseImageArn: created.baseImageArn, buildRoleArn: created.buildRoleArn, codeArtifact: { uri: 's3://bucket/v2.zip' }, description: 'v2' }));
    expect(upd).toMatchObject({ state: 'UPDATING', imageVersion: '2.0', latestActiveImageVersion: '1.0', description: 'v2' });
    const busy = await errorOf(send(new UpdateMicrovmImageCommand({ imageIdentifier: created.imageArn, baseImageArn: created.baseImageArn, buildRoleArn: created.buildRoleArn, codeArtifact: { uri: 's3://bucket/v3.zip' } })));
    expect(busy.name).toBe('ConflictException');
    env.clock.advance(3000);
    expect(await send(new GetMicrovmImageCommand({ imageIdentifier: 'upd' }))).toMatchObject({ state: 'UPDATED', latestActiveImageVersion: '2.0' });

    env.emu.faults.failNextBuild({ imageName: 'upd', reasonCode: 'S3_NO_SUCH_KEY', message: 'no such key' });
    await send(new UpdateMicrovmImageCommand({ imageIdentifier: 'upd', baseImageArn: created.baseImageArn, buildRoleArn: created.buildRoleArn, codeArtifact: { uri: 's3://bucket/v3.zip' } }));
    env.clock.advance(3000);
    expect(await send(new GetMicrovmImageCommand({ imageIdentifier: 'upd' }))).toMatchObject({ state: 'UPDATE_FAILED', latestActiveImageVersion: '2.0', latestFailedImageVersion: '3.0' });
    const b = await send(new ListMicrovmImageBuildsCommand({ imageIdentifier: 'upd', imageVersion: '3.0' }));
    expect(b.items[0].stateReason).toBe('S3_NO_SUCH_KEY: no such key');
    const vm = await send(new RunMicrovmCommand({ imageIdentifier: created.imageArn }));
    expect(vm.imageVersion).toBe('2.0');
    const versions = await send(new ListMicrovmImageVersionsCommand({ imageIdentifier: 'upd' }));
    expect(versions.items.map((v: any) => `${v.imageVersion}:${v.state}:${v.status}`)).toEqual(['1.0:SUCCESSFUL:ACTIVE', '2.0:SUCCESSFUL:ACTIVE', '3.0:FAILED:ACTIVE']);
  });

  test('UpdateMicrovmImage rejects the service-resolved baseImageVersion echo but accepts an explicit version', async () => {
    const created = await send(new CreateMicrovmImageCommand(imageInput('echo')));
    env.clock.advance(3000);
    const v = await send(new GetMicrovmImageVersionCommand({ imageIdentifier: 'echo', imageVersion: '1.0' }));
    expect(v.baseImageVersion).toBe('1.0');
    const echo = await errorOf(send(new UpdateMicrovmImageCommand({ imageIdentifier: 'echo', baseImageArn: created.baseImageArn, buildRoleArn: BUILD(), codeArtifact: { uri: 's3://b/k.zip' }, baseImageVersion: v.baseImageVersion })));
    expect(echo.name).toBe('ValidationException');
    expect(echo.$metadata.httpStatusCode).toBe(400);
    expect(echo.message).toMatch(/resolved by the service/);
    const explicit = await send(new UpdateMicrovmImageCommand({ imageIdentifier: 'echo', baseImageArn: created.baseImageArn, buildRoleArn: BUILD(), codeArtifact: { uri: 's3://b/k.zip' }, baseImageVersion: '0' }));
    expect(explicit.baseImageVersion).toBe('0.0');
    env.clock.advance(3000);
    // The previous request specified a version itself, so repeating it is fine.
    const again = await send(new UpdateMicrovmImageCommand({ imageIdentifier: 'echo', baseImageArn: created.baseImageArn, buildRoleArn: BUILD(), codeArtifact: { uri: 's3://b/k.zip' }, baseImageVersion: '0.0' }));
    expect(again.imageVersion).toBe('3.0');
    env.clock.advance(3000);
    const bogus = await errorOf(send(new UpdateMicrovmImageCommand({ imageIdentifier: 'echo', baseImageArn: created.baseImageArn, buildRoleArn: BUILD(), codeArtifact: { uri: 's3://b/k.zip' }, baseImageVersion: '9' })));
    expect(bogus.name).toBe('ValidationException');
  });

  test('duplicate names: 409 while the image exists, 400 "already exists" while it is being deleted, free afterwards', async () => {
    await send(new CreateMicrovmImageCommand(imageInput('dup')));
    const dup = await errorOf(send(new CreateMicrovmImageCommand(imageInput('dup'))));
    expect([dup.name, dup.$metadata.httpStatusCode]).toEqual(['ConflictException', 409]);
    env.clock.advance(3000);
    const del = await send(new DeleteMicrovmImageCommand({ imageIdentifier: 'dup' }));
    expect(del.state).toBe('DELETING');
    const during = await errorOf(send(new CreateMicrovmImageCommand(imageInput('dup'))));
    expect([during.name, during.$metadata.httpStatusCode]).toEqual(['ValidationException', 400]);
    expect(during.message).toMatch(/already exists/);
    expect((await send(new DeleteMicrovmImageCommand({ imageIdentifier: 'dup' }))).state).toBe('DELETING');
    env.clock.advance(1000);
    const gone = await errorOf(send(new GetMicrovmImageCommand({ imageIdentifier: 'dup' })));
    expect(gone.name).toBe('ResourceNotFoundException');
    const again = await errorOf(send(new DeleteMicrovmImageCommand({ imageIdentifier: 'dup' })));
    expect([again.name, again.$metadata.httpStatusCode]).toEqual(['ResourceNotFoundException', 404]);
    expect((await send(new CreateMicrovmImageCommand(imageInput('dup')))).state).toBe('CREATING');
  });

  test('delete rules, as recorded: 400 naming the state while a build runs or a version delete drains, 400 while MicroVMs are not TERMINATED', async () => {
    const created = await send(new CreateMicrovmImageCommand(imageInput('del')));
    const refusal = async () => {
      const e = await errorOf(send(new DeleteMicrovmImageCommand({ imageIdentifier: created.imageArn })));
      return [e.name, e.$metadata.httpStatusCode, e.message];
    };
    expect(await refusal()).toEqual(['ValidationException', 400, 'Cannot delete MicroVM image in its current state: CREATING']);
    env.clock.advance(3000);
    const vm = await send(new RunMicrovmCommand({ imageIdentifier: created.imageArn }));
    expect(await refusal()).toEqual(['ValidationException', 400, 'Cannot delete microvm image with running microvms.']);
    await send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    // Termination is asynchronous: TERMINATING still blocks the delete.
    expect(await refusal()).toEqual(['ValidationException', 400, 'Cannot delete microvm image with running microvms.']);
    env.clock.advance(1000);
    const update = () => send(new UpdateMicrovmImageCommand({
      imageIdentifier: created.imageArn,
      baseImageArn: created.baseImageArn,
      buildRoleArn: created.buildRoleArn,
      codeArtifact: created.codeArtifact,
    }));
    await update();
    expect(await refusal()).toEqual(['ValidationException', 400, 'Cannot delete MicroVM image in its current state: UPDATING']);
    const patch = await errorOf(send(new UpdateMicrovmImageVersionCommand({ imageIdentifier: created.imageArn, imageVersion: '1.0', status: 'INACTIVE' })));
    expect([patch.name, patch.$metadata.httpStatusCode, patch.message]).toEqual(['ConflictException', 409, 'MicroVM Image is already in state: UPDATING']);
    env.clock.advance(3000);
    await send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: created.imageArn, imageVersion: '1.0' }));
    // While the version delete drains the image reads UPDATING (recorded: images-lifecycle/image-until-settled).
    expect((await send(new GetMicrovmImageCommand({ imageIdentifier: created.imageArn }))).state).toBe('UPDATING');
    expect(await refusal()).toEqual(['ValidationException', 400, 'Cannot delete MicroVM image in its current state: UPDATING']);
    env.clock.advance(1000);
    expect((await send(new GetMicrovmImageCommand({ imageIdentifier: created.imageArn }))).state).toBe('UPDATED');
    expect((await send(new DeleteMicrovmImageCommand({ imageIdentifier: created.imageArn }))).state).toBe('DELETING');
  });
});

describe('versions', () => {
  test('status toggling, INACTIVE blocks launches, deletion rules', async () => {
    const created = await send(new CreateMicrovmImageCommand(imageInput('ver')));
    env.clock.advance(3000);
    const last = await errorOf(send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: 'ver', imageVersion: '1.0' })));
    expect([last.name, last.$metadata.httpStatusCode]).toEqual(['ConflictException', 409]);
    await send(new UpdateMicrovmImageCommand({ imageIdentifier: 'ver', baseImageArn: created.baseImageArn, buildRoleArn: created.buildRoleArn, codeArtifact: created.codeArtifact }));
    const building = await errorOf(send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: 'ver', imageVersion: '2.0' })));
    expect(building.name).toBe('ConflictException');
    env.clock.advance(3000);

    const inactive = await send(new UpdateMicrovmImageVersionCommand({ imageIdentifier: 'ver', imageVersion: '2.0', status: 'INACTIVE' }));
    expect(inactive).toMatchObject({ status: 'INACTIVE', state: 'SUCCESSFUL', imageVersion: '2.0' });
    expect((await send(new GetMicrovmImageCommand({ imageIdentifier: 'ver' }))).latestActiveImageVersion).toBe('1.0');
    const runInactive = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: created.imageArn, imageVersion: '2.0' })));
    expect([runInactive.name, runInactive.$metadata.httpStatusCode]).toEqual(['ValidationException', 400]);
    const vm = await send(new RunMicrovmCommand({ imageIdentifier: created.imageArn, imageVersion: '1.0' }));
    const inUse = await errorOf(send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: 'ver', imageVersion: '1.0' })));
    expect(inUse.name).toBe('ConflictException');
    await send(new TerminateMicrovmCommand({ microvmIdentifier: vm.microvmId }));
    env.clock.advance(1000);
    const del = await send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: 'ver', imageVersion: '1.0' }));
    expect(del).toMatchObject({ imageVersion: '1.0', state: 'DELETING' });
    expect((await send(new GetMicrovmImageVersionCommand({ imageIdentifier: 'ver', imageVersion: '1.0' }))).state).toBe('DELETING');
    env.clock.advance(1000);
    const gone = await errorOf(send(new GetMicrovmImageVersionCommand({ imageIdentifier: 'ver', imageVersion: '1.0' })));
    expect(gone.name).toBe('ResourceNotFoundException');
    expect(gone.message).toBe('MicroVMImage not found for MicroVMImage: arn:aws:lambda:us-east-1:123456789012:microvm-image:ver, Version: 1.0');
    // No ACTIVE version left: RunMicrovm without a version answers 404 like AWS.
    const none = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: created.imageArn })));
    expect([none.name, none.message]).toEqual(['ResourceNotFoundException', `No active version found for MicroVM image ${created.imageArn}`]);
  });

  test('quotas: 100 images and 50 versions per image → 402 ServiceQuotaExceededException', async () => {
    const small = await setup({ rateLimits: false, imageQuota: 2, versionQuota: 2 });
    try {
      const s = (c: any) => small.client.send(c) as Promise<any>;
      const a = await s(new CreateMicrovmImageCommand(imageInput('q1')));
      await s(new CreateMicrovmImageCommand(imageInput('q2')));
      const e = await errorOf(s(new CreateMicrovmImageCommand(imageInput('q3'))));
      expect([e.name, e.$metadata.httpStatusCode]).toEqual(['ServiceQuotaExceededException', 402]);
      small.clock.advance(3000);
      await s(new UpdateMicrovmImageCommand({ imageIdentifier: 'q1', baseImageArn: a.baseImageArn, buildRoleArn: a.buildRoleArn, codeArtifact: a.codeArtifact }));
      small.clock.advance(3000);
      const v = await errorOf(s(new UpdateMicrovmImageCommand({ imageIdentifier: 'q1', baseImageArn: a.baseImageArn, buildRoleArn: a.buildRoleArn, codeArtifact: a.codeArtifact })));
      expect([v.name, v.$metadata.httpStatusCode]).toEqual(['ServiceQuotaExceededException', 402]);
    } finally {
      await small.emu.close();
    }
  });
});

describe('managed images and listing', () => {
  test('managed AL2023 image with versions 1 and 0', async () => {
    const list = await send(new ListManagedMicrovmImagesCommand({}));
    expect(list.items.map((i: any) => i.imageArn)).toEqual(['arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1']);
    const vs = await send(new ListManagedMicrovmImageVersionsCommand({ imageIdentifier: list.items[0].imageArn }));
    expect(vs.items.map((v: any) => [v.imageVersion, v.status])).toEqual([['1', 'AVAILABLE'], ['0', 'AVAILABLE']]);
    const e = await errorOf(send(new ListManagedMicrovmImageVersionsCommand({ imageIdentifier: 'arn:aws:lambda:us-east-1:aws:microvm-image:nope' })));
    expect(e.name).toBe('ResourceNotFoundException');
    const base = await errorOf(send(new CreateMicrovmImageCommand(imageInput('x', { baseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:nope' }))));
    expect(base.name).toBe('ResourceNotFoundException');
  });

  test('ListMicrovmImages paginates with maxResults / nextToken and filters by name', async () => {
    for (let i = 0; i < 5; i++) await send(new CreateMicrovmImageCommand(imageInput(`page-${i}`)));
    await send(new CreateMicrovmImageCommand(imageInput('other')));
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await send(new ListMicrovmImagesCommand({ maxResults: 2, nextToken: token }));
      names.push(...r.items.map((i: any) => i.name));
      token = r.nextToken;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(names).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4', 'other']);
    const filtered = await send(new ListMicrovmImagesCommand({ nameFilter: 'page-' }));
    expect(filtered.items).toHaveLength(5);
    const bad = await errorOf(send(new ListMicrovmImagesCommand({ maxResults: 51 })));
    expect(bad.message).toBe("1 validation error detected: Value '51' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50");
  });
});

function BUILD(): string {
  return 'arn:aws:iam::123456789012:role/build';
}
