import type { LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import type { SlotRecord } from './inventory';
import { FLEET_METRICS_NAMESPACE, FLEET_METRIC_DIMENSION, FleetMetricName } from '../../src/private/reconciler-wire';
import { classifyError } from '../shared/errors';
import { READY_MICROVM_STATES } from '../shared/microvm-states';

/**
 * CloudWatch embedded metric format (EMF): one JSON line per fleet and run on stdout, which
 * CloudWatch Logs turns into metrics in one namespace, dimensioned by the fleet id only. No
 * cloudwatch:PutMetricData permission and no API call on the reconcile path.
 *
 * Lines are written with `process.stdout.write`, not `console.log`: with Lambda's JSON log format,
 * console output is wrapped in Lambda's own JSON object and CloudWatch would no longer find the
 * `_aws` key at the top level.
 */
export type FleetMetricValues = Partial<Record<FleetMetricName, number>>;

/** The unit of each metric (CloudWatch units). */
const UNITS: Record<FleetMetricName, string> = {
  DesiredCount: 'Count',
  ReadyCount: 'Count',
  RunningCount: 'Count',
  SuspendedCount: 'Count',
  PendingCount: 'Count',
  Launched: 'Count',
  ReplacedExpired: 'Count',
  ReplacedTerminated: 'Count',
  ReplacedRotation: 'Count',
  ReleasedIdle: 'Count',
  FailedLaunches: 'Count',
  ThrottledCalls: 'Count',
  ReconcileDuration: 'Milliseconds',
};

/** One EMF document (a plain object: tests read it back). */
export function emfDocument(fleetId: string, values: FleetMetricValues, timestamp: number): Record<string, unknown> {
  const names = (Object.keys(values) as FleetMetricName[]).filter((n) => Number.isFinite(values[n]));
  const doc: Record<string, unknown> = {
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [{
        Namespace: FLEET_METRICS_NAMESPACE,
        Dimensions: [[FLEET_METRIC_DIMENSION]],
        Metrics: names.map((n) => ({ Name: n, Unit: UNITS[n] })),
      }],
    },
    [FLEET_METRIC_DIMENSION]: fleetId,
  };
  for (const n of names) doc[n] = values[n];
  return doc;
}

/** Where EMF lines go: stdout in Lambda, an array in tests and the benchmark. */
export type MetricsSink = (line: string) => void;

export const STDOUT_SINK: MetricsSink = (line) => {
  process.stdout.write(`${line}\n`);
};

/** Writes one EMF line for `fleetId` (nothing when there are no values). */
export function publishFleetMetrics(sink: MetricsSink, fleetId: string, values: FleetMetricValues, timestamp: number): void {
  const doc = emfDocument(fleetId, values, timestamp);
  if (!((doc._aws as any).CloudWatchMetrics[0].Metrics as unknown[]).length) return;
  sink(JSON.stringify(doc));
}

/** Record state of an instance the idle policy ended and the fleet let go (not replaced until the next deploy). */
export const RELEASED = 'RELEASED';

/**
 * The instance gauges of a fleet from its inventory records, as the reconciler and the deploy-time
 * handler both publish them: ready (RUNNING or SUSPENDED), running, suspended, and pending
 * (launched or launching, not yet ready). Instances let go (RELEASED) are not counted.
 */
export function instanceCounts(records: readonly SlotRecord[]): { ready: number; running: number; suspended: number; pending: number } {
  const live = records.filter((r) => r.state !== RELEASED);
  const ready = live.filter((r) => r.phase === 'LAUNCHED' && READY_MICROVM_STATES.has(r.state ?? ''));
  return {
    ready: ready.length,
    running: ready.filter((r) => r.state === 'RUNNING').length,
    suspended: ready.filter((r) => r.state === 'SUSPENDED').length,
    pending: live.filter((r) => r.phase === 'LAUNCHING' || r.state === 'PENDING').length,
  };
}

/**
 * Counts throttled answers seen by `client` (every attempt, whoever retries it): a middleware at
 * the end of the stack, so the SDK's own retries are counted one by one. Returns the counter.
 */
export function countThrottles(client: LambdaMicrovmsClient): { throttled: number } {
  const counter = { throttled: 0 };
  // After the retry middleware: every attempt passes here, once its answer has been deserialized.
  client.middlewareStack.addRelativeTo((next: any) => async (args: any) => {
    try {
      return await next(args);
    } catch (err) {
      if (classifyError(err) === 'throttled') counter.throttled++;
      throw err;
    }
  }, { relation: 'after', toMiddleware: 'retryMiddleware' });
  return counter;
}
