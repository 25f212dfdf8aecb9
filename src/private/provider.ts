import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct, IConstruct } from 'constructs';
import { acknowledgeWildcards } from './nag';
import { LOCAL_ENDPOINT_CONTEXT } from './wire';

/** The handler bundles (lambda-dist/<name>), one per resource type. */
export type HandlerName = 'image' | 'image-version' | 'network-connector' | 'fleet';

/**
 * Settings pinned here, not left to aws-cdk-lib defaults, so an aws-cdk-lib upgrade does not
 * churn user templates (see docs/architecture.md).
 */
const RUNTIME = lambda.Runtime.NODEJS_24_X;
const HANDLER_MEMORY_MB = 256;
const ON_EVENT_TIMEOUT = Duration.minutes(5);
const IS_COMPLETE_TIMEOUT = Duration.minutes(2);
/** Between isComplete polls. Builds take minutes: 15 s is a tenth of the shortest build. */
const QUERY_INTERVAL = Duration.seconds(15);
/** CloudFormation's own cap on a custom resource; every handler keeps its own, shorter deadline. */
export const PROVIDER_TOTAL_TIMEOUT = Duration.hours(1);
const LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

/**
 * One provider per stack per resource type, created on first use and found again with
 * `Stack.of(scope).node.tryFindChild`. Its role starts with only its own log permissions; each
 * resource adds the statements for exactly its own ARNs with `grantFor`.
 */
export class MicroVmsProvider extends Construct {
  /** Returns the stack's provider for `handler`, creating it on first use. */
  public static getOrCreate(scope: IConstruct, handler: HandlerName, description: string): MicroVmsProvider {
    const stack = Stack.of(scope);
    const id = `cdk-lambda-microvms.${handler}-provider`;
    const existing = stack.node.tryFindChild(id);
    if (existing) return existing as MicroVmsProvider;
    return new MicroVmsProvider(stack, id, handler, description);
  }

  public readonly serviceToken: string;
  public readonly role: iam.Role;
  public readonly onEventFunction: lambda.Function;
  public readonly isCompleteFunction: lambda.Function;

  private constructor(scope: Construct, id: string, handler: HandlerName, description: string) {
    super(scope, id);

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: LOG_RETENTION,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `cdk-lambda-microvms ${handler} provider handlers`,
    });
    // Instead of AWSLambdaBasicExecutionRole: write only to this provider's log group.
    this.role.addToPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn, `${logGroup.logGroupArn}:log-stream:*`],
    }));

    const environment: Record<string, string> = {
      NODE_OPTIONS: '--enable-source-maps',
      ...localEndpointEnvironment(this),
    };
    const code = lambda.Code.fromAsset(path.join(__dirname, '..', '..', 'lambda-dist', handler));
    const fn = (name: string, entry: string, timeout: Duration) => new lambda.Function(this, name, {
      description: `cdk-lambda-microvms: ${description} (${entry})`,
      code,
      handler: `index.${entry}`,
      runtime: RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: HANDLER_MEMORY_MB,
      timeout,
      role: this.role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment,
    });
    this.onEventFunction = fn('OnEvent', 'onEvent', ON_EVENT_TIMEOUT);
    this.isCompleteFunction = fn('IsComplete', 'isComplete', IS_COMPLETE_TIMEOUT);

    const frameworkLogs = new logs.LogGroup(this, 'FrameworkLogs', {
      retention: LOG_RETENTION,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: this.onEventFunction,
      isCompleteHandler: this.isCompleteFunction,
      queryInterval: QUERY_INTERVAL,
      totalTimeout: PROVIDER_TOTAL_TIMEOUT,
      logGroup: frameworkLogs,
      frameworkLambdaLoggingLevel: lambda.ApplicationLogLevel.INFO,
      // Execution data holds resource properties (environment values): never logged.
      disableWaiterStateMachineLogging: false,
      waiterStateMachineLogOptions: {
        destination: frameworkLogs,
        level: sfn.LogLevel.ALL,
        includeExecutionData: false,
      },
    });
    this.serviceToken = provider.serviceToken;

    Validations.of(this).acknowledge(
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: 'The provider framework functions of aws-cdk-lib (onEvent, isComplete, onTimeout) use AWSLambdaBasicExecutionRole; their roles are not configurable per statement.',
      },
      {
        id: 'AwsSolutions-SF2',
        reason: 'X-Ray tracing of the provider framework\'s waiter state machine is not configurable in aws-cdk-lib.',
      },
    );
    acknowledgeWildcards(this, 'Lambda names the log streams of our handler functions: the statement is scoped to this provider\'s own log group.',
      `${logGroup.logGroupArn}:log-stream:*`);
    acknowledgeWildcards(this, 'Step Functions log delivery (logs:CreateLogDelivery, logs:DescribeLogGroups, ...) has no resource-level permissions; aws-cdk-lib writes this statement for the waiter state machine\'s logging.',
      '*');
    const functionArns = this.node.findAll()
      .filter((c): c is lambda.Function => c instanceof lambda.Function)
      .map((f) => `${f.functionArn}:*`);
    acknowledgeWildcards(this, 'The provider framework may invoke any version of these functions of its own (<function arn>:*); aws-cdk-lib writes this statement.',
      ...functionArns);
  }

  /**
   * Adds `statements` for one resource as its own policy on the provider role, and makes the
   * resource depend on it, so the permissions exist before the handler runs and go with it.
   */
  public grantFor(resource: Construct, statements: iam.PolicyStatement[]): iam.Policy {
    const policy = new iam.Policy(resource, 'ProviderPolicy', { statements });
    policy.attachToRole(this.role);
    resource.node.addDependency(policy);
    return policy;
  }
}

/**
 * Local deploys only: `cdk deploy -c cdk-lambda-microvms:localEndpoint=http://127.0.0.1:4599`
 * sends the handlers' MicroVMs and Lambda Core calls to the local emulator. Without the context
 * key (every real deployment) no variable is added and the template is unchanged.
 */
export function localEndpointEnvironment(scope: Construct): Record<string, string> {
  const endpoint = scope.node.tryGetContext(LOCAL_ENDPOINT_CONTEXT);
  if (endpoint === undefined || endpoint === '') return {};
  if (typeof endpoint !== 'string' || Token.isUnresolved(endpoint) || !/^https?:\/\/[^\s]+$/.test(endpoint)) {
    throw new Error(`context ${LOCAL_ENDPOINT_CONTEXT} must be an http(s) URL such as http://127.0.0.1:4599, got ${JSON.stringify(endpoint)}: fix the -c option or cdk.json`);
  }
  return {
    AWS_ENDPOINT_URL_LAMBDA_MICROVMS: endpoint,
    AWS_ENDPOINT_URL_LAMBDA_CORE: endpoint,
  };
}
