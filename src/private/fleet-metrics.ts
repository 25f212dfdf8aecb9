import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { FLEET_METRIC_DIMENSION, FLEET_METRICS_NAMESPACE, FleetMetricName } from './reconciler-wire';

/** Gauges (one value per run) read as the lowest of the period; counters as the sum. */
const DEFAULT_STATISTIC: Record<FleetMetricName, string> = {
  DesiredCount: 'Maximum',
  ReadyCount: 'Minimum',
  RunningCount: 'Minimum',
  SuspendedCount: 'Minimum',
  PendingCount: 'Maximum',
  Launched: 'Sum',
  ReplacedExpired: 'Sum',
  ReplacedTerminated: 'Sum',
  ReplacedRotation: 'Sum',
  ReleasedIdle: 'Sum',
  FailedLaunches: 'Sum',
  ThrottledCalls: 'Sum',
  ReconcileDuration: 'Average',
};

/** A metric of one fleet: its namespace, its fleet id dimension, a one-minute period (the default schedule). */
export function fleetMetric(fleetId: string, metricName: FleetMetricName, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: FLEET_METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { [FLEET_METRIC_DIMENSION]: fleetId },
    statistic: DEFAULT_STATISTIC[metricName],
    period: Duration.minutes(1),
    ...props,
  });
}

/**
 * Alarm: fewer than desired ready (RUNNING or SUSPENDED) for `minutes` consecutive minutes.
 * Missing data breaches: a fleet whose reconciler stopped reporting is not known to be whole.
 */
export function readyBelowDesiredAlarm(scope: Construct, id: string, fleetId: string, minutes: number, description?: string): cloudwatch.Alarm {
  const shortfall = new cloudwatch.MathExpression({
    expression: 'desired - ready',
    usingMetrics: { desired: fleetMetric(fleetId, 'DesiredCount'), ready: fleetMetric(fleetId, 'ReadyCount') },
    period: Duration.minutes(1),
    label: 'MicroVMs short of desiredCount',
  });
  return shortfall.createAlarm(scope, id, {
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: minutes,
    datapointsToAlarm: minutes,
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    alarmDescription: description ?? `Fewer MicroVMs ready than desiredCount for ${minutes} minute(s)`,
  });
}

/** Alarm: at least `threshold` failed launches within `minutes` minutes. */
export function launchFailuresAlarm(scope: Construct, id: string, fleetId: string, threshold: number, minutes: number,
  description?: string): cloudwatch.Alarm {
  return fleetMetric(fleetId, 'FailedLaunches', { period: Duration.minutes(minutes) }).createAlarm(scope, id, {
    threshold,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    alarmDescription: description ?? `At least ${threshold} failed MicroVM launch(es) in ${minutes} minute(s)`,
  });
}
