import { CustomResource, Duration, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Construct, IConstruct } from 'constructs';
import { MicroVmsProvider } from './provider';
import { RECONCILER_DEFAULTS, RECONCILER_INVOCATION, ReconcilerInput } from './reconciler-wire';
import { checkRange } from './validation';
import type { FleetProps } from './wire';

/** A run scheduled longer ago than this is dropped: the next one sees newer state. */
const MAX_EVENT_AGE = Duration.seconds(60);

/** What a fleet asks of the stack's reconciler. */
export interface ReconcilerRegistration {
  /** The fleet's custom resource (its Ref is the fleet id; the schedule depends on it). */
  readonly resource: CustomResource;
  /** The fleet's properties, exactly as its custom resource gets them. */
  readonly wire: FleetProps;
  /**
   * The fleet's handler role (MicroVmsProvider.handlerRole), which trusts the provider role: the
   * run assumes it for every call on the fleet, so its statements (with the inventory's
   * DeleteItem for the run's lease) are the fleet's, in one place.
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
 * The stack's fleet reconciler, set up on the first self-healing fleet. It adds no Lambda function
 * (issue 12: at most 5 library functions per stack): the runs are served by the provider's own
 * onEvent function (`MicroVmsProvider.onEventFunction`, not the Provider framework's), which tells
 * a run's input from a CloudFormation request by its marker (`ReconcilerInput.Invocation`). What
 * it adds: `cloudformation:DescribeStacks` on exactly this stack to the provider role, the async
 * invoke settings of the onEvent function, and the role EventBridge Scheduler invokes it with;
 * each self-healing fleet adds a schedule. A fleet leaving the stack takes its schedule with it.
 */
export class FleetReconcilerSchedules extends Construct {
  /** The stack's reconciler, set up on first use. */
  public static getOrCreate(scope: IConstruct): FleetReconcilerSchedules {
    const stack = Stack.of(scope);
    const id = 'cdk-lambda-microvms.fleet-reconciler';
    return (stack.node.tryFindChild(id) as FleetReconcilerSchedules | undefined) ?? new FleetReconcilerSchedules(stack, id);
  }

  /** The stack's provider, whose onEvent function runs the reconciler. */
  public readonly provider: MicroVmsProvider;
  /** The role EventBridge Scheduler invokes the provider's onEvent function with. */
  public readonly schedulerRole: iam.Role;

  private constructor(scope: Stack, id: string) {
    super(scope, id);
    this.provider = MicroVmsProvider.getOrCreate(scope);
    // The fence: a run acts only while no CloudFormation operation runs on this very stack. A run
    // assumes the fleet's handler role with the provider role's sts:AssumeRole on the stack's
    // handler-role path, which every deploy already uses: no other statement.
    this.provider.role.addToPolicy(new iam.PolicyStatement({ actions: ['cloudformation:DescribeStacks'], resources: [scope.stackId] }));

    // A missed run is not retried: the next scheduled run sees newer state. These settings apply
    // to asynchronous invocations only (EventBridge Scheduler's): the Provider framework invokes
    // this function synchronously (RequestResponse, the Lambda Invoke default, which its onEvent
    // function leaves unset), so CloudFormation's requests keep their own retries and timeouts.
    this.provider.onEventFunction.configureAsyncInvoke({ maxEventAge: MAX_EVENT_AGE, retryAttempts: 0 });

    this.schedulerRole = new iam.Role(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': scope.account } },
      }),
      description: 'EventBridge Scheduler runs the cdk-lambda-microvms fleet reconciler (in the provider\'s onEvent function)',
    });
    this.schedulerRole.addToPolicy(new iam.PolicyStatement({
      actions: ['lambda:InvokeFunction'],
      resources: [this.provider.onEventFunction.functionArn],
    }));
  }

  /** Adds the fleet's schedule and returns it. */
  public register(fleet: Construct, reg: ReconcilerRegistration): scheduler.CfnSchedule {
    const interval = reg.interval ?? Duration.minutes(RECONCILER_DEFAULTS.intervalMinutes);
    const rotateBefore = reg.rotateBeforeExpiry
      ?? Duration.seconds(Math.min(RECONCILER_DEFAULTS.rotateBeforeSeconds, Math.floor(reg.maximumDurationSeconds / 2)));
    validate(interval, rotateBefore, reg);

    const input: ReconcilerInput = {
      Invocation: RECONCILER_INVOCATION,
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
        arn: this.provider.onEventFunction.functionArn,
        roleArn: this.schedulerRole.roleArn,
        input: Stack.of(fleet).toJsonString(input),
        retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: MAX_EVENT_AGE.toSeconds() },
      },
    });
    // Permissions and the async invoke settings first (the provider role with its policy, the
    // onEvent function with its EventInvokeConfig); the schedule goes (and stops invoking) before
    // the fleet is deleted.
    schedule.node.addDependency(this.provider.role, this.provider.onEventFunction, reg.handlerRole, reg.resource, this.schedulerRole);
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
