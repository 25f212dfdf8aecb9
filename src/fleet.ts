import {
  CustomResource,
  Duration,
  Fn,
  IResource,
  RemovalPolicy,
  Resource,
  Stack,
  Token,
} from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { IMicroVmImage, MicroVmImage } from './image';
import { IMicroVmImageVersion } from './image-version';
import { MicroVmLogging } from './logging';
import { ManagedNetworkConnector, NetworkConnectorDirection } from './managed-connectors';
import { fleetMetric, launchFailuresAlarm, readyBelowDesiredAlarm } from './private/fleet-metrics';
import { passedConnectorArns } from './private/grants';
import { acknowledgeWildcards } from './private/nag';
import { imageNameOf, MicroVmsProvider, PROVIDER_TOTAL_TIMEOUT } from './private/provider';
import { FleetReconcilerSchedules } from './private/reconciler';
import type { FleetMetricName } from './private/reconciler-wire';
import { StagedProperties, stageProperties, warnUnstaged } from './private/staged';
import { checkDurationSeconds, checkEgressConnectors, checkImage, checkMaxItems, checkRange, checkRemovalPolicy } from './private/validation';
import { DEFAULT_FLEET_TIMEOUT_SECONDS, DEFAULT_LAUNCH_RATE, FleetAttr, FLEET_ATTRIBUTE_MAX_INSTANCES, FleetProps, HANDLER_ROLE_ARN, LoggingWire, MAX_RUN_HOOK_PAYLOAD_BYTES, ResourceType } from './private/wire';

const MAX_DURATION = Duration.hours(8);
const MAX_PAYLOAD_BYTES = MAX_RUN_HOOK_PAYLOAD_BYTES;
const DEFAULT_TIMEOUT = Duration.seconds(DEFAULT_FLEET_TIMEOUT_SECONDS);
const MAX_TIMEOUT = PROVIDER_TOTAL_TIMEOUT.minus(Duration.minutes(5));
const MAX_DESIRED_COUNT = 10_000;

/** The three settings of a MicroVM idle policy (the API requires all three together). */
export interface MicroVmIdlePolicy {
  /** Suspend after this long without inbound endpoint traffic: 60 seconds to 8 hours. */
  readonly suspendAfterIdle: Duration;
  /** Terminate after this long suspended: 0 (at once) to 8 hours. */
  readonly terminateAfterSuspended: Duration;
  /**
   * Resume a suspended MicroVM when traffic arrives.
   * @default true
   */
  readonly autoResume?: boolean;
}

/** Options of a rolling update. */
export interface RollingUpdateOptions {
  /**
   * Replacements in flight at once. Old instances are terminated as their replacements become
   * ready, and new replacements launch while earlier ones still boot, so the fleet never has fewer
   * than `desiredCount` ready instances and needs memory quota for `desiredCount + batchSize`
   * instances during the update. Set it to bound that extra memory (1 replaces one at a time).
   * @default - ten seconds of `launchRate` launches, at most `desiredCount`: 50 at the default 5/s, so
   * a 20-instance fleet of 2 GiB images may hold up to 40 instances (80 GiB) while it updates. If the
   * account's memory quota refuses a launch, the update continues within what the quota allows
   * (terminating an old instance first when nothing else frees memory) instead of failing.
   */
  readonly batchSize?: number;
}

/** How a configuration change (image version, roles, connectors, policies, payload) replaces instances. */
export class FleetUpdatePolicy {
  /** Replace in batches, never with fewer than `desiredCount` ready instances. */
  public static rolling(options: RollingUpdateOptions = {}): FleetUpdatePolicy {
    if (options.batchSize !== undefined) {
      checkRange('updatePolicy batchSize', options.batchSize, 1, MAX_DESIRED_COUNT, 'replace at least one instance at a time');
    }
    return new FleetUpdatePolicy('ROLLING', options.batchSize);
  }

  /**
   * Launch every replacement at once, then terminate the old instances once the new ones are
   * ready: the fastest update, never fewer than `desiredCount` ready instances, and twice the
   * memory quota while it runs.
   */
  public static replaceAll(): FleetUpdatePolicy {
    return new FleetUpdatePolicy('REPLACE_ALL');
  }

  private constructor(
    /** ROLLING or REPLACE_ALL. */
    public readonly kind: string,
    /** Replacements in flight at once (ROLLING); undefined: sized from the launch rate by the provider. */
    public readonly batchSize?: number,
  ) {}

  /** `ROLLING(batchSize=N)` or `REPLACE_ALL`. */
  public toString(): string {
    return this.batchSize === undefined ? this.kind : `${this.kind}(batchSize=${this.batchSize})`;
  }
}

