import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateMicrovmImageCommand, GetMicrovmCommand, GetMicrovmImageCommand, ListMicrovmImagesCommand, RunMicrovmCommand, SuspendMicrovmCommand, TerminateMicrovmCommand } from '@aws-sdk/client-lambda-microvms';
import { admin, Env, errorOf, imageInput, setup } from './helpers';

const send = (env: Env, cmd: any) => env.client.send(cmd) as Promise<any>;

describe('account memory quota', () => {
  test('RunMicrovm past the memory quota answers 402 like the recording; terminating frees memory', async () => {
    const env = await setup({ rateLimits: false, memoryQuotaMiB: 4096 });
    try {
      const img = await send(env, new CreateMicrovmImageCommand(imageInput('mem')));
      env.clock.advance(3000);
      const a = await send(env, new RunMicrovmCommand({ imageIdentifier: img.imageArn }));
      await send(env, new RunMicrovmCommand({ imageIdentifier: img.imageArn }));
      const e = await errorOf(send(env, new RunMicrovmCommand({ imageIdentifier: img.imageArn })));
      expect([e.name, e.$metadata.httpStatusCode]).toEqual(['ServiceQuotaExceededException', 402]);
      const recorded = JSON.parse(readFileSync(join(__dirname, '../../emulator/conformance/aws-recorded/fixtures/throttle/run-burst.json'), 'utf8'));
      expect(e.message).toBe(recorded.message);
      expect(env.emu.snapshot().memoryInUseMiB).toBe(4096);
      await send(env, new TerminateMicrovmCommand({ microvmIdentifier: a.microvmId }));
      expect((await send(env, new RunMicrovmCommand({ imageIdentifier: img.imageArn }))).state).toBe('PENDING');
    } finally {
      await env.emu.close();
    }
  });
});

describe('rate limits (token buckets on the emulator clock)', () => {
  test('RunMicrovm 5/s burst 5 → 429 ThrottlingException, no Retry-After (a token is back in 0.2 s); refills as virtual time passes', async () => {
    const env = await setup({ faults: true });
    try {
      const img = await send(env, new CreateMicrovmImageCommand(imageInput('rl')));
      env.clock.advance(3000);
      for (let i = 0; i < 5; i++) await send(env, new RunMicrovmCommand({ imageIdentifier: img.imageArn }));
      const e = await errorOf(send(env, new RunMicrovmCommand({ imageIdentifier: img.imageArn })));
      expect([e.name, e.$metadata.httpStatusCode]).toEqual(['ThrottlingException', 429]);
      // Retry-After counts whole seconds and never says more than the refill time: none under a second.
      expect(e.$response?.headers?.['retry-after']).toBeUndefined();
      expect(e.retryAfterSeconds).toBeUndefined();
      env.clock.advance(200);
      expect((await send(env, new RunMicrovmCommand({ imageIdentifier: img.imageArn }))).state).toBe('PENDING');
      // SuspendMicrovm is 2/s.
      const vms = (await env.emu.snapshot()).microvms.map((v) => v.microvmId);
      env.clock.advance(1000);
      await send(env, new SuspendMicrovmCommand({ microvmIdentifier: vms[0] }));
      await send(env, new SuspendMicrovmCommand({ microvmIdentifier: vms[1] }));
      expect((await errorOf(send(env, new SuspendMicrovmCommand({ microvmIdentifier: vms[2] })))).name).toBe('ThrottlingException');
      // Unlimited operations are never throttled.
      for (let i = 0; i < 20; i++) await send(env, new ListMicrovmImagesCommand({}));
    } finally {
      await env.emu.close();
    }
  });

  test('custom and disabled rate limits', async () => {
    const env = await setup({ rateLimits: { GetMicrovmImage: { rate: 1, burst: 1 }, ListMicrovmImages: { rate: 0.4, burst: 1 } } });
    try {
      await send(env, new CreateMicrovmImageCommand(imageInput('c')));
      await send(env, new GetMicrovmImageCommand({ imageIdentifier: 'c' }));
      expect((await errorOf(send(env, new GetMicrovmImageCommand({ imageIdentifier: 'c' })))).name).toBe('ThrottlingException');
      // 0.4/s refills a token in 2.5 s: Retry-After says 2 (whole seconds, never more than the wait).
      await send(env, new ListMicrovmImagesCommand({}));
      const slow = await errorOf(send(env, new ListMicrovmImagesCommand({})));
      expect([slow.name, slow.$response?.headers?.['retry-after'], slow.retryAfterSeconds]).toEqual(['ThrottlingException', '2', 2]);
      env.clock.advance(1000);
      expect((await errorOf(send(env, new ListMicrovmImagesCommand({})))).retryAfterSeconds).toBe(1);
    } finally {
      await env.emu.close();
    }
  });
});

