import type { FleetProps } from './wire';

/**
 * The input of one reconciler run: what the fleet's schedule sends (JSON, every scalar a string,
 * as in the custom resource's properties). Names are a contract with deployed schedules: only add.
 */
export interface ReconcilerInput {
  /**
   * `RECONCILER_INVOCATION` in every schedule's input: the provider's onEvent function serves both
   * the Provider framework's requests and the schedules' runs, and routes on this field
   * (`isReconcilerInput`). The run itself (lambda/fleet/reconciler.ts) does not read it, so
   * callers of `FleetReconciler` directly (tests, benchmarks) may leave it out.
   */
  readonly Invocation?: typeof RECONCILER_INVOCATION;
  /** The fleet id (the custom resource's physical id). */
  readonly FleetId: string;
  /** The stack that owns the fleet: the reconciler acts only while no deploy runs on it. */
  readonly StackId: string;
  /** The fleet's properties, exactly as its custom resource receives them. */
  readonly Fleet: FleetProps;
  /**
   * The fleet's handler role (the one its deploys use), which trusts the provider role the run
   * runs under (the provider's onEvent function): every call of the run on the fleet is signed by
   * a session of it. Absent only in schedules synthesized
   * before the reconciler assumed it; such a run fails asking for a deploy.
   */
  readonly HandlerRoleArn?: string;
  /** Start a make-before-break replacement this many seconds before `maximumDuration`. */
  readonly RotateBeforeSeconds: string;
  /** Rotations in flight at once; absent: a tenth of the desired count (at least 1). */
  readonly MaxRotating?: string;
  /** 'true': replace instances the idle policy ended (terminateAfterSuspended); otherwise let them go. */
  readonly ReplaceIdleTerminated?: string;
}

/** The marker of a reconciler run's input (`ReconcilerInput.Invocation`). */
export const RECONCILER_INVOCATION = 'cdk-lambda-microvms:ReconcileFleet';

/**
 * Whether an event the provider's onEvent function receives is a scheduled reconciler run: it
 * carries the marker and, unlike every Provider framework request, no `RequestType`.
 */
export function isReconcilerInput(event: unknown): event is ReconcilerInput {
  if (typeof event !== 'object' || event === null) return false;
  const e = event as Record<string, unknown>;
  return e.Invocation === RECONCILER_INVOCATION && !('RequestType' in e);
}

/** Defaults shared by the construct and the reconciler. */
export const RECONCILER_DEFAULTS = {
  intervalMinutes: 1,
  rotateBeforeSeconds: 600,
} as const;

/**
 * The fleet metrics contract, shared by the constructs (metric methods, alarms) and the handlers
 * (EMF lines): one namespace, one dimension (the fleet id). Names are a contract with dashboards
 * and alarms users build: never rename one, only add.
 *
 * No aws-cdk-lib import here: the handler bundles include this file.
 */
export const FLEET_METRICS_NAMESPACE = 'CdkLambdaMicroVms/Fleet';
export const FLEET_METRIC_DIMENSION = 'FleetId';

export type FleetMetricName =
  /** The fleet's desiredCount (as the reconciler targets it). */
  | 'DesiredCount'
  /** Instances RUNNING or SUSPENDED (a warm pool's suspended instances count). */
  | 'ReadyCount'
  | 'RunningCount'
  | 'SuspendedCount'
  /** Launched, not yet RUNNING. */
  | 'PendingCount'
  /** MicroVMs launched by the reconciler. */
  | 'Launched'
  /** Replacements of instances the service ended at `maximumDuration`. */
  | 'ReplacedExpired'
  /** Replacements of instances ended out of band (TerminateMicrovm by someone else, hook failures, gone from ListMicrovms). */
  | 'ReplacedTerminated'
  /** Make-before-break replacements of instances close to `maximumDuration`. */
  | 'ReplacedRotation'
  /** Instances the idle policy ended (terminateAfterSuspended) that were let go, not replaced. */
  | 'ReleasedIdle'
  /** RunMicrovm requests that launched nothing (refused, or retries exhausted). */
  | 'FailedLaunches'
  /** Throttled API answers (every attempt). */
  | 'ThrottledCalls'
  /** Wall time of one reconcile run, milliseconds. */
  | 'ReconcileDuration';
