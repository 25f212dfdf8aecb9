import {
  CreateMicrovmAuthTokenCommand, CreateMicrovmImageCommand, CreateMicrovmShellAuthTokenCommand, GetMicrovmCommand, ListMicrovmsCommand,
  ResumeMicrovmCommand, RunMicrovmCommand, SuspendMicrovmCommand, TerminateMicrovmCommand, UpdateMicrovmImageCommand,
} from '@aws-sdk/client-lambda-microvms';
import { Env, errorOf, imageInput, managedConnector, setup } from './helpers';

let env: Env;
let imageArn: string;
beforeAll(async () => { env = await setup({ rateLimits: false, faults: true }); });
afterAll(async () => { await env.emu.close(); });
beforeEach(async () => {
  env.emu.reset();
  imageArn = (await send(new CreateMicrovmImageCommand(imageInput('vmimg')))).imageArn;
  env.clock.advance(3000);
});

const send = (cmd: any) => env.client.send(cmd) as Promise<any>;
const state = async (id: string) => (await send(new GetMicrovmCommand({ microvmIdentifier: id }))).state;

describe('MicroVM lifecycle', () => {
  test('run (200, PENDING) → RUNNING → suspend → SUSPENDED → resume → RUNNING → terminate → TERMINATED (still gettable and listed)', async () => {
    const run = await send(new RunMicrovmCommand({ imageIdentifier: imageArn }));
    expect(run.$metadata.httpStatusCode).toBe(200);
    expect(run.microvmId).toMatch(/^microvm-[0-9a-f-]{36}$/);
    expect(run.endpoint).toBe(`${run.microvmId.slice('microvm-'.length)}.lambda-microvm.us-east-1.on.aws`);
    expect(run).toMatchObject({ state: 'PENDING', imageVersion: '1.0', maximumDurationInSeconds: 28800, ingressNetworkConnectors: [managedConnector('HTTP_INGRESS')], egressNetworkConnectors: [managedConnector('INTERNET_EGRESS')] });
    env.clock.advance(1000);
    expect(await state(run.microvmId)).toBe('RUNNING');
    await send(new SuspendMicrovmCommand({ microvmIdentifier: run.microvmId }));
    expect(await state(run.microvmId)).toBe('SUSPENDING');
    env.clock.advance(500);
    expect(await state(run.microvmId)).toBe('SUSPENDED');
    const again = await errorOf(send(new SuspendMicrovmCommand({ microvmIdentifier: run.microvmId })));
    expect([again.name, again.$metadata.httpStatusCode]).toEqual(['ConflictException', 409]);
    await send(new ResumeMicrovmCommand({ microvmIdentifier: run.microvmId }));
    expect(await state(run.microvmId)).toBe('SUSPENDED');
    env.clock.advance(500);
    expect(await state(run.microvmId)).toBe('RUNNING');
    const resumeRunning = await errorOf(send(new ResumeMicrovmCommand({ microvmIdentifier: run.microvmId })));
    expect(resumeRunning.name).toBe('ConflictException');
    await send(new TerminateMicrovmCommand({ microvmIdentifier: run.microvmId }));
    expect(await state(run.microvmId)).toBe('TERMINATING');
    env.clock.advance(500);
    const got = await send(new GetMicrovmCommand({ microvmIdentifier: run.microvmId }));
    expect(got).toMatchObject({ state: 'TERMINATED', stateReason: 'Success.' });
    expect(got.terminatedAt).toBeInstanceOf(Date);
    const list = await send(new ListMicrovmsCommand({}));
    expect(list.items.map((i: any) => [i.microvmId, i.state])).toEqual([[run.microvmId, 'TERMINATED']]);
  });

  test('a TERMINATED MicroVM: suspend/resume/tokens are 400 ValidationException, terminate stays 200', async () => {
    const run = await send(new RunMicrovmCommand({ imageIdentifier: imageArn }));
    await send(new TerminateMicrovmCommand({ microvmIdentifier: run.microvmId }));
    env.clock.advance(1000);
    for (const cmd of [
      new SuspendMicrovmCommand({ microvmIdentifier: run.microvmId }),
      new ResumeMicrovmCommand({ microvmIdentifier: run.microvmId }),
      new CreateMicrovmAuthTokenCommand({ microvmIdentifier: run.microvmId, expirationInMinutes: 5, allowedPorts: [{ port: 8080 }] }),
    ]) {
      const e = await errorOf(send(cmd));
      expect([e.name, e.$metadata.httpStatusCode, e.message]).toEqual(['ValidationException', 400, `The MicroVM ${run.microvmId} has been terminated and its state cannot be changed.`]);
    }
    const t = await send(new TerminateMicrovmCommand({ microvmIdentifier: run.microvmId }));
    expect(t.$metadata.httpStatusCode).toBe(200);
  });

  test('idle policy: suspends after maxIdleDurationSeconds, terminates after suspendedDurationSeconds', async () => {
    const run = await send(new RunMicrovmCommand({
      imageIdentifier: imageArn,
      idlePolicy: { maxIdleDurationSeconds: 900, suspendedDurationSeconds: 1800, autoResumeEnabled: false },
    }));
    env.clock.advance(1000 + 899_000);
    expect(await state(run.microvmId)).toBe('RUNNING');
    env.clock.advance(1000);
    expect(await state(run.microvmId)).toBe('SUSPENDING');
    env.clock.advance(500);
    expect(await state(run.microvmId)).toBe('SUSPENDED');
    env.clock.advance(1_800_000);
    expect(await state(run.microvmId)).toBe('TERMINATING');
    env.clock.advance(500);
    const got = await send(new GetMicrovmCommand({ microvmIdentifier: run.microvmId }));
    expect(got.state).toBe('TERMINATED');
    expect(got.stateReason).toMatch(/suspendedDurationSeconds/);
  });

  test('8-hour cap: maximumDurationInSeconds (default 28800) terminates the MicroVM with a stateReason', async () => {
    const run = await send(new RunMicrovmCommand({ imageIdentifier: imageArn }));
    const short = await send(new RunMicrovmCommand({ imageIdentifier: imageArn, maximumDurationInSeconds: 60 }));
    env.clock.advance(60_000);
    expect(await state(short.microvmId)).toBe('TERMINATING');
    env.clock.advance(28_800_000 - 60_000 - 1);
    expect(await state(run.microvmId)).toBe('RUNNING');
    env.clock.advance(1 + 500);
    const got = await send(new GetMicrovmCommand({ microvmIdentifier: run.microvmId }));
    expect(got).toMatchObject({ state: 'TERMINATED', stateReason: 'The MicroVM reached its maximum duration of 28800 seconds.' });
    expect(got.terminatedAt.getTime() - got.startedAt.getTime()).toBe(28_800_500);
  });

  test('RunMicrovm input rules: bare name rejected, connectors must exist, inactive / missing versions', async () => {
    const bare = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: 'vmimg' })));
    expect([bare.name, bare.$metadata.httpStatusCode]).toEqual(['ValidationException', 400]);
    const missing = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: 'arn:aws:lambda:us-east-1:123456789012:microvm-image:nope' })));
    expect(missing.name).toBe('ResourceNotFoundException');
    const ver = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: imageArn, imageVersion: '7.0' })));
    expect(ver.name).toBe('ResourceNotFoundException');
    const badConn = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: imageArn, ingressNetworkConnectors: [managedConnector('BOGUS_INGRESS')] })));
    expect(badConn.name).toBe('ValidationException');
    const egressAsIngress = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: imageArn, ingressNetworkConnectors: [managedConnector('INTERNET_EGRESS')] })));
    expect(egressAsIngress.name).toBe('ValidationException');
    const noConn = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: imageArn, egressNetworkConnectors: ['arn:aws:lambda:us-east-1:123456789012:network-connector:nc-0123456789abcdef0'] })));
    expect(noConn.name).toBe('ResourceNotFoundException');
    const update = await send(new UpdateMicrovmImageCommand({ imageIdentifier: imageArn, baseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1', buildRoleArn: 'arn:aws:iam::123456789012:role/build', codeArtifact: { uri: 's3://b/k.zip' } }));
    const building = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: imageArn, imageVersion: update.imageVersion })));
    expect([building.name, building.$metadata.httpStatusCode]).toEqual(['ValidationException', 400]);
    const ok = await send(new RunMicrovmCommand({ imageIdentifier: imageArn, ingressNetworkConnectors: [managedConnector('SHELL_INGRESS'), managedConnector('ALL_INGRESS')] }));
    expect(ok.imageVersion).toBe('1.0');
  });

  test('ListMicrovms filters by image and version and paginates (maxResults 1–50)', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await send(new RunMicrovmCommand({ imageIdentifier: imageArn }))).microvmId);
      env.clock.advance(10);
    }
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await send(new ListMicrovmsCommand({ maxResults: 2, nextToken: token }));
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((i: any) => i.microvmId));
      token = page.nextToken;
    } while (token);
    expect(seen).toEqual([...ids].reverse());
    expect((await send(new ListMicrovmsCommand({ imageIdentifier: imageArn, imageVersion: '1.0' }))).items).toHaveLength(5);
    expect((await send(new ListMicrovmsCommand({ imageIdentifier: imageArn, imageVersion: '2.0' }))).items).toHaveLength(0);
    const zero = await errorOf(send(new ListMicrovmsCommand({ maxResults: 0 })));
    expect(zero.name).toBe('ValidationException');
    const badToken = await errorOf(send(new ListMicrovmsCommand({ nextToken: 'garbage!' })));
    expect(badToken.name).toBe('ValidationException');
  });
});