/** A MicroVM fleet, created here or imported. */
export interface IMicroVmFleet extends IResource {
  /**
   * The fleet id: the partition key of its instances in the inventory table.
   * @attribute
   */
  readonly fleetId: string;
  /** The image the fleet runs. */
  readonly image: IMicroVmImage;
  /** The inventory table (one item per instance under `pk = fleetId`). */
  readonly inventoryTable: dynamodb.ITable;

  /**
   * Grants CreateMicrovmAuthToken (connect to the instances' endpoints). MicroVMs have no ARN:
   * IAM authorizes instance operations on their image, so the grant covers every MicroVM of the image.
   */
  grantConnect(grantee: iam.IGrantable): iam.Grant;
  /**
   * Grants CreateMicrovmShellAuthToken; the fleet must have SHELL_INGRESS. MicroVMs have no ARN:
   * the grant covers every MicroVM of the image.
   */
  grantShell(grantee: iam.IGrantable): iam.Grant;
  /**
   * Grants reading the instances (GetMicrovm, ListMicrovms) and the inventory. MicroVMs have no
   * ARN: the grant covers every MicroVM of the image (ListMicrovms: every MicroVM of the account).
   */
  grantRead(grantee: iam.IGrantable): iam.Grant;
  /**
   * Grants suspending, resuming and terminating the instances (and reading them). MicroVMs have
   * no ARN: the grant covers every MicroVM of the image, not only this fleet's.
   */
  grantManage(grantee: iam.IGrantable): iam.Grant;
  /** Grants reading the inventory with one DynamoDB Query (`pk = fleetId`). */
  grantReadInventory(grantee: iam.IGrantable): iam.Grant;

