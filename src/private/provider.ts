import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { Duration, Fn, Lazy, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct, IConstruct } from 'constructs';
import { checkStackLimits } from './limits';
import { acknowledgeWildcards } from './nag';
import { IS_COMPLETE_TIMEOUT_SECONDS, LOCAL_ENDPOINT_CONTEXT, PROVIDER_TOTAL_TIMEOUT_SECONDS } from './wire';

/**
 * The construct id of the stack's one provider. Never change it: the logical ids behind every
 * custom resource's ServiceToken derive from it, and CloudFormation refuses to change a custom
 * resource's ServiceToken on update (test/provider.test.ts pins them).
 */
export const PROVIDER_ID = 'cdk-lambda-microvms.Provider';

/** The handler bundle (lambda-dist/provider): one entry for every resource type. */
const BUNDLE = 'provider';

/**
 * Settings pinned here, not left to aws-cdk-lib defaults, so an aws-cdk-lib upgrade does not
 * churn user templates (see docs/architecture.md).
 */
const RUNTIME = lambda.Runtime.NODEJS_24_X;
const HANDLER_MEMORY_MB = 256;
const ON_EVENT_TIMEOUT = Duration.minutes(5);
const IS_COMPLETE_TIMEOUT = Duration.seconds(IS_COMPLETE_TIMEOUT_SECONDS);
/** Between isComplete polls. Builds take minutes: 15 s is a tenth of the shortest build. */
const QUERY_INTERVAL = Duration.seconds(15);
/** CloudFormation's own cap on a custom resource; every handler keeps its own, shorter deadline. */
export const PROVIDER_TOTAL_TIMEOUT = Duration.seconds(PROVIDER_TOTAL_TIMEOUT_SECONDS);
const LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

/** What a resource's handler role is made of. */
export interface HandlerRoleOptions {
  /**
   * The values that name the resource's ARNs (an image name; an image name and version). They
   * become the role's IAM path, and a role's path cannot change in place: when one changes,
   * CloudFormation creates a new role and keeps the old one, with its old ARNs, until the cleanup
   * (or rollback) that deletes the old physical resource with the old properties is done.
   */
  readonly identity: string[];
  /**
   * A last path segment known only at synthesis (the content hash of the values an image stages,
   * which `addEnvironment` may still change after the construct): called when the template is
   * resolved; undefined adds no segment.
   * @default - none
   */
  readonly lateIdentity?: () => string | undefined;
  /** Exactly this resource's permissions. */
  readonly statements: iam.PolicyStatement[];
  /** For the role's description. */
  readonly description: string;
}

/**
 * The stack's one provider for all four resource types, created on first use and found again by
 * its construct id. Its functions' role may only write its own logs and assume the per-resource
 * handler roles this library created in the stack (`handlerRole`): every call to MicroVMs,
 * Lambda Core, DynamoDB or Secrets Manager is made with the credentials of the resource's own
 * role, assumed per request (lambda/shared/credentials.ts).
 */
export class MicroVmsProvider extends Construct {
  /** Returns the stack's provider, creating it on first use. */
  public static getOrCreate(scope: IConstruct): MicroVmsProvider {
    const stack = Stack.of(scope);
    const existing = stack.node.tryFindChild(PROVIDER_ID);
    if (existing) return existing as MicroVmsProvider;
    return new MicroVmsProvider(stack, PROVIDER_ID);
  }

  public readonly serviceToken: string;
  /** The role of our onEvent and isComplete functions. */
  public readonly role: iam.Role;
  public readonly onEventFunction: lambda.Function;
  public readonly isCompleteFunction: lambda.Function;
  /**
   * The IAM path of every handler role of this stack (`/cdk-lambda-microvms/<stack hash>/`): the
   * provider role may assume roles under it only, and each of them trusts exactly the provider role.
   */
  public readonly rolePath: string;
  private _inventoryTable?: dynamodb.Table;

