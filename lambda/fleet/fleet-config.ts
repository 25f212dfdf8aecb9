import { createHash } from 'node:crypto';
import type { RunMicrovmCommandInput } from '@aws-sdk/client-lambda-microvms';
import type { UpdatePolicy } from './plan';
import type { FleetProps } from '../../src/private/wire';
import { ProvisioningError } from '../shared/framework';
import { canonical, toBool, toInt } from '../shared/props';

/** What every instance of one configuration is launched with (the payload comes separately). */
export type LaunchInput = Omit<RunMicrovmCommandInput, 'clientToken' | 'runHookPayload'>;

export function launchInput(props: FleetProps, imageVersion: string): LaunchInput {
  const idle = props.IdlePolicy;
  const logging = props.Logging;
  return {
    imageIdentifier: props.ImageArn,
    imageVersion,
    executionRoleArn: props.ExecutionRoleArn || undefined,
    ingressNetworkConnectors: props.IngressConnectors?.length ? props.IngressConnectors : undefined,
    egressNetworkConnectors: props.EgressConnectors?.length ? props.EgressConnectors : undefined,
    idlePolicy: idle ? {
      maxIdleDurationSeconds: toInt(idle.MaxIdleSeconds, 'IdlePolicy.MaxIdleSeconds')!,
      suspendedDurationSeconds: toInt(idle.SuspendedSeconds, 'IdlePolicy.SuspendedSeconds')!,
      autoResumeEnabled: toBool(idle.AutoResume),
    } : undefined,
    maximumDurationInSeconds: toInt(props.MaximumDurationSeconds, 'MaximumDurationSeconds'),
    logging: !logging ? undefined : toBool(logging.Disabled)
      ? { disabled: {} }
      : { cloudWatch: { logGroup: logging.LogGroup || undefined, logStream: logging.LogStream || undefined } },
  };
}

/**
 * The identity of a configuration: instances whose hash differs from the target are replaced.
 * The payload enters as a hash (inline) or as the secret ARN, never as its value.
 */
export function configHash(props: FleetProps, imageVersion: string): string {
  const payload = props.RunHookPayloadSecretArn
    ? { secret: props.RunHookPayloadSecretArn }
    : props.RunHookPayload !== undefined ? { inline: sha(props.RunHookPayload) } : undefined;
  return sha(canonical({ launch: launchInput(props, imageVersion), payload })).slice(0, 32);
}

function sha(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** The settings a fleet deploy runs with, read strictly from the wire. */
export interface FleetSettings {
  readonly desired: number;
  readonly updatePolicy: UpdatePolicy;
  /** Undefined: the default batch, sized from the launch rate. */
  readonly batchSize?: number;
  readonly suspendAfterLaunch: boolean;
  /** RunMicrovm calls per second. */
  readonly launchRate: number;
  readonly timeoutSeconds: number;
}

/** The construct's limits, checked again on the handler's side of the wire. */
const MAX_DESIRED_COUNT = 10_000;
const MAX_LAUNCH_RATE = 1000;
const UPDATE_POLICIES: readonly UpdatePolicy[] = ['ROLLING', 'REPLACE_ALL'];

/**
 * Reads the fleet's settings. The construct sends every one of them valid: a missing, malformed or
 * out-of-range value means the construct and this handler are different versions, and fails the
 * deploy naming the property and the value instead of falling back to a default.
 */
export function fleetSettings(props: FleetProps): FleetSettings {
  const policy = props.UpdatePolicy as UpdatePolicy;
  if (!UPDATE_POLICIES.includes(policy)) wireError('UpdatePolicy', props.UpdatePolicy, `one of ${UPDATE_POLICIES.join(', ')}`);
  return {
    desired: integer(props, 'DesiredCount', 0, MAX_DESIRED_COUNT)!,
    updatePolicy: policy,
    batchSize: integer(props, 'BatchSize', 1, MAX_DESIRED_COUNT, true),
    suspendAfterLaunch: boolean(props, 'SuspendAfterLaunch'),
    launchRate: positiveNumber(props, 'LaunchRate', MAX_LAUNCH_RATE),
    timeoutSeconds: integer(props, 'TimeoutSeconds', 1, 86_400)!,
  };
}

function wireError(name: string, value: unknown, allowed: string): never {
  throw new ProvisioningError(`MicroVmFleet property ${name} must be ${allowed}, got ${JSON.stringify(value)}: ` +
    'the construct and the provider handler come from different versions of cdk-lambda-microvms (deploy both from one version).');
}

function integer(props: FleetProps, name: keyof FleetProps, min: number, max: number, optional = false): number | undefined {
  const raw = props[name] as unknown;
  if (optional && raw === undefined) return undefined;
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) wireError(name, raw, `an integer from ${min} to ${max}`);
  return n;
}

function positiveNumber(props: FleetProps, name: keyof FleetProps, max: number): number {
  const raw = props[name] as unknown;
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(n) || n <= 0 || n > max) wireError(name, raw, `a number above 0 and at most ${max}`);
  return n;
}

function boolean(props: FleetProps, name: keyof FleetProps): boolean {
  const raw = props[name] as unknown;
  if (raw === undefined || raw === 'false' || raw === false) return false;
  if (raw === 'true' || raw === true) return true;
  return wireError(name, raw, '"true" or "false"');
}
