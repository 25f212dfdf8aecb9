import { RoleSessions, sessionName, withPreviousRole } from '../lambda/shared/credentials';

const ROLE = 'arn:aws:iam::123456789012:role/cdk-lambda-microvms/0123456789ab/image/img/R';
const accessDenied = () => Object.assign(new Error('not authorized to perform: sts:AssumeRole'), { name: 'AccessDenied' });

/** An STS that answers AssumeRole from a script: errors to throw first, then credentials. */
function scriptedSts(failures: Error[], expiresInMs = 900_000, now = () => Date.now()) {
  const calls: Array<{ RoleArn: string; RoleSessionName: string }> = [];
  return {
    calls,
    send: async (command: any) => {
      calls.push(command.input);
      const f = failures.shift();
      if (f) throw f;
      return { Credentials: { AccessKeyId: `ASIA${calls.length}`, SecretAccessKey: 's', SessionToken: 't', Expiration: new Date(now() + expiresInMs) } };
    },
  };
}

describe('per-request role sessions', () => {
  test('the session is named after the CloudFormation request, within STS\'s 64 characters and alphabet', () => {
    expect(sessionName('0f8e2a4c-1111-2222-3333-444455556666')).toBe('cfn-0f8e2a4c-1111-2222-3333-444455556666');
    expect(sessionName('a b/c'.repeat(30))).toMatch(/^cfn-[\w+=,.@-]{1,60}$/);
  });

  test('a role IAM has not propagated yet is assumed again until STS accepts it', async () => {
    const sts = scriptedSts([accessDenied(), accessDenied()]);
    const sessions = new RoleSessions(sts as any, { clock: { now: () => Date.now(), sleep: async () => undefined } });
    const creds = await sessions.provider(ROLE, 'cfn-r1')();
    expect(creds.accessKeyId).toBe('ASIA3');
    expect(sts.calls).toHaveLength(3);
    expect(sts.calls.every((c) => c.RoleArn === ROLE && c.RoleSessionName === 'cfn-r1')).toBe(true);
  });

  test('one AssumeRole per role and request while the session is valid; renewed 5 minutes before it expires', async () => {
    let now = 1_000_000;
    const sts = scriptedSts([], 900_000, () => now);
    const sessions = new RoleSessions(sts as any, { clock: { now: () => now, sleep: async () => undefined } });
    await sessions.provider(ROLE, 'cfn-r1')();
    await sessions.provider(ROLE, 'cfn-r1')();
    expect(sts.calls).toHaveLength(1);
    await sessions.provider(ROLE, 'cfn-r2')(); // another request: its own session
    expect(sts.calls).toHaveLength(2);
    now += 11 * 60_000;
    await sessions.provider(ROLE, 'cfn-r1')();
    expect(sts.calls).toHaveLength(3);
  });

  test('a role that cannot be assumed fails with its ARN and what to do', async () => {
    const sts = scriptedSts(Array.from({ length: 8 }, accessDenied));
    const sessions = new RoleSessions(sts as any, { clock: { now: () => Date.now(), sleep: async () => undefined } });
    await expect(sessions.provider(ROLE, 'cfn-r1')()).rejects.toThrow(/could not assume the resource's handler role .*\/image\/img\/R: .*restore it or delete the resource from the stack/);
  });

  test('withPreviousRole re-sends only a call IAM refused, once, with the previous role', async () => {
    const sent: string[] = [];
    const client = (name: string, deny: boolean) => ({
      send: async (command: { id: string }) => {
        sent.push(`${name}:${command.id}`);
        if (deny) throw Object.assign(new Error('denied'), { name: 'AccessDeniedException' });
        return name;
      },
    });
    const both = withPreviousRole(client('new', true), client('old', false));
    expect(await both.send({ id: 'a' })).toBe('old');
    expect(sent).toEqual(['new:a', 'old:a']);
    const failing = withPreviousRole({ send: async () => { throw Object.assign(new Error('boom'), { name: 'ValidationException' }); } }, client('old', false));
    await expect(failing.send({ id: 'b' })).rejects.toThrow('boom');
    expect(sent).toEqual(['new:a', 'old:a']);
  });
});