  private constructor(scope: Stack, id: string) {
    super(scope, id);
    this.rolePath = `/cdk-lambda-microvms/${createHash('sha256').update(scope.node.path).digest('hex').slice(0, 12)}/`;

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: LOG_RETENTION,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'cdk-lambda-microvms provider handlers: assume the role of the resource at hand',
    });
    // Instead of AWSLambdaBasicExecutionRole: write only to this provider's log group.
    this.role.addToPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn, `${logGroup.logGroupArn}:log-stream:*`],
    }));
    const handlerRoles = `arn:${scope.partition}:iam::${scope.account}:role${this.rolePath}*`;
    this.role.addToPolicy(new iam.PolicyStatement({
      actions: ['sts:AssumeRole'],
      resources: [handlerRoles],
    }));

    const environment: Record<string, string> = {
      NODE_OPTIONS: '--enable-source-maps',
      ...localEndpointEnvironment(this),
    };
    const code = lambda.Code.fromAsset(path.join(__dirname, '..', '..', 'lambda-dist', BUNDLE));
    const fn = (name: string, entry: string, timeout: Duration) => new lambda.Function(this, name, {
      description: `cdk-lambda-microvms: MicroVM images, versions, network connectors and fleets (${entry})`,
      code,
      handler: `index.${entry}`,
      runtime: RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: HANDLER_MEMORY_MB,
      timeout,
      role: this.role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      // Our handlers log identifiers and states only (lambda/shared/log.ts), at INFO.
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
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
      // At INFO the framework functions log whole CloudFormation events, properties included
      // (image environment values, inline /run payloads): ERROR logs failures only.
      frameworkLambdaLoggingLevel: lambda.ApplicationLogLevel.ERROR,
      disableWaiterStateMachineLogging: false,
      waiterStateMachineLogOptions: {
        destination: frameworkLogs,
        level: sfn.LogLevel.ALL,
        // Execution data holds resource properties: never logged.
        includeExecutionData: false,
      },
    });
    this.serviceToken = provider.serviceToken;
    checkStackLimits(scope);

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
    acknowledgeWildcards(this, 'The handler roles of this stack are created with resources the stack may add later, so they are matched by their IAM path, '
      + 'which only this library uses; each of them trusts exactly this provider role.', handlerRoles);
    acknowledgeWildcards(this, 'Step Functions log delivery (logs:CreateLogDelivery, logs:DescribeLogGroups, ...) has no resource-level permissions; aws-cdk-lib writes this statement for the waiter state machine\'s logging.',
      '*');
    const functionArns = this.node.findAll()
      .filter((c): c is lambda.Function => c instanceof lambda.Function)
      .map((f) => `${f.functionArn}:*`);
    acknowledgeWildcards(this, 'The provider framework may invoke any version of these functions of its own (<function arn>:*); aws-cdk-lib writes this statement.',
      ...functionArns);
  }

  /**
   * Creates the role the handler assumes for the resource of `scope` (as `HandlerRole`): trusted by
   * exactly the provider role, holding exactly `statements` as an inline policy, under a path made
   * of `identity` (see `HandlerRoleOptions.identity`). The resource carries the role's ARN as its
   * `HandlerRoleArn` property, which the handler entry reads and strips.
   */
  public handlerRole(scope: Construct, options: HandlerRoleOptions): iam.Role {
    const segments = options.identity.map(pathSegment);
    const parts = [this.rolePath, ...segments.flatMap((s) => [s, '/'])];
    const late = options.lateIdentity;
    if (late) {
      parts.push(Lazy.string({
        produce: () => {
          const segment = late();
          return segment === undefined ? '' : `${pathSegment(segment)}/`;
        },
      }));
    }
    const rolePath = parts.some((s) => Token.isUnresolved(s)) ? Fn.join('', parts) : parts.join('');
    const policy = new iam.PolicyDocument({ statements: options.statements });
    const role = new iam.Role(scope, 'HandlerRole', {
      description: `cdk-lambda-microvms: ${options.description}`,
      assumedBy: new iam.ArnPrincipal(this.role.roleArn),
      path: rolePath,
      inlinePolicies: { Handler: policy },
    });
    HANDLER_POLICIES.set(role, policy);
    return role;
  }

  /**
   * Adds statements to the inline policy of a role made by `handlerRole` (for permissions known
   * only once the construct is complete, e.g. the object an image stages at synthesis).
   */
  public addToHandlerRole(role: iam.Role, ...statements: iam.PolicyStatement[]): void {
    const policy = HANDLER_POLICIES.get(role);
    if (!policy) throw new Error(`internal: ${role.node.path} is not a handler role`);
    policy.addStatements(...statements);
  }

  /**
   * The stack's fleet inventory (created on first use): one table for every fleet, keyed by fleet
   * id (`pk`), so a fleet adds no table. The fleet id is derived from the CloudFormation stack id
   * at deploy time, so IAM cannot narrow a fleet's role to its own partition (dynamodb:LeadingKeys):
   * every fleet handler of the stack may read and write the table.
   *
   * @param removalPolicy the fleet's: when any fleet of the stack is retained, so is the table
   *   (the retained instances stay listed in it).
   */
  public inventoryTableFor(removalPolicy: RemovalPolicy): dynamodb.Table {
    this._inventoryTable ??= new dynamodb.Table(this, 'Inventory', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    if (removalPolicy !== RemovalPolicy.DESTROY) this._inventoryTable.applyRemovalPolicy(RemovalPolicy.RETAIN);
    return this._inventoryTable;
  }
}

/** The inline policy of each handler role (see `MicroVmsProvider.addToHandlerRole`). */
const HANDLER_POLICIES = new WeakMap<iam.Role, iam.PolicyDocument>();

/**
 * The name in an image ARN (`arn:<partition>:lambda:<region>:<account>:microvm-image:<name>`),
 * also when the ARN is a token (then as Fn::Select of Fn::Split).
 */
export function imageNameOf(imageArn: string): string {
  return Fn.select(6, Fn.split(':', imageArn));
}

/** A path segment of an IAM role path: printable ASCII without `/`, short. */
function pathSegment(value: string): string {
  if (Token.isUnresolved(value)) return value;
  if (/^[\u0021-\u002E\u0030-\u007E]{1,64}$/.test(value)) return value;
  return createHash('sha256').update(value).digest('hex').slice(0, 16);
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
