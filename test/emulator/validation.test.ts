import { CreateMicrovmAuthTokenCommand, CreateMicrovmImageCommand, RunMicrovmCommand } from '@aws-sdk/client-lambda-microvms';
import { Env, errorOf, imageInput, setup, signedFetch } from './helpers';
import { javaHashOrder } from '../../emulator/src/model';

let env: Env;
beforeAll(async () => { env = await setup({ rateLimits: false }); });
afterAll(async () => { await env.emu.close(); });

const raw = (method: string, path: string, body?: unknown) => signedFetch(env.emu.url, method, path, body);

describe('model-driven validation', () => {
  test('missing required members are listed in AWS (Java HashMap) order, as recorded', async () => {
    const r = await raw('POST', '/2025-09-09/microvm-images', { name: 'm80-missing-required' });
    expect([r.status, r.headers.get('x-amzn-errortype'), r.json.__type]).toEqual([400, 'ValidationException', 'ValidationException']);
    expect(r.json.message).toBe("3 validation errors detected: Value null at 'baseImageArn' failed to satisfy constraint: Member must not be null; Value null at 'codeArtifact' failed to satisfy constraint: Member must not be null; Value null at 'buildRoleArn' failed to satisfy constraint: Member must not be null");
    expect(javaHashOrder(['baseImageArn', 'buildRoleArn', 'codeArtifact', 'name'])).toEqual(['baseImageArn', 'codeArtifact', 'name', 'buildRoleArn']);
  });

  test('patterns and lengths', async () => {
    const e = await errorOf(env.client.send(new CreateMicrovmImageCommand(imageInput('bad name!'))));
    expect(e.message).toBe("1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+");
    const long = await errorOf(env.client.send(new CreateMicrovmImageCommand(imageInput('x'.repeat(65)))));
    expect(long.message).toMatch(/at 'name' failed to satisfy constraint: Member must have length less than or equal to 64/);
    const role = await errorOf(env.client.send(new CreateMicrovmImageCommand(imageInput('r', { buildRoleArn: 'arn:aws:iam::123:role/x' }))));
    expect(role.message).toMatch(/at 'buildRoleArn' failed to satisfy constraint: Member must satisfy regular expression pattern/);
    const env50 = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`K${i}`, 'v']));
    const envs = await errorOf(env.client.send(new CreateMicrovmImageCommand(imageInput('e', { environmentVariables: env50 }))));
    expect(envs.message).toMatch(/^1 validation error detected: Value at 'environmentVariables' failed to satisfy constraint: Member must have length less than or equal to 50$/);
    const egress = await errorOf(env.client.send(new CreateMicrovmImageCommand(imageInput('g', { egressNetworkConnectors: ['a', 'b'] }))));
    expect(egress.message).toMatch(/at 'egressNetworkConnectors' failed to satisfy constraint: Member must have length less than or equal to 1/);
  });

  test('sensitive runHookPayload: the value is left out of the message (4096 max enforced)', async () => {
    const r = await raw('POST', '/2025-09-09/microvms', { imageIdentifier: 'arn:aws:lambda:us-east-1:123456789012:microvm-image:x', runHookPayload: 'a'.repeat(4097) });
    expect(r.json.message).toBe("1 validation error detected: Value at 'runHookPayload' failed to satisfy constraint: Member must have length less than or equal to 4096");
  });

  test('integer ranges, enums and nested structures', async () => {
    const idle = await raw('POST', '/2025-09-09/microvms', { imageIdentifier: 'arn:aws:lambda:us-east-1:123456789012:microvm-image:x', idlePolicy: { maxIdleDurationSeconds: 10, autoResumeEnabled: true }, maximumDurationInSeconds: 28801 });
    expect(idle.json.message).toMatch(/^3 validation errors detected: /);
    expect(idle.json.message).toContain("Value '10' at 'idlePolicy.maxIdleDurationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 60");
    expect(idle.json.message).toContain("Value null at 'idlePolicy.suspendedDurationSeconds' failed to satisfy constraint: Member must not be null");
    expect(idle.json.message).toContain("Value '28801' at 'maximumDurationInSeconds' failed to satisfy constraint: Member must have value less than or equal to 28800");
    const en = await raw('PATCH', '/2025-09-09/microvm-images/x/versions/1.0', { status: 'SOMETIMES' });
    expect(en.json.message).toBe("1 validation error detected: Value 'SOMETIMES' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [ACTIVE, INACTIVE]");
    const cpu = await errorOf(env.client.send(new CreateMicrovmImageCommand(imageInput('cpu', { cpuConfigurations: [{ architecture: 'X86_64' }] }))));
    expect(cpu.message).toContain("at 'cpuConfigurations.1.member.architecture' failed to satisfy constraint: Member must satisfy enum value set: [ARM_64]");
  });

  test('unions must have exactly one member', async () => {
    const none = await raw('POST', '/2025-09-09/microvm-images', { ...imageInput('u'), codeArtifact: {} });
    expect(none.status).toBe(400);
    expect(none.json.message).toMatch(/at 'codeArtifact' failed to satisfy constraint: Member must have exactly one member set/);
    const two = await raw('POST', '/2025-09-09/microvm-images', { ...imageInput('u'), logging: { disabled: {}, cloudWatch: { logGroup: 'g' } } });
    expect(two.json.message).toMatch(/at 'logging' failed to satisfy constraint: Member must have exactly one member set/);
    const ports = await errorOf(env.client.send(new CreateMicrovmAuthTokenCommand({ microvmIdentifier: 'microvm-1', expirationInMinutes: 5, allowedPorts: [{ port: 0 } as any] })));
    expect(ports.message).toContain("Value '0' at 'allowedPorts.1.member.port' failed to satisfy constraint: Member must have value greater than or equal to 1");
    const empty = await raw('POST', '/2025-09-09/microvms/microvm-1/auth-token', { expirationInMinutes: 5, allowedPorts: [] });
    expect(empty.json.message).toContain("at 'allowedPorts' failed to satisfy constraint: Member must have length greater than or equal to 1");
  });

  test('unknown routes and bad JSON', async () => {
    const r = await raw('GET', '/2025-09-09/nothing-here');
    expect([r.status, r.headers.get('x-amzn-errortype')]).toEqual([404, 'UnknownOperationException']);
    const res = await fetch(`${env.emu.url}/2025-09-09/microvms`, { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    const e = await errorOf(env.client.send(new RunMicrovmCommand({ imageIdentifier: 'arn:aws:lambda:us-east-1:123456789012:microvm-image:nope' })));
    expect(e.name).toBe('ResourceNotFoundException');
  });
});