describe('fault injection and admin routes', () => {
  let env: Env;
  beforeAll(async () => { env = await setup({ faults: true, rateLimits: false }); });
  afterAll(async () => { await env.emu.close(); });
  beforeEach(() => env.emu.reset());

  test('operation faults: throttle the next N calls, fail with an error type', async () => {
    expect((await admin(env.emu.url, 'POST', '/_emulator/faults/operation', { operation: 'ListMicrovmImages', mode: 'throttle', count: 2 })).status).toBe(200);
    expect((await errorOf(send(env, new ListMicrovmImagesCommand({})))).name).toBe('ThrottlingException');
    expect((await errorOf(send(env, new ListMicrovmImagesCommand({})))).name).toBe('ThrottlingException');
    expect((await send(env, new ListMicrovmImagesCommand({}))).items).toEqual([]);
    env.emu.faults.operation({ operation: 'CreateMicrovmImage', mode: 'error', errorType: 'InternalServerException', message: 'boom' });
    const e = await errorOf(send(env, new CreateMicrovmImageCommand(imageInput('f'))));
    expect([e.name, e.$metadata.httpStatusCode, e.message]).toEqual(['InternalServerException', 500, 'boom']);
    env.emu.faults.operation({ operation: 'ListMicrovmImages', mode: 'error', errorType: 'AccessDeniedException', fraction: 1 });
    for (let i = 0; i < 3; i++) expect((await errorOf(send(env, new ListMicrovmImagesCommand({})))).name).toBe('AccessDeniedException');
    expect((await admin(env.emu.url, 'DELETE', '/_emulator/faults')).json.operations).toEqual([]);
    expect((await send(env, new ListMicrovmImagesCommand({}))).items).toEqual([]);
  });

  test('hold a resource in its transient state until released', async () => {
    const img = await send(env, new CreateMicrovmImageCommand(imageInput('held')));
    expect((await admin(env.emu.url, 'POST', '/_emulator/faults/hold', { resource: img.imageArn })).status).toBe(200);
    env.clock.advance(60_000);
    expect((await send(env, new GetMicrovmImageCommand({ imageIdentifier: 'held' }))).state).toBe('CREATING');
    await admin(env.emu.url, 'POST', '/_emulator/faults/release', { resource: 'held' });
    env.clock.advance(3000);
    expect((await send(env, new GetMicrovmImageCommand({ imageIdentifier: 'held' }))).state).toBe('CREATED');
    const vm = await send(env, new RunMicrovmCommand({ imageIdentifier: img.imageArn }));
    env.emu.faults.hold(vm.microvmId);
    env.clock.advance(10_000);
    expect((await send(env, new GetMicrovmCommand({ microvmIdentifier: vm.microvmId }))).state).toBe('PENDING');
    env.emu.faults.release(vm.microvmId);
    env.clock.advance(1000);
    expect((await send(env, new GetMicrovmCommand({ microvmIdentifier: vm.microvmId }))).state).toBe('RUNNING');
    expect((await admin(env.emu.url, 'POST', '/_emulator/faults/hold', { resource: 'nothing' })).status).toBe(404);
  });

  test('eventual consistency: a fresh resource answers 404 on Get for N ms', async () => {
    await admin(env.emu.url, 'POST', '/_emulator/faults/eventual-consistency', { ms: 2000 });
    await send(env, new CreateMicrovmImageCommand(imageInput('ec')));
    expect((await errorOf(send(env, new GetMicrovmImageCommand({ imageIdentifier: 'ec' })))).name).toBe('ResourceNotFoundException');
    env.clock.advance(2000);
    expect((await send(env, new GetMicrovmImageCommand({ imageIdentifier: 'ec' }))).state).toBe('CREATING');
  });

  test('always-on routes: health, state, stats, clock/advance, reset; fault routes 404 when disabled', async () => {
    expect((await admin(env.emu.url, 'GET', '/_emulator/health')).json).toMatchObject({ status: 'ok', region: 'us-east-1', account: '123456789012', faults: true });
    await admin(env.emu.url, 'POST', '/_emulator/stats/reset');
    await send(env, new CreateMicrovmImageCommand(imageInput('s')));
    await send(env, new GetMicrovmImageCommand({ imageIdentifier: 's' }));
    await send(env, new GetMicrovmImageCommand({ imageIdentifier: 's' }));
    const stats = (await admin(env.emu.url, 'GET', '/_emulator/stats')).json;
    expect(stats).toMatchObject({ total: 3, operations: { CreateMicrovmImage: 1, GetMicrovmImage: 2 } });
    const before = env.clock.now();
    expect((await admin(env.emu.url, 'POST', '/_emulator/clock/advance', { ms: 3000 })).json.now).toBe(before + 3000);
    const state = (await admin(env.emu.url, 'GET', '/_emulator/state')).json;
    expect(state.images[0]).toMatchObject({ name: 's', state: 'CREATED' });
    expect(state.images[0].versions[0].builds).toHaveLength(2);
    await admin(env.emu.url, 'POST', '/_emulator/reset');
    expect((await admin(env.emu.url, 'GET', '/_emulator/state')).json.images).toEqual([]);
    expect((await admin(env.emu.url, 'GET', '/_emulator/stats')).json.total).toBe(0);

    const plain = await setup({});
    try {
      expect((await admin(plain.emu.url, 'POST', '/_emulator/faults/operation', { operation: 'GetMicrovm', mode: 'throttle' })).status).toBe(404);
      expect((await admin(plain.emu.url, 'GET', '/_emulator/health')).json.faults).toBe(false);
    } finally {
      await plain.emu.close();
    }
  });
});