  /**
   * A metric the fleet reconciler publishes (namespace `CdkLambdaMicroVms/Fleet`, dimension
   * `FleetId`, one-minute period): DesiredCount, ReadyCount, RunningCount, SuspendedCount,
   * PendingCount, Launched, ReplacedExpired, ReplacedTerminated, ReplacedRotation, ReleasedIdle,
   * FailedLaunches, ThrottledCalls, ReconcileDuration (milliseconds).
   */
  metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** The desired count the reconciler targets (Maximum per period). */
  metricDesiredCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Instances RUNNING or SUSPENDED (Minimum per period). */
  metricReadyCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Instances RUNNING (Minimum per period). */
  metricRunningCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Instances SUSPENDED (Minimum per period): a warm pool's, or idle ones. */
  metricSuspendedCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** MicroVMs the reconciler launched (Sum). */
  metricLaunched(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Replacements by cause (Sum): the service's `maximumDuration` cap, out-of-band terminations, or make-before-break rotations. */
  metricReplaced(cause: FleetReplacementCause, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** RunMicrovm requests that launched nothing (Sum). */
  metricFailedLaunches(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Throttled API answers the reconciler got (Sum). */
  metricThrottledCalls(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Wall time of one reconcile run in milliseconds (Average). */
  metricReconcileDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
}

/** Why the reconciler replaced an instance. */
export enum FleetReplacementCause {
  /** The service ended it at `maximumDuration` before a rotation replaced it. */
  EXPIRED = 'ReplacedExpired',
  /** It ended out of band: TerminateMicrovm by someone else, a failed hook, or gone from ListMicrovms. */
  TERMINATED = 'ReplacedTerminated',
  /** Make-before-break: replaced shortly before `maximumDuration`. */
  ROTATION = 'ReplacedRotation',
}

/** Options of `addReadyBelowDesiredAlarm`. */
export interface ReadyBelowDesiredAlarmOptions {
  /**
   * Consecutive minutes with fewer ready instances than desired before the alarm fires.
   * @default 5
   */
  readonly minutes?: number;
  /**
   * @default - a description naming the condition
   */
  readonly alarmDescription?: string;
}

/** Options of `addLaunchFailuresAlarm`. */
export interface LaunchFailuresAlarmOptions {
  /**
   * Failed launches that fire the alarm.
   * @default 1
   */
  readonly threshold?: number;
  /**
   * The window the failures are summed over, in minutes.
   * @default 5
   */
  readonly minutes?: number;
  /**
   * @default - a description naming the condition
   */
  readonly alarmDescription?: string;
}

/** What a fleet is imported by. */
export interface MicroVmFleetAttributes {
  /** The fleet id. */
  readonly fleetId: string;
  /** The image the fleet runs. */
  readonly image: IMicroVmImage;
  /** The inventory table. */
  readonly inventoryTable: dynamodb.ITable;
  /**
   * Whether the fleet's instances have SHELL_INGRESS (grantShell checks it).
   * @default false
   */
  readonly shellIngress?: boolean;
}

/** Shared by created and imported fleets. */
export abstract class MicroVmFleetBase extends Resource implements IMicroVmFleet {
  public abstract readonly fleetId: string;
  public abstract readonly image: IMicroVmImage;
  public abstract readonly inventoryTable: dynamodb.ITable;
  /** Whether the instances have SHELL_INGRESS. */
  protected abstract readonly shellIngress: boolean;
  /** How to give the fleet SHELL_INGRESS, for grantShell's error. */
  protected abstract readonly shellIngressFix: string;

  public grantConnect(grantee: iam.IGrantable): iam.Grant {
    return this.image.grant(grantee, 'lambda:CreateMicrovmAuthToken');
  }

  public grantShell(grantee: iam.IGrantable): iam.Grant {
    if (!this.shellIngress) {
      throw new Error(`grantShell: MicroVmFleet ${this.node.path} does not have SHELL_INGRESS, so shell tokens would be refused: ${this.shellIngressFix}`);
    }
    return this.image.grant(grantee, 'lambda:CreateMicrovmShellAuthToken');
  }

  public grantRead(grantee: iam.IGrantable): iam.Grant {
    const grant = this.image.grant(grantee, 'lambda:GetMicrovm');
    // ListMicrovms has no resource type in IAM: it cannot be scoped to an ARN.
    iam.Grant.addToPrincipal({ grantee, actions: ['lambda:ListMicrovms'], resourceArns: ['*'] });
    this.grantReadInventory(grantee);
    return grant;
  }

  public grantManage(grantee: iam.IGrantable): iam.Grant {
    this.grantRead(grantee);
    return this.image.grant(grantee, 'lambda:SuspendMicrovm', 'lambda:ResumeMicrovm', 'lambda:TerminateMicrovm');
  }

  public grantReadInventory(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['dynamodb:Query', 'dynamodb:GetItem'],
      resourceArns: [this.inventoryTable.tableArn],
    });
  }

  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return fleetMetric(this.fleetId, metricName as FleetMetricName, props);
  }
  public metricDesiredCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('DesiredCount', props);
  }
  public metricReadyCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ReadyCount', props);
  }
  public metricRunningCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('RunningCount', props);
  }
  public metricSuspendedCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('SuspendedCount', props);
  }
  public metricLaunched(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('Launched', props);
  }
  public metricReplaced(cause: FleetReplacementCause, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(cause, props);
  }
  public metricFailedLaunches(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('FailedLaunches', props);
  }
  public metricThrottledCalls(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ThrottledCalls', props);
  }
  public metricReconcileDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('ReconcileDuration', props);
  }

  /**
   * An alarm when fewer instances than desired are ready (RUNNING or SUSPENDED) for `minutes`
   * consecutive minutes, from the reconciler's DesiredCount and ReadyCount. Missing data breaches:
   * a fleet nothing reports on (no reconciler, `selfHealing: false`) is not known to be whole.
   */
  public addReadyBelowDesiredAlarm(id: string, options: ReadyBelowDesiredAlarmOptions = {}): cloudwatch.Alarm {
    const minutes = options.minutes ?? 5;
    checkRange('minutes', minutes, 1, 1440, 'alarm after 1 minute to 1 day below desiredCount');
    return readyBelowDesiredAlarm(this, id, this.fleetId, minutes, options.alarmDescription);
  }

  /** An alarm when at least `threshold` launches fail within `minutes` minutes. */
  public addLaunchFailuresAlarm(id: string, options: LaunchFailuresAlarmOptions = {}): cloudwatch.Alarm {
    const minutes = options.minutes ?? 5;
    const threshold = options.threshold ?? 1;
    checkRange('minutes', minutes, 1, 1440, 'sum failures over 1 minute to 1 day');
    checkRange('threshold', threshold, 1, 100_000, 'alarm on at least one failed launch');
    return launchFailuresAlarm(this, id, this.fleetId, threshold, minutes, options.alarmDescription);
  }
}

