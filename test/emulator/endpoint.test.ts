/**
 * The MicroVM endpoint (data plane) through the real SDK (RunMicrovm, CreateMicrovmAuthToken) and plain
 * HTTP with the endpoint as `Host`, against the answers recorded on the live service
 * (recorded-facts.md "The MicroVM endpoint"; aws-recorded/fixtures/vm-endpoint).
 */
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import {
  CreateMicrovmAuthTokenCommand, CreateMicrovmImageCommand, GetMicrovmCommand, RunMicrovmCommand, SuspendMicrovmCommand, TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';
import { Env, imageInput, setup } from './helpers';

let env: Env;
let imageArn: string;
beforeAll(async () => { env = await setup({ rateLimits: false }); });
afterAll(async () => { await env.emu.close(); });
beforeEach(async () => {
  env.emu.reset();
  imageArn = (await send(new CreateMicrovmImageCommand(imageInput('app')))).imageArn;
  env.clock.advance(3000);
});

const send = (cmd: any) => env.client.send(cmd) as Promise<any>;
const state = async (id: string) => (await send(new GetMicrovmCommand({ microvmIdentifier: id }))).state;

/** Launches a MicroVM, waits until RUNNING and returns its id, endpoint and an all-ports token. */
type Launched = { id: string; endpoint: string; token: string };
async function launch(extra: Record<string, unknown> = {}, image = imageArn): Promise<Launched> {
  const run = await send(new RunMicrovmCommand({ imageIdentifier: image, ...extra }));
  env.clock.advance(1000);
  const allPorts = { microvmIdentifier: run.microvmId, expirationInMinutes: 60, allowedPorts: [{ allPorts: {} }] };
  const t = await send(new CreateMicrovmAuthTokenCommand(allPorts));
  return { id: run.microvmId, endpoint: run.endpoint, token: t.authToken['X-aws-proxy-auth'] };
}

const call = (endpoint: string, token?: string, o: { method?: string; path?: string; body?: string } = {}) =>
  env.emu.endpoints.call(endpoint, { token, ...o });

describe('token checks: the recorded 403 answers (plain text)', () => {
  test('no token, a token that cannot be parsed: 403 "Request missing authentication"', async () => {
    const vm = await launch();
    for (const token of [undefined, 'not-a-token', 'a.b.c.d.e']) {
      const r = await call(vm.endpoint, token);
      expect([r.status, r.body]).toEqual([403, 'Request missing authentication']);
      expect(r.headers['content-type']).toBe('text/plain');
    }
  });

  test("another MicroVM's token, a forged token, an unknown host: 403 \"Token authentication failed\"", async () => {
    const a = await launch();
    const b = await launch();
    expect(await call(a.endpoint, b.token)).toMatchObject({ status: 403, body: 'Token authentication failed' });
    // Claims edited to name MicroVM a, signature kept: not issued by this emulator.
    const parts = b.token.split('.');
    const claims = JSON.parse(Buffer.from(parts[3], 'base64url').toString());
    parts[3] = Buffer.from(JSON.stringify({ ...claims, mvm: a.id })).toString('base64url');
    expect(await call(a.endpoint, parts.join('.'))).toMatchObject({ status: 403, body: 'Token authentication failed' });
    const unknown = '00000000-0000-0000-0000-000000000000.lambda-microvm.us-east-1.on.aws';
    expect(await call(unknown, a.token)).toMatchObject({ status: 403, body: 'Token authentication failed' });
    // Same MicroVM, another Region's host name: names no MicroVM.
    expect(await call(a.endpoint.replace('us-east-1', 'eu-west-1'), a.token)).toMatchObject({ status: 403, body: 'Token authentication failed' });
    expect(await call(a.endpoint, a.token)).toMatchObject({ status: 200 });
  });

  test('an expired token fails; allowedPorts is checked at issue, not on the endpoint (recorded)', async () => {
    const vm = await launch({ idlePolicy: { maxIdleDurationSeconds: 28800, suspendedDurationSeconds: 0, autoResumeEnabled: true } });
    const only8080 = { microvmIdentifier: vm.id, expirationInMinutes: 5, allowedPorts: [{ port: 8080 }] };
    const port8080 = await send(new CreateMicrovmAuthTokenCommand(only8080));
    expect((await call(vm.endpoint, port8080.authToken['X-aws-proxy-auth'])).status).toBe(200);
    env.clock.advance(5 * 60_000 + 1000);
    expect(await call(vm.endpoint, port8080.authToken['X-aws-proxy-auth'])).toMatchObject({ status: 403, body: 'Token authentication failed' });
  });
});

describe('MicroVM states: 502 with an empty body, or wake-up', () => {
  test('TERMINATED: 502 empty', async () => {
    const vm = await launch();
    await send(new TerminateMicrovmCommand({ microvmIdentifier: vm.id }));
    env.clock.advance(500);
    expect(await state(vm.id)).toBe('TERMINATED');
    expect(await call(vm.endpoint, vm.token)).toMatchObject({ status: 502, body: '' });
  });

  test('SUSPENDED without auto-resume: 502 empty, and it stays SUSPENDED', async () => {
    const vm = await launch({ idlePolicy: { maxIdleDurationSeconds: 900, suspendedDurationSeconds: 1800, autoResumeEnabled: false } });
    await send(new SuspendMicrovmCommand({ microvmIdentifier: vm.id }));
    env.clock.advance(500);
    expect(await call(vm.endpoint, vm.token)).toMatchObject({ status: 502, body: '' });
    expect(await state(vm.id)).toBe('SUSPENDED');
  });

  test('SUSPENDED with auto-resume: the call wakes it (200), GetMicrovm reads RUNNING right after', async () => {
    const vm = await launch({ idlePolicy: { maxIdleDurationSeconds: 900, suspendedDurationSeconds: 1800, autoResumeEnabled: true } });
    await send(new SuspendMicrovmCommand({ microvmIdentifier: vm.id }));
    env.clock.advance(500);
    expect(await state(vm.id)).toBe('SUSPENDED');
    expect((await call(vm.endpoint, vm.token)).status).toBe(200);
    expect(await state(vm.id)).toBe('RUNNING');
  });

  test('traffic restarts the idle timer of a RUNNING MicroVM', async () => {
    const vm = await launch({ idlePolicy: { maxIdleDurationSeconds: 900, suspendedDurationSeconds: 1800, autoResumeEnabled: false } });
    env.clock.advance(800_000);
    expect((await call(vm.endpoint, vm.token)).status).toBe(200);
    env.clock.advance(800_000);
    expect(await state(vm.id)).toBe('RUNNING');
    env.clock.advance(100_200);
    expect(await state(vm.id)).toBe('SUSPENDING');
  });
});

describe('what answers a RUNNING MicroVM', () => {
  let backend: Server;
  let backendUrl: string;
  const seen: { method?: string; url?: string; headers: IncomingMessage['headers']; body: string }[] = [];
  let runHookStatus = 200;
  beforeAll(async () => {
    backend = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
        if (req.url === '/aws/lambda-microvms/runtime/v1/run') {
          res.writeHead(runHookStatus);
          res.end();
          return;
        }
        res.writeHead(201, { 'content-type': 'text/plain', 'x-app': 'sandbox' });
        res.end(`app saw ${req.method} ${req.url}`);
      });
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => backend.close(() => r())));
  beforeEach(() => {
    seen.length = 0;
    runHookStatus = 200;
    // Backends are configuration: reset() keeps them.
    for (const image of ['app', 'hooked', '*']) env.emu.endpoints.setBackend(image, undefined);
  });

  test('no backend named: the built-in echo (the request and the MicroVM, never the token)', async () => {
    const vm = await launch({ runHookPayload: '{"session":"s-1"}' });
    const r = await call(vm.endpoint, vm.token, { method: 'POST', path: '/exec?x=1', body: 'ls' });
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body);
    expect(echo).toMatchObject({ microvmId: vm.id, imageArn, imageVersion: '1.0', runHookPayload: '{"session":"s-1"}', method: 'POST', path: '/exec?x=1', body: 'ls' });
    expect(echo.headers['x-aws-proxy-auth']).toBeUndefined();
  });

  test('a backend named for the image: the request is forwarded (method, path, body; not the token) and its answer returned', async () => {
    env.emu.endpoints.setBackend('app', backendUrl);
    const vm = await launch();
    const r = await call(vm.endpoint, vm.token, { method: 'PUT', path: '/files/a.txt?mode=w', body: 'hello' });
    expect([r.status, r.body, r.headers['x-app']]).toEqual([201, 'app saw PUT /files/a.txt?mode=w', 'sandbox']);
    expect(seen).toHaveLength(1); // the image enables no run hook: no /run call
    expect(seen[0]).toMatchObject({ method: 'PUT', url: '/files/a.txt?mode=w', body: 'hello' });
    expect(seen[0].headers['x-aws-proxy-auth']).toBeUndefined();
    // Another image without a backend still gets the echo; '*' names one for every image.
    const other = (await send(new CreateMicrovmImageCommand(imageInput('other')))).imageArn;
    env.clock.advance(3000);
    const o = await launch({}, other);
    expect(JSON.parse((await call(o.endpoint, o.token)).body).microvmId).toBe(o.id);
    env.emu.endpoints.setBackend('*', backendUrl);
    expect((await call(o.endpoint, o.token)).body).toBe('app saw GET /');
  });

  test('the /run hook payload reaches the backend before any traffic, once per MicroVM', async () => {
    const hooked = (await send(new CreateMicrovmImageCommand(imageInput('hooked', { hooks: { port: 9000, microvmHooks: { run: 'ENABLED' } } })))).imageArn;
    env.clock.advance(3000);
    env.emu.endpoints.setBackend('hooked', backendUrl);
    const vm = await launch({ runHookPayload: '{"session":"s-42"}' }, hooked);
    await call(vm.endpoint, vm.token, { path: '/a' });
    await call(vm.endpoint, vm.token, { path: '/b' });
    expect(seen.map((s) => s.url)).toEqual(['/aws/lambda-microvms/runtime/v1/run', '/a', '/b']);
    expect(seen[0].method).toBe('POST');
    expect(JSON.parse(seen[0].body)).toEqual({ microvmId: vm.id, runHookPayload: '{"session":"s-42"}' });
    expect(env.emu.endpoints.runHookCalls()).toEqual([{ microvmId: vm.id, backend: backendUrl, status: 200 }]);
  });

  test('a /run hook that does not answer 200, or a backend that is down: 502 empty', async () => {
    const hooked = (await send(new CreateMicrovmImageCommand(imageInput('hooked', { hooks: { port: 9000, microvmHooks: { run: 'ENABLED' } } })))).imageArn;
    env.clock.advance(3000);
    env.emu.endpoints.setBackend('hooked', backendUrl);
    runHookStatus = 500;
    const vm = await launch({}, hooked);
    expect(await call(vm.endpoint, vm.token)).toMatchObject({ status: 502, body: '' });
    env.emu.endpoints.setBackend('app', 'http://127.0.0.1:9'); // discard port: nothing listens
    const down = await launch();
    expect(await call(down.endpoint, down.token)).toMatchObject({ status: 502, body: '' });
  });

  test('fetch cannot set Host: X-Forwarded-Host names the endpoint too; API calls on the same port are unaffected', async () => {
    const vm = await launch();
    const r = await fetch(`${env.emu.url}/hello`, { headers: { 'x-forwarded-host': vm.endpoint, 'x-aws-proxy-auth': vm.token } });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { path: string }).path).toBe('/hello');
    expect((await fetch(`${env.emu.url}/hello`, { headers: { 'x-forwarded-host': vm.endpoint } })).status).toBe(403);
    expect(await state(vm.id)).toBe('RUNNING');
  });
});
