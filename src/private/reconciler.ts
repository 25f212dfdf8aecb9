import * as path from 'node:path';
import { CustomResource, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Construct, IConstruct } from 'constructs';
import { acknowledgeWildcards } from './nag';
import { localEndpointEnvironment, MicroVmsProvider } from './provider';
import { RECONCILER_DEFAULTS, ReconcilerInput } from './reconciler-wire';
import { checkRange } from './validation';
import type { FleetProps } from './wire';

/** Pinned like the provider's settings (docs/architecture.md): an aws-cdk-lib upgrade does not churn templates. */
const RUNTIME = lambda.Runtime.NODEJS_24_X;
const MEMORY_MB = 256;
/** One run: observe, launch (paced), record. The run stops sending at 40 s; the lease outlives this. */
const TIMEOUT = Duration.seconds(60);
/** A run scheduled longer ago than this is dropped: the next one sees newer state. */
const MAX_EVENT_AGE = Duration.seconds(60);
const LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

/** What a fleet asks of the stack's reconciler. */
export interface ReconcilerRegistration {
  /** The fleet's custom resource (its Ref is the fleet id; the schedule depends on it). */
  readonly resource: CustomResource;
  /** The fleet's properties, exactly as its custom resource gets them. */
  readonly wire: FleetProps;
  /**
   * The fleet's handler role (MicroVmsProvider.handlerRole): the reconciler assumes it for every
   * call on the fleet, so its statements (with the inventory's DeleteItem for the run's lease) are
   * the fleet's, in one place. It is made to trust the reconciler's role too.
   */
  readonly handlerRole: iam.Role;
  readonly interval?: Duration;
  readonly rotateBeforeExpiry?: Duration;
  readonly maxRotating?: number;
  readonly replaceIdleTerminated?: boolean;
  /** `maximumDuration` in seconds (rotateBeforeExpiry must be shorter). */
  readonly maximumDurationSeconds: number;
}

/**
 * The stack's fleet reconciler: one Lambda function and one role per stack, created on first use;
 * each self-healing fleet adds an EventBridge Scheduler schedule that invokes it with the fleet's
 * properties and its handler role, which the run assumes (the role trusts the reconciler's role).
 * A fleet leaving the stack takes its schedule and its handler role with it.
 */
export class FleetReconcilerFunction extends Construct {
  /** The stack's reconciler, created on first use. */
  public static getOrCreate(scope: IConstruct): FleetReconcilerFunction {
    const stack = Stack.of(scope);
    const id = 'cdk-lambda-microvms.fleet-reconciler';
    return (stack.node.tryFindChild(id) as FleetReconcilerFunction | undefined) ?? new FleetReconcilerFunction(stack, id);
  }

  public readonly function: lambda.Function;
  /**
   * The function's role: its own logs, DescribeStacks on this stack, and sts:AssumeRole on the
   * stack's handler roles (by their IAM path). No statement per fleet: a fleet's calls are made with
   * the fleet's own handler role, so the role stays the same size at any number of fleets.
   */
  public readonly role: iam.Role;
  /** The role EventBridge Scheduler invokes the function with. */
  public readonly schedulerRole: iam.Role;