/** Properties of a MicroVmFleet. */
export interface MicroVmFleetProps {
  /** The image to run. */
  readonly image: IMicroVmImage;
  /**
   * The image version to run.
   * @default - for a MicroVmImage of this app, the version its current deploy produced (an image
   * update rolls the fleet); for an imported image, its latest active version at each deploy
   */
  readonly version?: IMicroVmImageVersion;
  /**
   * How many MicroVMs to keep. 0 is allowed (the fleet exists, nothing runs).
   */
  readonly desiredCount: number;
  /**
   * The role the instances run as (AWS credentials inside the guest, runtime logs).
   * @default - a role is created when `logging` writes to CloudWatch, none otherwise
   */
  readonly executionRole?: iam.IRole;
  /**
   * AWS-managed ingress connectors (at most 10), e.g. ALL_INGRESS, or SHELL_INGRESS for grantShell.
   * @default - the service's default ingress (HTTPS to the endpoint)
   */
  readonly ingress?: ManagedNetworkConnector[];
  /**
   * Egress connectors (at most 10): customer VPC connectors or ManagedNetworkConnector.INTERNET_EGRESS.refIn(...).
   * @default - the service's default (the public internet)
   */
  readonly egressConnectors?: lambda.INetworkConnectorRef[];
  /**
   * Suspend after idle, terminate after suspended, auto-resume.
   * @default - no idle policy: instances run until `maximumDuration`
   */
  readonly idlePolicy?: MicroVmIdlePolicy;
  /**
   * The longest an instance lives (running plus suspended): 1 second to 8 hours. With
   * `selfHealing` (the default), instances are rotated before the cap; without it, instances the
   * service stops at the cap are replaced by the next deploy, not counted.
   * @default Duration.hours(8)
   */
  readonly maximumDuration?: Duration;
  /**
   * Application logs of the instances.
   * @default - the service's default (no CloudWatch logs without an execution role)
   */
  readonly logging?: MicroVmLogging;
  /**
   * The body of the /run hook, at most 4096 bytes. A literal payload is not in the template: it is
   * written at synth into a JSON file staged as an asset of the stack (uploaded to the bootstrap
   * bucket by `cdk deploy`; the template carries only its bucket and key), which the provider and
   * the reconciler read with the fleet's own handler role (s3:GetObject on exactly that object), so
   * it appears in no CloudFormation event, Step Functions execution history or log. A payload that
   * is a token (known only at deploy time) travels in the resource's properties, with a synth
   * warning. Whoever can read the cloud assembly (`cdk.out`) or the asset bucket can read it: use
   * `runHookPayloadSecret` for anything secret.
   * @default - none
   */
  readonly runHookPayload?: string;
  /**
   * A secret whose SecretString is the /run payload (at most 4096 bytes). The provider reads it
   * at deploy time; it is never in the template, the response or the logs.
   * @default - none
   */
  readonly runHookPayloadSecret?: secretsmanager.ISecret;
  /**
   * How configuration changes replace instances (count changes only scale).
   * @default FleetUpdatePolicy.rolling()
   */
  readonly updatePolicy?: FleetUpdatePolicy;
  /**
   * Suspend each instance once RUNNING: a warm pool that resumes in about a second.
   * @default false
   */
  readonly suspendAfterLaunch?: boolean;
  /**
   * RunMicrovm calls per second (the account's RunMicrovm rate quota is 5 by default). The fleets
   * of one stack deploying at the same time share one schedule of RunMicrovm (and TerminateMicrovm,
   * 10/s) calls, kept in the stack's inventory table with conditional writes: together they keep to
   * the default quota (5/s; a fleet with a lower `launchRate` also keeps to its own rate, and takes
   * only its calls' share of the schedule), and a fleet deploying alone gets all of its rate. Until issue 13 each fleet launched at
   * this rate as if alone, so ten fleets deploying at once offered ten times the quota and were
   * mostly throttled. Fleets of other stacks deploying at the same time are not on the schedule,
   * so a RunMicrovm throttle makes it adapt: each throttle cuts the stack's share of this rate by
   * 30% (once a second), each accepted call gives back 1% of it; two stacks deploying at once
   * converge on about half the rate each, a stack alone keeps all of it.
   * @default 5
   */
  readonly launchRate?: number;
  /**
   * How long one deploy may take to converge (at most 55 minutes: CloudFormation waits one hour).
   * @default Duration.minutes(55)
   */
  readonly timeout?: Duration;
  /**
   * What happens when the fleet leaves the stack. DESTROY terminates every instance, RETAIN
   * leaves them running and keeps the inventory table.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Hold the desired count between deploys: the stack's reconciler (run by the provider's own
   * onEvent function, which an EventBridge Scheduler schedule per fleet invokes; no Lambda
   * function of its own) replaces instances that are gone and rotates instances before
   * `maximumDuration`, make-before-break. It never acts while CloudFormation deploys the stack.
   * `false`: instances are replaced only by the next deploy, and no schedule is added.
   * @default true
   */
  readonly selfHealing?: boolean;
  /**
   * How often the reconciler runs for this fleet: whole minutes, 1 to 60.
   * @default Duration.minutes(1)
   */
  readonly selfHealingInterval?: Duration;
  /**
   * Start a replacement this long before `maximumDuration` ends an instance; the old one is
   * terminated once its replacement is ready. 0 turns rotation off (instances are replaced after
   * the service ends them). Must be shorter than `maximumDuration`.
   * @default - 10 minutes, or half of `maximumDuration` when that is shorter than 20 minutes
   */
  readonly rotateBeforeExpiry?: Duration;
  /**
   * Rotations in flight at once. Each needs memory quota for one more instance while it runs.
   * @default - a tenth of `desiredCount`, at least 1 (10% more memory while a fleet rotates)
   */
  readonly maxRotating?: number;
  /**
   * With an `idlePolicy`: replace instances the service ends after `terminateAfterSuspended`.
   * By default they are let go (the fleet shrinks while idle, as the idle policy asks, and the
   * next deploy restores `desiredCount`); suspended instances always count as ready.
   * @default false
   */
  readonly replaceIdleTerminated?: boolean;
}