describe('auth tokens', () => {
  test('auth tokens for RUNNING / SUSPENDED only, expiration 1–60, shell token needs SHELL_INGRESS', async () => {
    const plain = await send(new RunMicrovmCommand({ imageIdentifier: imageArn }));
    const pending = await errorOf(send(new CreateMicrovmAuthTokenCommand({
      microvmIdentifier: plain.microvmId,
      expirationInMinutes: 5,
      allowedPorts: [{ allPorts: {} }],
    })));
    expect(pending.name).toBe('ConflictException');
    env.clock.advance(1000);
    const tok = await send(new CreateMicrovmAuthTokenCommand({
      microvmIdentifier: plain.microvmId,
      expirationInMinutes: 60,
      allowedPorts: [{ port: 8080 }, { range: { startPort: 9000, endPort: 9010 } }],
    }));
    expect(tok.authToken['X-aws-proxy-auth'].split('.')).toHaveLength(5);
    const tooLong = await errorOf(send(new CreateMicrovmAuthTokenCommand({
      microvmIdentifier: plain.microvmId,
      expirationInMinutes: 61,
      allowedPorts: [{ port: 8080 }],
    })));
    expect([tooLong.name, tooLong.message]).toEqual(['ValidationException', "Value '61' at 'expirationInMinutes' failed to satisfy constraint: Member must have value less than or equal to 60"]);
    const zero = await errorOf(send(new CreateMicrovmAuthTokenCommand({
      microvmIdentifier: plain.microvmId,
      expirationInMinutes: 0,
      allowedPorts: [{ port: 8080 }],
    })));
    expect(zero.name).toBe('ValidationException');
    const shell = await errorOf(send(new CreateMicrovmShellAuthTokenCommand({ microvmIdentifier: plain.microvmId, expirationInMinutes: 5 })));
    expect([shell.name, shell.message]).toEqual(['ValidationException', 'Shell access requires SHELL_INGRESS network connector to be configured on the MicroVM.']);
    await send(new SuspendMicrovmCommand({ microvmIdentifier: plain.microvmId }));
    env.clock.advance(500);
    expect((await send(new CreateMicrovmAuthTokenCommand({
      microvmIdentifier: plain.microvmId,
      expirationInMinutes: 1,
      allowedPorts: [{ allPorts: {} }],
    }))).authToken).toBeDefined();

    const withShell = await send(new RunMicrovmCommand({ imageIdentifier: imageArn, ingressNetworkConnectors: [managedConnector('SHELL_INGRESS')] }));
    env.clock.advance(1000);
    const st = await send(new CreateMicrovmShellAuthTokenCommand({ microvmIdentifier: withShell.microvmId, expirationInMinutes: 10 }));
    expect(Object.keys(st.authToken)).toEqual(['X-aws-proxy-auth']);
    const missing = await errorOf(send(new CreateMicrovmAuthTokenCommand({ microvmIdentifier: 'microvm-00000000-0000-0000-0000-000000000000', expirationInMinutes: 1, allowedPorts: [{ port: 1 }] })));
    expect(missing.name).toBe('ResourceNotFoundException');
  });
});

