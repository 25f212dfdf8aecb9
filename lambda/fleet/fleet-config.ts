import { createHash } from 'node:crypto';
import type { RunMicrovmCommandInput } from '@aws-sdk/client-lambda-microvms';
import type { FleetProps } from '../../src/private/wire';
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