/**
 * N MicroVMs from one image version: launched on deploy, reconciled on update, terminated on delete.
 *
 * The instances are tracked in a DynamoDB table the fleet owns (on demand, point-in-time
 * recovery): one item per instance under `pk = fleetId`, sort key `gen#<generation>#slot#<slot>`,
 * with `microvmId`, `endpoint`, `imageVersion`, `state` and `phase` (`LAUNCHED`, or `LAUNCHING`
 * while a launch is in flight). Apps read it with one Query after `grantReadInventory`; fleets of
 * up to 10 instances also expose `instanceIds` and `instanceEndpoints`.
 *
 * Launches are idempotent: each RunMicrovm carries a clientToken derived from the fleet,
 * generation and slot, recorded in the table before the call, so a retried or restarted handler
 * re-issues the same tokens and never launches twice. Calls are paced at `launchRate`, on one
 * schedule shared by the stack's fleets (in the inventory table); throttling
 * and transient errors back off with jitter; a memory quota refusal fails the deploy at once with
 * the quota arithmetic. A failed create terminates everything it launched before it reports.
 *
 * @resource Custom::LambdaMicroVmFleet
 */
export class MicroVmFleet extends MicroVmFleetBase {
  /** Imports a fleet (for grants). */
  public static fromFleetAttributes(scope: Construct, id: string, attrs: MicroVmFleetAttributes): IMicroVmFleet {
    class Import extends MicroVmFleetBase {
      public readonly fleetId = attrs.fleetId;
      public readonly image = attrs.image;
      public readonly inventoryTable = attrs.inventoryTable;
      protected readonly shellIngress = attrs.shellIngress ?? false;
      protected readonly shellIngressFix = 'if its instances run with ManagedNetworkConnector.SHELL_INGRESS, pass `shellIngress: true` to MicroVmFleet.fromFleetAttributes';
    }
    checkImage(`MicroVmFleet.fromFleetAttributes(${id}) image`, attrs.image);
    return new Import(scope, id);
  }

  public readonly fleetId: string;
  public readonly image: IMicroVmImage;
  public readonly inventoryTable: dynamodb.ITable;
  /**
   * The image version the instances run (resolved at deploy time).
   * @attribute
   */
  public readonly imageVersion: string;
  /** The execution role, when the fleet has one. */
  public readonly executionRole?: iam.IRole;
  /** The log group, when the fleet logs to CloudWatch. */
  public readonly logGroup?: logs.ILogGroup;
  protected readonly shellIngress: boolean;
  /** The EventBridge Scheduler schedule that runs the reconciler for this fleet (absent with `selfHealing: false`). */
  public readonly reconcileSchedule?: scheduler.CfnSchedule;
  protected readonly shellIngressFix = 'add ManagedNetworkConnector.SHELL_INGRESS to `ingress`';

