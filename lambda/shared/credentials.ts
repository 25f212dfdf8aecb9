/**
 * Per-request credentials: the provider functions' own role may only assume the role of the
 * resource at hand (src/private/provider.ts `handlerRole`); every call the handler makes for a
 * resource is signed with that role's session, named after the CloudFormation request.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { systemClock } from './clock';
import type { Clock } from './clock';
import { errorName } from './errors';
import { withRetries, RetryOptions } from './retry';

/** STS caps a session name at 64 characters of `[\w+=,.@-]`. */
const MAX_SESSION_NAME = 64;
/** Sessions are renewed this long before they expire. */
const RENEW_BEFORE_MS = 5 * 60_000;
/** The shortest session STS gives (15 min): one request's calls, isComplete polls included, need no more. */
const SESSION_SECONDS = 900;

/**
 * The session name for a request: `cfn-<RequestId>`, so CloudTrail ties every call to the
 * CloudFormation request that caused it. Characters STS refuses become `-`.
 */
export function sessionName(requestId: string): string {
  return stsSessionName(`cfn-${requestId}`);
}

/**
 * The session name of a fleet reconciler run: `reconciler-<Lambda request id>`, so CloudTrail
 * tells the reconciler's calls on a fleet's handler role from a deploy's (`cfn-...`).
 */
export function reconcilerSessionName(invocationId: string): string {
  return stsSessionName(`reconciler-${invocationId}`);
}

/** Characters STS refuses become `-`; at most 64 characters. */
function stsSessionName(name: string): string {
  return name.replace(/[^\w+=,.@-]/g, '-').slice(0, MAX_SESSION_NAME);
}

/** Whether `err` is IAM refusing a call (the service's name for it varies). */
export function isAccessDenied(err: unknown): boolean {
  const name = errorName(err);
  return name === 'AccessDeniedException' || name === 'AccessDenied' || name === 'UnauthorizedOperation';
}

export interface RoleSessionsOptions {
  /** Session expiry is read, and AssumeRole retries wait, on this clock. @default systemClock */
  readonly clock?: Clock;
  /**
   * Retries of AssumeRole. A role CloudFormation just created (a new resource, or a role replaced
   * because the resource's identity changed) can be refused for some seconds while IAM propagates it.
   * @default 8 attempts, 1 s doubling to 10 s (about 45 s in all)
   */
  readonly retry?: Partial<Pick<RetryOptions, 'maxAttempts' | 'baseDelayMs' | 'maxDelayMs' | 'random'>>;
}

/** Assumes handler roles and keeps each session (role + session name) while it is valid. */
export class RoleSessions {
  private readonly cache = new Map<string, Promise<AwsCredentialIdentity>>();
  private readonly clock: Clock;

  constructor(private readonly sts: Pick<STSClient, 'send'>, private readonly options: RoleSessionsOptions = {}) {
    this.clock = options.clock ?? systemClock;
  }

  private now(): number {
    return this.clock.now();
  }

  /** A credential provider for `roleArn`, session `name`: assumed on first use, renewed before it expires. */
  public provider(roleArn: string, name: string): AwsCredentialIdentityProvider {
    return () => this.get(roleArn, name);
  }

  private get(roleArn: string, name: string): Promise<AwsCredentialIdentity> {
    const key = `${roleArn}\n${name}`;
    const cached = this.cache.get(key);
    if (cached) {
      return cached.then((c) => (c.expiration && c.expiration.getTime() - RENEW_BEFORE_MS <= this.now() ? this.assume(key, roleArn, name) : c));
    }
    return this.assume(key, roleArn, name);
  }

  private assume(key: string, roleArn: string, name: string): Promise<AwsCredentialIdentity> {
    for (const [k, v] of this.cache) {
      // Drop sessions of earlier requests once they expired, so a warm container does not grow.
      void v.then((c) => { if (c.expiration && c.expiration.getTime() <= this.now()) this.cache.delete(k); }, () => this.cache.delete(k));
    }
    const retry = this.options.retry ?? {};
    const pending = withRetries(async () => {
      const r = await this.sts.send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: name, DurationSeconds: SESSION_SECONDS }));
      const c = r.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error(`AssumeRole of ${roleArn} returned no credentials`);
      return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration };
    }, {
      maxAttempts: retry.maxAttempts ?? 8,
      baseDelayMs: retry.baseDelayMs ?? 1000,
      maxDelayMs: retry.maxDelayMs ?? 10_000,
      clock: this.clock,
      random: retry.random,
      isRetryable: (err) => isAccessDenied(err) || errorName(err) === 'Throttling' || (err as { $retryable?: unknown }).$retryable !== undefined,
    }).catch((err) => {
      this.cache.delete(key);
      throw new Error(`could not assume the resource's handler role ${roleArn}: ${(err as Error).message}. `
        + 'The role is created with the resource in the same stack; if it was deleted outside CloudFormation, restore it or delete the resource from the stack');
    });
    this.cache.set(key, pending);
    return pending;
  }
}

/** Anything sent commands, like every SDK v3 client. */
interface Sender { send(command: any, ...rest: any[]): Promise<any> }

/**
 * Makes `primary` retry a call with `previous` when IAM refuses it. During an in-place update that
 * changed a resource's identity (a fleet moving to another image), CloudFormation keeps the
 * resource's previous handler role, with the previous ARNs, until the update's cleanup: calls on
 * what the resource used before (terminating instances of the old image) are signed with it.
 * Every call is still authorized by one of the two roles the stack gave this resource.
 */
export function withPreviousRole<C extends Sender>(primary: C, previous: C | undefined): C {
  if (!previous) return primary;
  const send = primary.send.bind(primary);
  primary.send = (async (command: any, ...rest: any[]) => {
    try {
      return await send(command, ...rest);
    } catch (err) {
      if (!isAccessDenied(err)) throw err;
      return previous.send(command, ...rest);
    }
  }) as C['send'];
  return primary;
}