describe('idempotency', () => {
  test('RunMicrovm: same clientToken + same params → original response; different params → 409', async () => {
    const a = await send(new RunMicrovmCommand({ imageIdentifier: imageArn, clientToken: 'tok-1' }));
    env.clock.advance(1000);
    const b = await send(new RunMicrovmCommand({ imageIdentifier: imageArn, clientToken: 'tok-1' }));
    expect(b.microvmId).toBe(a.microvmId);
    expect(b.state).toBe('PENDING');
    expect((await send(new ListMicrovmsCommand({}))).items).toHaveLength(1);
    const c = await errorOf(send(new RunMicrovmCommand({ imageIdentifier: imageArn, clientToken: 'tok-1', maximumDurationInSeconds: 60 })));
    expect([c.name, c.$metadata.httpStatusCode]).toEqual(['ConflictException', 409]);
  });

  test('CreateMicrovmImage / UpdateMicrovmImage clientToken', async () => {
    const a = await send(new CreateMicrovmImageCommand(imageInput('idem', { clientToken: 'c-1' })));
    const b = await send(new CreateMicrovmImageCommand(imageInput('idem', { clientToken: 'c-1' })));
    expect(b.id).toBe(a.id);
    const c = await errorOf(send(new CreateMicrovmImageCommand(imageInput('idem', { clientToken: 'c-1', description: 'changed' }))));
    expect(c.name).toBe('ConflictException');
    env.clock.advance(3000);
    const u = { imageIdentifier: 'idem', baseImageArn: a.baseImageArn, buildRoleArn: a.buildRoleArn, codeArtifact: a.codeArtifact, clientToken: 'u-1' };
    const u1 = await send(new UpdateMicrovmImageCommand(u));
    const u2 = await send(new UpdateMicrovmImageCommand(u));
    expect([u1.imageVersion, u2.imageVersion]).toEqual(['2.0', '2.0']);
  });
});