  private readonly desiredCount: number;
  private readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: MicroVmFleetProps) {
    super(scope, id);
    validateProps(props);
    this.image = props.image;
    this.desiredCount = props.desiredCount;
    this.shellIngress = (props.ingress ?? []).some((c) => c.connectorName === ManagedNetworkConnector.SHELL_INGRESS.connectorName);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;

    const provider = MicroVmsProvider.getOrCreate(this);
    const table = provider.inventoryTableFor(removalPolicy);
    this.inventoryTable = table;

    if (props.logging && !props.logging.isDisabled) {
      this.logGroup = props.logging.logGroup ?? new logs.LogGroup(this, 'Logs', {
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy,
      });
    }
    this.executionRole = props.executionRole ?? (this.logGroup ? this.createExecutionRole(this.logGroup) : undefined);
    if (props.executionRole && this.logGroup) {
      // The MicroVMs log with the execution role: a given one needs to write to the log group too
      // (a no-op for an imported immutable role, whose owner grants it).
      this.logGroup.grantWrite(props.executionRole);
    }

    const ingressArns = (props.ingress ?? []).map((c) => c.arnIn(this));
    const egressArns = (props.egressConnectors ?? []).map((c) => c.networkConnectorRef.networkConnectorArn);
    const version = props.version?.imageVersion ?? (props.image as { imageVersion?: string }).imageVersion;
    const staged = this.stagePayload(props.runHookPayload);
    const updatePolicy = props.updatePolicy ?? FleetUpdatePolicy.rolling();
    const wire: FleetProps = {
      ImageArn: props.image.imageArn,
      ImageVersion: version,
      DesiredCount: String(props.desiredCount),
      ExecutionRoleArn: this.executionRole?.roleArn,
      IngressConnectors: ingressArns.length ? ingressArns : undefined,
      EgressConnectors: egressArns.length ? egressArns : undefined,
      IdlePolicy: props.idlePolicy ? {
        MaxIdleSeconds: String(props.idlePolicy.suspendAfterIdle.toSeconds()),
        SuspendedSeconds: String(props.idlePolicy.terminateAfterSuspended.toSeconds()),
        AutoResume: String(props.idlePolicy.autoResume ?? true),
      } : undefined,
      MaximumDurationSeconds: String((props.maximumDuration ?? MAX_DURATION).toSeconds()),
      Logging: props.logging ? renderLogging(props.logging, this.logGroup) : undefined,
      RunHookPayload: staged ? undefined : props.runHookPayload,
      StagedProperties: staged?.wire,
      RunHookPayloadSecretArn: props.runHookPayloadSecret?.secretArn,
      UpdatePolicy: updatePolicy.kind,
      BatchSize: updatePolicy.batchSize !== undefined ? String(updatePolicy.batchSize) : undefined,
      SuspendAfterLaunch: props.suspendAfterLaunch ? 'true' : undefined,
      LaunchRate: String(props.launchRate ?? DEFAULT_LAUNCH_RATE),
      TableName: table.tableName,
      TimeoutSeconds: String((props.timeout ?? DEFAULT_TIMEOUT).toSeconds()),
    };
    const selfHealing = props.selfHealing ?? true;
    const handlerRole = provider.handlerRole(this, {
      identity: ['fleet', imageNameOf(props.image.imageArn), ...(staged ? [staged.roleIdentity] : [])],
      statements: [...this.providerStatements(props, table, egressArns, selfHealing), ...(staged ? [staged.statement] : [])],
      description: 'the handler of a MicroVM fleet',
    });
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: ResourceType.FLEET,
      properties: { ...wire, [HANDLER_ROLE_ARN]: handlerRole.roleArn } as any,
      removalPolicy,
      serviceTimeout: PROVIDER_TOTAL_TIMEOUT,
    });
    acknowledgeWildcards(handlerRole, 'ListMicrovms has no IAM resource type, so only * matches it; the other statements are scoped to this image '
      + 'and its version-qualified ARNs (<image arn>:*).', '*', `${props.image.imageArn}:*`);

    this.fleetId = this.resource.ref;
    this.imageVersion = this.resource.getAttString(FleetAttr.IMAGE_VERSION);

    if (selfHealing) {
      // The reconciler makes its calls on this fleet with the fleet's handler role.
      this.reconcileSchedule = FleetReconcilerSchedules.getOrCreate(this).register(this, {
        resource: this.resource,
        wire,
        handlerRole,
        interval: props.selfHealingInterval,
        rotateBeforeExpiry: props.rotateBeforeExpiry,
        maxRotating: props.maxRotating,
        replaceIdleTerminated: props.replaceIdleTerminated,
        maximumDurationSeconds: (props.maximumDuration ?? MAX_DURATION).toSeconds(),
      });
    }
  }

  /**
   * The instance ids, in slot order, for fleets of up to 10 instances. Larger fleets: read the inventory.
   * A fleet of 0 gives an empty list.
   * @throws if `desiredCount` is over 10 or a token (the length is unknown at synth)
   */
  public get instanceIds(): string[] {
    return this.smallFleetList('instanceIds', FleetAttr.INSTANCE_IDS);
  }

  /**
   * The instance endpoints (host names, no scheme), in slot order (fleets of up to 10 instances).
   */
  public get instanceEndpoints(): string[] {
    return this.smallFleetList('instanceEndpoints', FleetAttr.ENDPOINTS);
  }

  private smallFleetList(name: string, attr: string): string[] {
    if (Token.isUnresolved(this.desiredCount)) {
      throw new Error(`${name}: MicroVmFleet ${this.node.path} has a desiredCount that is only known at deploy time (a token), so the list's length is unknown at synth: ` +
        'read the inventory table instead (grantReadInventory, then Query pk = fleetId), or pass a number');
    }
    if (this.desiredCount > FLEET_ATTRIBUTE_MAX_INSTANCES) {
      throw new Error(`${name}: MicroVmFleet ${this.node.path} has desiredCount ${this.desiredCount}; ids and endpoints are attributes for 0 to ${FLEET_ATTRIBUTE_MAX_INSTANCES} instances (CloudFormation's 4 KB response): ` +
        'read the inventory table instead (grantReadInventory, then Query pk = fleetId)');
    }
    if (this.desiredCount === 0) return [];
    return Fn.split(',', this.resource.getAttString(attr), this.desiredCount);
  }

  /**
   * A literal payload is staged as an asset object (its size checked in validateProps); one that
   * holds a token stays inline, with a warning.
   */
  private stagePayload(payload: string | undefined): StagedProperties | undefined {
    if (payload === undefined) return undefined;
    if (Token.isUnresolved(payload)) {
      warnUnstaged(this, 'run-hook-payload-token', 'runHookPayload', 'For a secret, use runHookPayloadSecret.');
      return undefined;
    }
    return stageProperties(this, { RunHookPayload: payload });
  }

  private createExecutionRole(logGroup: logs.ILogGroup): iam.Role {
    const stack = Stack.of(this);
    const role = new iam.Role(this, 'ExecutionRole', {
      description: 'Runs the MicroVMs of a fleet (cdk-lambda-microvms)',
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    });
    role.assumeRolePolicy!.addStatements(new iam.PolicyStatement({
      actions: ['sts:TagSession'],
      principals: [new iam.ServicePrincipal('lambda.amazonaws.com')],
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn, `${logGroup.logGroupArn}:log-stream:*`],
    }));
    acknowledgeWildcards(role, 'The service names the log streams of each MicroVM: the statement is scoped to the fleet\'s own log group.',
      `${logGroup.logGroupArn}:log-stream:*`);
    return role;
  }

  /** The handler (and the reconciler) may run and stop instances of exactly this image, and use exactly this table, roles and secret. */
  private providerStatements(
    props: MicroVmFleetProps, table: dynamodb.ITable, egressArns: string[], selfHealing: boolean,
  ): iam.PolicyStatement[] {
    const imageArn = props.image.imageArn;
    const statements = [
      new iam.PolicyStatement({
        actions: [
          'lambda:RunMicrovm', 'lambda:TerminateMicrovm',
          // A round observes the few instances about to change with GetMicrovm, the rest with ListMicrovms.
          'lambda:GetMicrovm',
          // A warm pool suspends its instances; turning it off resumes them. Both stay granted
          // whatever `suspendAfterLaunch` says now: CloudFormation rolls a failed toggle back
          // while this role still holds the new policy (the role's update is undone after the fleet's).
          'lambda:SuspendMicrovm', 'lambda:ResumeMicrovm',
          // The version's memory, to explain a memory quota refusal.
          'lambda:GetMicrovmImageVersion',
          // Without a version, the handler resolves the image's latest active one at each deploy;
          // granted always for the same reason (a rollback between a pinned and a latest version).
          'lambda:GetMicrovmImage',
        ],
        // Instance operations authorize against the image (and its version-qualified ARNs):
        // MicroVMs have no ARN, so this covers every MicroVM of the image.
        resources: [imageArn, `${imageArn}:*`],
      }),
      new iam.PolicyStatement({
        // ListMicrovms has no resource type in IAM; the handler filters each call by this image.
        actions: ['lambda:ListMicrovms'],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        // Exactly the connectors each RunMicrovm passes: the fleet's, or the service's defaults
        // (HTTP_INGRESS, INTERNET_EGRESS, recorded on the live service) for a direction it leaves empty.
        actions: ['lambda:PassNetworkConnector'],
        resources: passedConnectorArns(this, (props.ingress ?? []).map((c) => c.arnIn(this)), egressArns),
      }),
      new iam.PolicyStatement({
        actions: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchWriteItem',
          // The reconciler (same role) deletes its run's lease item when the run ends.
          ...(selfHealing ? ['dynamodb:DeleteItem'] : [])],
        resources: [table.tableArn],
      }),
    ];
    if (this.executionRole) {
      statements.push(new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.executionRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
      }));
    }
    const secret = props.runHookPayloadSecret;
    if (secret) {
      statements.push(new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        // A secret imported by name has a partial ARN: the suffix Secrets Manager adds is six characters.
        resources: [secret.secretFullArn ?? `${secret.secretArn}-??????`],
      }));
      if (secret.encryptionKey) {
        statements.push(new iam.PolicyStatement({
          actions: ['kms:Decrypt'],
          resources: [secret.encryptionKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` } },
        }));
      }
    }
    return statements;
  }
}

function renderLogging(logging: MicroVmLogging, logGroup?: logs.ILogGroup): LoggingWire {
  if (logging.isDisabled) return { Disabled: 'true' };
  return { LogGroup: logGroup?.logGroupName, LogStream: logging.logStream };
}

function validateProps(props: MicroVmFleetProps): void {
  checkImage('MicroVmFleet image', props.image);
  if (props.version) {
    checkImage('MicroVmFleet version.image', props.version.image);
    checkVersionOfImage(props.image, props.version);
  }
  checkRange('desiredCount', props.desiredCount, 0, MAX_DESIRED_COUNT, 'use 0 to stop every instance, and split very large fleets');
  checkDurationSeconds('maximumDuration', props.maximumDuration, 1, MAX_DURATION.toSeconds(), 'the service caps a MicroVM at 8 hours, running plus suspended');
  checkRemovalPolicy('removalPolicy', props.removalPolicy, 'a MicroVM fleet');
  if (props.runHookPayload !== undefined && !Token.isUnresolved(props.runHookPayload)) {
    const bytes = Buffer.byteLength(props.runHookPayload, 'utf8');
    if (bytes > MAX_PAYLOAD_BYTES) {
      throw new Error(`runHookPayload must be at most ${MAX_PAYLOAD_BYTES} bytes, got ${bytes}: RunMicrovm rejects longer payloads; pass a reference the instance resolves instead`);
    }
  }
  if (props.runHookPayload !== undefined && props.runHookPayloadSecret) {
    throw new Error('pass runHookPayload or runHookPayloadSecret, not both');
  }
  if (props.idlePolicy) {
    checkDurationSeconds('idlePolicy.suspendAfterIdle', props.idlePolicy.suspendAfterIdle, 60, MAX_DURATION.toSeconds(), 'the service waits at least 60 seconds and at most 8 hours');
    checkDurationSeconds('idlePolicy.terminateAfterSuspended', props.idlePolicy.terminateAfterSuspended, 0, MAX_DURATION.toSeconds(), 'use 0 to terminate on suspend, at most 8 hours');
  }
  if (props.launchRate !== undefined && !Token.isUnresolved(props.launchRate) && !(props.launchRate > 0 && props.launchRate <= 1000)) {
    throw new Error(`launchRate must be more than 0 and at most 1000 RunMicrovm calls per second, got ${props.launchRate}: use your account's RunMicrovm rate quota (5 by default)`);
  }
  checkMaxItems('ingress', props.ingress, 10, 'RunMicrovm takes at most 10 ingress connectors');
  for (const c of props.ingress ?? []) {
    if (c.direction !== NetworkConnectorDirection.INGRESS) {
      throw new Error(`ingress: ${c.connectorName} is an ${c.direction} connector: pass it in egressConnectors`);
    }
  }
  const ingressNames = (props.ingress ?? []).map((c) => c.connectorName);
  if (ingressNames.includes(ManagedNetworkConnector.NO_INGRESS.connectorName) && ingressNames.length > 1) {
    throw new Error(`ingress: NO_INGRESS shuts every way in, so it cannot go with other ingress connectors, got [${ingressNames.join(', ')}]: ` +
      'pass NO_INGRESS alone, or leave it out');
  }
  checkMaxItems('egressConnectors', props.egressConnectors, 10, 'RunMicrovm takes at most 10 egress connectors');
  checkEgressConnectors('egressConnectors', props.egressConnectors);
  checkDurationSeconds('timeout', props.timeout, 60, MAX_TIMEOUT.toSeconds(), 'CloudFormation waits at most one hour for a custom resource: use 1 to 55 minutes');
}

/** The fleet's `version` must be a version of its `image`. */
function checkVersionOfImage(image: IMicroVmImage, version: IMicroVmImageVersion): void {
  if (version.image === image) return;
  const ours = image.imageArn;
  const theirs = version.image.imageArn;
  // Two images of this app, or two literal ARNs or names (imports: same account and Region) that
  // differ: certainly two images. A token against a literal may be the same image: not checked.
  const bothCreated = image instanceof MicroVmImage && version.image instanceof MicroVmImage;
  const differ = (x: string, y: string) => !Token.isUnresolved(x) && !Token.isUnresolved(y) && x !== y;
  if (bothCreated || differ(ours, theirs) || differ(image.imageName, version.image.imageName)) {
    throw new Error(`version: the version ${version.node.path} belongs to image ${version.image.node.path}, not to the fleet's image ${image.node.path}: ` +
      'pass a version of the fleet\'s image (image.currentVersion, or MicroVmImageVersion.fromVersionAttributes({ image, imageVersion })), or run the other image');
  }
}
