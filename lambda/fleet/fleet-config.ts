import { createHash } from 'node:crypto';
import type { RunMicrovmCommandInput } from '@aws-sdk/client-lambda-microvms';
import type { UpdatePolicy } from './plan';
import { MAX_HANDLER_WAIT_SECONDS } from '../../src/private/wire';
import type { FleetProps } from '../../src/private/wire';
import { canonical, optionalInt, requireInt, requireOneOf, toBool, toInt, WireMismatchError } from '../shared/props';

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
 * deploy naming the property and the value (WireMismatchError) instead of falling back to a default.
 */
export function fleetSettings(props: FleetProps): FleetSettings {
  return {
    desired: requireInt(props.DesiredCount, 'DesiredCount', 0, MAX_DESIRED_COUNT),
    updatePolicy: requireOneOf(props.UpdatePolicy, 'UpdatePolicy', UPDATE_POLICIES),
    batchSize: optionalInt(props.BatchSize, 'BatchSize', 1, MAX_DESIRED_COUNT),
    suspendAfterLaunch: requireOneOf(props.SuspendAfterLaunch ?? 'false', 'SuspendAfterLaunch', ['true', 'false']) === 'true',
    launchRate: positiveNumber(props.LaunchRate, 'LaunchRate', MAX_LAUNCH_RATE),
    timeoutSeconds: requireInt(props.TimeoutSeconds, 'TimeoutSeconds', 1, MAX_HANDLER_WAIT_SECONDS),
  };
}

/** A required number above 0 and at most `max` (a rate: fractions allowed). */
function positiveNumber(value: unknown, name: string, max: number): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new WireMismatchError(name, value, `a number above 0 and at most ${max}`);
  return n;
}