  private constructor(scope: Stack, id: string) {
    super(scope, id);
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: LOG_RETENTION, removalPolicy: RemovalPolicy.DESTROY });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'cdk-lambda-microvms fleet reconciler (holds fleets at their desired count between deploys)',
    });
    this.role.addToPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn, `${logGroup.logGroupArn}:log-stream:*`],
    }));
    // The fence: a run acts only while no CloudFormation operation runs on this very stack.
    this.role.addToPolicy(new iam.PolicyStatement({ actions: ['cloudformation:DescribeStacks'], resources: [scope.stackId] }));
    // Each run assumes the handler role of the fleet it reconciles, which trusts this role by name.
    const handlerRoles = `arn:${scope.partition}:iam::${scope.account}:role${MicroVmsProvider.getOrCreate(scope).rolePath}*`;
    this.role.addToPolicy(new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: [handlerRoles] }));
    acknowledgeWildcards(this, 'Lambda names the log streams of the reconciler function: the statement is scoped to its own log group.',
      `${logGroup.logGroupArn}:log-stream:*`);
    acknowledgeWildcards(this, 'The handler roles of this stack are created with fleets the stack may add later, so they are matched by their IAM path, '
      + 'which only this library uses; only the handler roles of self-healing fleets trust this role.', handlerRoles);

    this.function = new lambda.Function(this, 'Function', {
      description: 'cdk-lambda-microvms: fleet reconciler (replaces gone instances, rotates before maximumDuration)',
      code: lambda.Code.fromAsset(path.join(__dirname, '..', '..', 'lambda-dist', 'fleet-reconciler')),
      handler: 'index.handler',
      runtime: RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: MEMORY_MB,
      timeout: TIMEOUT,
      role: this.role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...localEndpointEnvironment(this) },
    });
    // A missed run is not retried: the next scheduled run sees newer state.
    this.function.configureAsyncInvoke({ maxEventAge: MAX_EVENT_AGE, retryAttempts: 0 });

    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': scope.account } },
      }),
      description: 'EventBridge Scheduler invokes the cdk-lambda-microvms fleet reconciler',
    });
    this.schedulerRole.addToPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.function.functionArn] }));
  }

  /** Adds the fleet's schedule, and the reconciler's role to the trust of the fleet's handler role. Returns the schedule. */
  public register(fleet: Construct, reg: ReconcilerRegistration): scheduler.CfnSchedule {
    const interval = reg.interval ?? Duration.minutes(RECONCILER_DEFAULTS.intervalMinutes);
    const rotateBefore = reg.rotateBeforeExpiry
      ?? Duration.seconds(Math.min(RECONCILER_DEFAULTS.rotateBeforeSeconds, Math.floor(reg.maximumDurationSeconds / 2)));
    validate(interval, rotateBefore, reg);

    reg.handlerRole.assumeRolePolicy?.addStatements(new iam.PolicyStatement({
      actions: ['sts:AssumeRole'],
      principals: [new iam.ArnPrincipal(this.role.roleArn)],
    }));

    const input: ReconcilerInput = {
      FleetId: reg.resource.ref,
      StackId: Stack.of(fleet).stackId,
      Fleet: reg.wire,
      HandlerRoleArn: reg.handlerRole.roleArn,
      RotateBeforeSeconds: String(rotateBefore.toSeconds()),
      MaxRotating: reg.maxRotating !== undefined ? String(reg.maxRotating) : undefined,
      ReplaceIdleTerminated: reg.replaceIdleTerminated ? 'true' : undefined,
    };
    const minutes = interval.toMinutes();
    const schedule = new scheduler.CfnSchedule(fleet, 'ReconcileSchedule', {
      description: 'cdk-lambda-microvms: reconcile this MicroVM fleet between deploys',
      scheduleExpression: `rate(${minutes} ${minutes === 1 ? 'minute' : 'minutes'})`,
      flexibleTimeWindow: { mode: 'OFF' },
      state: 'ENABLED',
      target: {
        arn: this.function.functionArn,
        roleArn: this.schedulerRole.roleArn,
        input: Stack.of(fleet).toJsonString(input),
        retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: MAX_EVENT_AGE.toSeconds() },
      },
    });
    // Permissions first; the schedule goes (and stops invoking) before the fleet is deleted.
    schedule.node.addDependency(this.role, reg.handlerRole, reg.resource, this.schedulerRole);
    return schedule;
  }
}

function validate(interval: Duration, rotateBefore: Duration, reg: ReconcilerRegistration): void {
  if (!Token.isUnresolved(interval.toSeconds())) {
    const seconds = interval.toSeconds();
    if (seconds % 60 !== 0 || seconds < 60 || seconds > 3600) {
      throw new Error(`selfHealingInterval must be whole minutes from 1 to 60, got ${seconds} seconds: EventBridge Scheduler's rate() counts minutes, and a fleet left alone longer than an hour loses instances unseen`);
    }
  }
  checkRange('rotateBeforeExpiry (seconds)', rotateBefore.toSeconds(), 0, reg.maximumDurationSeconds - 1,
    'a replacement starts this long before maximumDuration ends an instance; 0 turns rotation off (instances are replaced after the service ends them)');
  checkRange('maxRotating', reg.maxRotating, 1, 10_000, 'at least one rotation at a time; each needs memory quota for one more instance');
}
