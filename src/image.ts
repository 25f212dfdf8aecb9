import {
  ArnFormat,
  CustomResource,
  Duration,
  IResource,
  Lazy,
  Names,
  RemovalPolicy,
  Resource,
  Size,
  Stack,
  TagManager,
  TagType,
  ITaggable,
  Token,
  Annotations,
  AspectPriority,
  Aspects,
  SizeRoundingBehavior,
} from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { BaseImage } from './base-image';
import { MicroVmCode } from './code';
import { MicroVmArchitecture, OsCapability } from './enums';
import { HookOptions, MicroVmHooks } from './hooks';
import { MicroVmImageVersion } from './image-version';
import { MicroVmLogging } from './logging';
import { grantOnResourceAndVersions, passedConnectorArns } from './private/grants';
import { acknowledgeEcrAuthorizationToken, acknowledgeWildcards } from './private/nag';
import { MicroVmsProvider, PROVIDER_TOTAL_TIMEOUT } from './private/provider';
import { StagedProperties, stageProperties, warnUnstaged } from './private/staged';
import { addTagValidation, checkDurationSeconds, checkEgressConnectors, checkMaxItems, checkOneOf, checkPattern, checkRange, checkRemovalPolicy, checkTags } from './private/validation';
import { DEFAULT_BUILD_TIMEOUT_SECONDS, HANDLER_ROLE_ARN, HooksWire, HookWire, ImageAttr, ImageProps, ImageVersionRetentionWire, LoggingWire, MEMORY_TIERS_MIB, ResourceType } from './private/wire';

/** The memory sizes the service offers (baseline; peak is four times). */
const NAME_PATTERN = /^[a-zA-Z0-9-_]+$/;
const DEFAULT_BUILD_TIMEOUT = Duration.seconds(DEFAULT_BUILD_TIMEOUT_SECONDS);
/** CloudFormation gives a custom resource one hour; the handler must report before that. */
const MAX_BUILD_TIMEOUT = PROVIDER_TOTAL_TIMEOUT.minus(Duration.minutes(5));
const DEFAULT_BUILD_HOOK_TIMEOUT = Duration.seconds(30);
const DEFAULT_RUNTIME_HOOK_TIMEOUT = Duration.seconds(1);

/** A MicroVM image, created here or imported. */
export interface IMicroVmImage extends IResource, lambda.IMicrovmImageRef {
  /**
   * The image ARN.
   * @attribute
   */
  readonly imageArn: string;
  /**
   * The image name.
   * @attribute
   */
  readonly imageName: string;

  /** Grants `actions` on this image (and its versions) to `grantee`. */
  grant(grantee: iam.IGrantable, ...actions: string[]): iam.Grant;

  /** Grants reading the image, its versions and builds. */
  grantRead(grantee: iam.IGrantable): iam.Grant;

  /**
   * Grants RunMicrovm from this image, lambda:PassNetworkConnector on the connectors a RunMicrovm
   * that names none passes (the AWS-managed HTTP_INGRESS and INTERNET_EGRESS) and on the image's
   * egress connectors, and iam:PassRole on exactly `executionRole` when given. A RunMicrovm that
   * names other connectors (SHELL_INGRESS, a VPC connector) needs `grantPass` on each of them.
   */
  grantRun(grantee: iam.IGrantable, executionRole?: iam.IRole): iam.Grant;
}

/** What an image is imported by. */
export interface MicroVmImageAttributes {
  /**
   * The image ARN.
   * @default - built from `imageName` in the stack's account and Region
   */
  readonly imageArn?: string;
  /**
   * The image name.
   * @default - read from `imageArn`
   */
  readonly imageName?: string;
  /**
   * Egress network connectors the image uses, for grantRun.
   * @default - none
   */
  readonly egressConnectors?: lambda.INetworkConnectorRef[];
}

/** Actions that read an image. */
const READ_ACTIONS = [
  'lambda:GetMicrovmImage',
  'lambda:GetMicrovmImageVersion',
  'lambda:ListMicrovmImageVersions',
  'lambda:GetMicrovmImageBuild',
  'lambda:ListMicrovmImageBuilds',
  'lambda:ListTags',
];


/** Shared by created and imported images. */
export abstract class MicroVmImageBase extends Resource implements IMicroVmImage {
  public abstract readonly imageArn: string;
  public abstract readonly imageName: string;
  /** The egress connectors the image uses. */
  protected abstract readonly connectorArns: string[];

  public get microvmImageRef(): lambda.MicrovmImageReference {
    return { imageArn: this.imageArn };
  }

  public grant(grantee: iam.IGrantable, ...actions: string[]): iam.Grant {
    return grantOnResourceAndVersions(grantee, actions, this.imageArn);
  }

  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.grant(grantee, ...READ_ACTIONS);
  }

  public grantRun(grantee: iam.IGrantable, executionRole?: iam.IRole): iam.Grant {
    const grant = this.grant(grantee, 'lambda:RunMicrovm');
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['lambda:PassNetworkConnector'],
      // A RunMicrovm that names no connectors passes the service's defaults; the image's own egress
      // connectors too. Other connectors: connector.grantPass(grantee).
      resourceArns: [...passedConnectorArns(this, [], []), ...this.connectorArns],
    });
    if (executionRole) {
      iam.Grant.addToPrincipal({
        grantee,
        actions: ['iam:PassRole'],
        resourceArns: [executionRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
      });
    }
    return grant;
  }
}

/** Properties of a MicroVmImage. */
export interface MicroVmImageProps {
  /**
   * The code: a zip with a Dockerfile at its root.
   */
  readonly code: MicroVmCode;
  /**
   * The image name: 1-64 letters, digits, hyphens and underscores, unique in the account and
   * Region. Names stay reserved while an image is deleted, so changing it replaces the image.
   * @default - a stable name derived from the construct path (never from content)
   */
  readonly imageName?: string;
  /**
   * A description.
   * @default - none
   */
  readonly description?: string;
  /**
   * The Lambda-managed base image.
   * @default BaseImage.AL2023
   */
  readonly baseImage?: BaseImage;
  /**
   * The role the build assumes (trusted by lambda.amazonaws.com with sts:TagSession).
   * @default - a role that may read only the code object and write only the image's log group
   */
  readonly buildRole?: iam.IRole;
  /**
   * Build and runtime logging.
   * @default MicroVmLogging.cloudWatch() with a log group owned by this construct
   */
  readonly logging?: MicroVmLogging;
  /**
   * Baseline memory: 512 MiB, 1, 2, 4 or 8 GiB. vCPUs scale with it, and the peak is four times the baseline.
   * @default Size.gibibytes(2)
   */
  readonly memory?: Size;
  /**
   * The CPU architecture.
   * @default MicroVmArchitecture.ARM_64
   */
  readonly architecture?: MicroVmArchitecture;
  /**
   * Additional Linux capabilities.
   * @default - none
   */
  readonly osCapabilities?: OsCapability[];
  /**
   * Environment variables, burnt into the snapshot at build time: at most 50, values at most 4096
   * characters. Literal values are not in the template: they are written at synth into a JSON
   * file staged as an asset of the stack (uploaded to the bootstrap bucket by `cdk deploy`; the
   * template carries only its bucket and key), which the provider reads at deploy time with the
   * image's own handler role (s3:GetObject on exactly that object). So they appear in no
   * CloudFormation event, Step Functions execution history or log. A variable whose name or value
   * is a token (known only at deploy time) cannot be staged: it travels in the resource's
   * properties, with a synth warning. Whoever can read the cloud assembly (`cdk.out`) or the asset
   * bucket can read the values: keep secrets in Secrets Manager and have the image read them at run time.
   * @default - none
   */
  readonly environment?: { [key: string]: string };
  /**
   * Lifecycle hooks.
   * @default - no hooks
   */
  readonly hooks?: MicroVmHooks;
  /**
   * Egress network connectors available to the MicroVMs at run time (the API takes at most one).
   * @default - the AWS-managed internet egress
   */
  readonly egressConnectors?: lambda.INetworkConnectorRef[];
  /**
   * Tags on the image. `Tags.of()` works too.
   * @default - none
   */
  readonly tags?: { [key: string]: string };
  /**
   * What happens to the image when it leaves the stack.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * How long a deploy waits for a build before failing with the build's state and reasons.
   * At most 55 minutes: CloudFormation gives a custom resource one hour.
   * @default Duration.minutes(50)
   */
  readonly buildTimeout?: Duration;
  /**
   * Whether deleting the image terminates the MicroVMs that still run from it. False fails the
   * delete with a message that lists them.
   * @default false
   */
  readonly terminateMicroVmsOnDelete?: boolean;
  /**
   * Take over an existing image of the same name instead of failing on the name: one made with
   * the L1 `CfnMicrovmImage`, the console or another tool (looked up with ListMicrovmImages). The
   * first deploy builds nothing when the image's latest active version already has this
   * configuration, and updates it in place (one new version) otherwise; it never makes a second
   * image. An image another stack of this library manages is refused. Once adopted, the image is
   * this stack's: `removalPolicy` applies to it. Requires `imageName`.
   * @default false
   */
  readonly adoptExisting?: boolean;
  /**
   * Keep at most this many versions, 1 to 50 (the service allows 50 per image). Each update deletes
   * the oldest beyond the count, never the latest active one, one that MicroVMs not TERMINATED run
   * from, or one pinned by a MicroVmImageVersion (including `currentVersion`).
   * @default - keep every version
   */
  readonly keepVersions?: number;
}

/**
 * A Lambda MicroVM image: built from a Dockerfile zip on a Lambda-managed base image. Every
 * deploy that changes its configuration builds a new image version; the deploy waits for the
 * build and fails with the service's reasons if it fails.
 *
 * @resource Custom::LambdaMicroVmImage
 */
export class MicroVmImage extends MicroVmImageBase implements ITaggable {
  /**
   * Imports an image by its unqualified ARN (`arn:<partition>:lambda:<region>:<account>:microvm-image:<name>`).
   *
   * @throws if the ARN is not a MicroVM image ARN, carries a `:<version>` suffix, or names another
   * Region or account than the stack's (see `fromImageAttributes`)
   */
  public static fromImageArn(scope: Construct, id: string, imageArn: string): IMicroVmImage {
    return MicroVmImage.fromImageAttributes(scope, id, { imageArn });
  }

  /**
   * Imports an image by name (1-64 letters, digits, hyphens and underscores), in the stack's
   * account and Region.
   */
  public static fromImageName(scope: Construct, id: string, imageName: string): IMicroVmImage {
    return MicroVmImage.fromImageAttributes(scope, id, { imageName });
  }

  /**
   * Imports an image by ARN or name.
   *
   * The image must be in the stack's Region and account: every MicroVMs operation is regional,
   * and the API (24 operations, 2026-06-22) has no way to share an image with another account
   * (no resource policy), so a fleet or a grant on an image elsewhere could never work. Such an
   * import fails at synth; deploy a stack in the image's Region and account instead. Unresolved
   * tokens are not checked.
   */
  public static fromImageAttributes(scope: Construct, id: string, attrs: MicroVmImageAttributes): IMicroVmImage {
    if (!attrs.imageArn && !attrs.imageName) {
      throw new Error(`MicroVmImage.fromImageAttributes(${id}): pass imageArn or imageName`);
    }
    checkPattern(`MicroVmImage import ${id}: imageName`, attrs.imageName, NAME_PATTERN, 1, 64,
      'pass the name ListMicrovmImages shows (letters, digits, hyphens and underscores), not an ARN: use fromImageArn for ARNs');
    const stack = Stack.of(scope);
    if (attrs.imageArn !== undefined) checkImportedImageArn(stack, id, attrs.imageArn);
    const imageArn = attrs.imageArn ?? stack.formatArn({
      service: 'lambda',
      resource: 'microvm-image',
      resourceName: attrs.imageName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const imageName = attrs.imageName ?? stack.splitArn(imageArn, ArnFormat.COLON_RESOURCE_NAME).resourceName!;
    class Import extends MicroVmImageBase {
      public readonly imageArn = imageArn;
      public readonly imageName = imageName;
      protected readonly connectorArns = (attrs.egressConnectors ?? []).map((c) => c.networkConnectorRef.networkConnectorArn);
    }
    return new Import(scope, id, { environmentFromArn: imageArn });
  }

  public readonly imageArn: string;
  public readonly imageName: string;
  /**
   * The image version this deploy produced (or kept, when nothing changed).
   * @attribute
   */
  public readonly imageVersion: string;
  /**
   * The image's latest active version.
   * @attribute
   */
  public readonly latestActiveImageVersion: string;
  /** The build role. */
  public readonly buildRole: iam.IRole;
  /** The log group, when this image logs to CloudWatch. */
  public readonly logGroup?: logs.ILogGroup;
  public readonly tags: TagManager;
  protected readonly connectorArns: string[];

  private readonly environment: { [key: string]: string };
  private readonly resource: CustomResource;
  private readonly handlerRole: iam.Role;
  /** The literal environment, staged once the construct is complete (at synthesis). */
  private staged?: StagedProperties;
  private stagingDone = false;
  private _currentVersion?: MicroVmImageVersion;

  constructor(scope: Construct, id: string, props: MicroVmImageProps) {
    super(scope, id);
    const name = props.imageName ?? Names.uniqueResourceName(this, { maxLength: 64, separator: '-' });
    validateProps(this, props, name);

    this.tags = new TagManager(TagType.MAP, ResourceType.IMAGE, props.tags);
    addTagValidation(this, this.tags);
    this.environment = { ...props.environment };
    this.connectorArns = (props.egressConnectors ?? []).map((c) => c.networkConnectorRef.networkConnectorArn);
    const stack = Stack.of(this);
    const arn = stack.formatArn({ service: 'lambda', resource: 'microvm-image', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });

    const logging = props.logging ?? MicroVmLogging.cloudWatch();
    if (!logging.isDisabled) {
      this.logGroup = logging.logGroup ?? new logs.LogGroup(this, 'Logs', {
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
      });
    }
    this.buildRole = props.buildRole ?? this.createBuildRole(arn);
    const code = props.code.bind(this, props.buildRole ? undefined : this.buildRole);
    if (!props.buildRole && this.logGroup) {
      this.buildRole.addToPrincipalPolicy(new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn, `${this.logGroup.logGroupArn}:log-stream:*`],
      }));
    }

    const provider = MicroVmsProvider.getOrCreate(this);
    const handlerRole = provider.handlerRole(this, {
      identity: ['image', name],
      lateIdentity: () => this.stagedEnvironment()?.roleIdentity,
      statements: this.providerStatements(arn, props),
      description: `the handler of MicroVM image ${name}`,
    });
    this.handlerRole = handlerRole;
    // The environment is complete once the app is (addEnvironment): staged before synthesis.
    Aspects.of(this).add({ visit: (node) => { if (node === this) this.stagedEnvironment(); } }, { priority: AspectPriority.MUTATING });
    const wire: ImageProps & ImageVersionRetentionWire = {
      Name: name,
      Description: props.description,
      CodeUri: code.uri,
      CodeObjectVersion: code.objectVersion,
      BaseImageArn: (props.baseImage ?? BaseImage.AL2023).imageArn,
      BaseImageVersion: (props.baseImage ?? BaseImage.AL2023).version,
      BuildRoleArn: this.buildRole.roleArn,
      Logging: renderLogging(logging, this.logGroup),
      MemoryMiB: String((props.memory ?? Size.gibibytes(2)).toMebibytes()),
      Architecture: (props.architecture ?? MicroVmArchitecture.ARM_64).name,
      OsCapabilities: props.osCapabilities?.map((c) => c.name),
      // Literal variables are staged (StagedProperties); only those with a token stay inline.
      Environment: Lazy.any({ produce: () => { this.stagedEnvironment(); return nonEmpty(this.tokenEnvironment()); } }) as any,
      StagedProperties: Lazy.any({ produce: () => this.stagedEnvironment()?.wire }) as any,
      Hooks: props.hooks ? renderHooks(props.hooks) : undefined,
      EgressConnectors: this.connectorArns.length ? this.connectorArns : undefined,
      Tags: Lazy.any({ produce: () => this.tags.renderTags() }) as any,
      BuildTimeoutSeconds: String((props.buildTimeout ?? DEFAULT_BUILD_TIMEOUT).toSeconds()),
      TerminateMicroVmsOnDelete: props.terminateMicroVmsOnDelete ? 'true' : undefined,
      KeepVersions: props.keepVersions !== undefined ? String(props.keepVersions) : undefined,
      AdoptExisting: props.adoptExisting ? 'true' : undefined,
    };
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: ResourceType.IMAGE,
      properties: { ...wire, [HANDLER_ROLE_ARN]: handlerRole.roleArn } as any,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
      serviceTimeout: PROVIDER_TOTAL_TIMEOUT,
    });
    acknowledgeWildcards(handlerRole, 'CreateMicrovmImage and the List operations (ListMicrovms, ListMicrovmImages, ListManagedMicrovmImages, ' +
      'ListManagedMicrovmImageVersions) have no IAM resource type, so only * matches them; the other statements are scoped to this image ' +
      'and its versions (<image arn>:*).', '*', `${arn}:*`);
    if (this.logGroup && !props.buildRole) {
      acknowledgeWildcards(this.buildRole, 'The service names the build log streams: the statement is scoped to this image\'s own log group.',
        `${this.logGroup.logGroupArn}:log-stream:*`);
    }

    this.imageArn = this.resource.getAttString(ImageAttr.IMAGE_ARN);
    this.imageName = this.resource.getAttString(ImageAttr.IMAGE_NAME);
    this.imageVersion = this.resource.getAttString(ImageAttr.IMAGE_VERSION);
    this.latestActiveImageVersion = this.resource.getAttString(ImageAttr.LATEST_ACTIVE_IMAGE_VERSION);
  }

  /**
   * The version this deploy produced, as a MicroVmImageVersion (created on first use): ACTIVE and
   * pinned against `keepVersions` pruning. When a deploy builds a new version, the stack adopts
   * the new one and, after the update succeeded, releases the old one (retained: `keepVersions`
   * prunes it on a later update).
   */
  public get currentVersion(): MicroVmImageVersion {
    this._currentVersion ??= new MicroVmImageVersion(this, 'CurrentVersion', { image: this });
    return this._currentVersion;
  }

  /**
   * Lets the build pull from `repository`: for a Dockerfile whose `FROM` is a private ECR image
   * (the repository must be in this image's account). Grants the build role
   * ecr:BatchCheckLayerAvailability, ecr:GetDownloadUrlForLayer and ecr:BatchGetImage on exactly
   * the repository, and ecr:GetAuthorizationToken on `*` (it has no IAM resource type). A
   * `buildRole` you passed gets the same statements only if it is mutable.
   */
  public grantPull(repository: ecr.IRepository): iam.Grant {
    const grant = repository.grantPull(this.buildRole);
    acknowledgeEcrAuthorizationToken(this.buildRole);
    return grant;
  }

  /**
   * Adds an environment variable (burnt into the snapshot at build time). Literal values are staged
   * as an asset object, not written into the template (see `MicroVmImageProps.environment`).
   *
   * @throws once the app is being synthesized (from an Aspect): the environment is staged then
   */
  public addEnvironment(key: string, value: string): this {
    if (this.stagingDone) {
      throw new Error(`addEnvironment(${key}): the environment of ${this.node.path} was staged already, at synthesis: add variables before \`cdk synth\` runs (not from an Aspect)`);
    }
    checkEnvironmentVariable(key, value);
    this.environment[key] = value;
    checkMaxItems('environment', Object.keys(this.environment), 50, 'the service takes at most 50 variables: merge some');
    return this;
  }

  /** The variables whose name or value is a token: they cannot be staged at synth. */
  private tokenEnvironment(): { [key: string]: string } {
    return Object.fromEntries(Object.entries(this.environment).filter(([k, v]) => Token.isUnresolved(k) || Token.isUnresolved(v)));
  }

  /**
   * Stages the literal variables (once: the first call after the construct is complete, from the
   * Aspect added in the constructor), after checking the service's limits again.
   */
  private stagedEnvironment(): StagedProperties | undefined {
    if (this.stagingDone) return this.staged;
    this.stagingDone = true;
    checkMaxItems('environment', Object.keys(this.environment), 50, 'the service takes at most 50 variables: merge some');
    for (const [k, v] of Object.entries(this.environment)) checkEnvironmentVariable(k, v);
    const tokens = this.tokenEnvironment();
    const literal = Object.fromEntries(Object.entries(this.environment).filter(([k]) => !(k in tokens)));
    if (Object.keys(literal).length) {
      this.staged = stageProperties(this, { Environment: literal });
      MicroVmsProvider.getOrCreate(this).addToHandlerRole(this.handlerRole, this.staged.statement);
    }
    if (Object.keys(tokens).length) {
      warnUnstaged(this, 'environment-token', `environment (${Object.keys(tokens).join(', ')})`,
        'Keep secrets out of the environment, or pass literal values, which are staged as an asset object.');
    }
    return this.staged;
  }

  private createBuildRole(imageArn: string): iam.Role {
    const stack = Stack.of(this);
    const role = new iam.Role(this, 'BuildRole', {
      description: 'Builds a Lambda MicroVM image (cdk-lambda-microvms)',
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          // The build may present the image ARN or a version-qualified one (<image arn>:<version>).
          ArnLike: { 'aws:SourceArn': [imageArn, `${imageArn}:*`] },
        },
      }),
    });
    role.assumeRolePolicy!.addStatements(new iam.PolicyStatement({
      actions: ['sts:TagSession'],
      principals: [new iam.ServicePrincipal('lambda.amazonaws.com')],
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }));
    return role;
  }

  /** The provider may manage exactly this image, and pass exactly its build role. */
  private providerStatements(imageArn: string, props: MicroVmImageProps): iam.PolicyStatement[] {
    const statements = [
      new iam.PolicyStatement({
        actions: [
          'lambda:GetMicrovmImage', 'lambda:UpdateMicrovmImage', 'lambda:DeleteMicrovmImage',
          'lambda:GetMicrovmImageVersion', 'lambda:ListMicrovmImageBuilds',
          'lambda:TagResource', 'lambda:UntagResource', 'lambda:ListTags',
          ...(props.terminateMicroVmsOnDelete ? ['lambda:TerminateMicrovm'] : []),
          ...(props.keepVersions !== undefined ? ['lambda:ListMicrovmImageVersions', 'lambda:DeleteMicrovmImageVersion'] : []),
        ],
        resources: [imageArn, `${imageArn}:*`],
      }),
      new iam.PolicyStatement({
        // CreateMicrovmImage and the List operations have no resource type in IAM: they cannot be
        // scoped to an ARN. ListMicrovms is filtered by this image in the call; ListMicrovmImages
        // finds this image by name (adoption, cleanup after a cancelled create); the managed
        // image lists check the base image before a build.
        actions: ['lambda:CreateMicrovmImage', 'lambda:ListMicrovms', 'lambda:ListMicrovmImages',
          'lambda:ListManagedMicrovmImages', 'lambda:ListManagedMicrovmImageVersions'],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.buildRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
      }),
    ];
    if (this.connectorArns.length) {
      statements.push(new iam.PolicyStatement({ actions: ['lambda:PassNetworkConnector'], resources: this.connectorArns }));
    }
    return statements;
  }
}

function renderLogging(logging: MicroVmLogging, logGroup?: logs.ILogGroup): LoggingWire {
  if (logging.isDisabled) return { Disabled: 'true' };
  return { LogGroup: logGroup?.logGroupName, LogStream: logging.logStream };
}

function nonEmpty<T extends object>(o: T): T | undefined {
  return Object.keys(o).length ? o : undefined;
}

function renderHooks(h: MicroVmHooks): HooksWire {
  const hook = (o: HookOptions | undefined, dflt: Duration): HookWire | undefined =>
    (o ? { TimeoutSeconds: String((o.timeout ?? dflt).toSeconds()) } : undefined);
  return {
    Port: String(h.port),
    Ready: hook(h.ready, DEFAULT_BUILD_HOOK_TIMEOUT),
    Validate: hook(h.validate, DEFAULT_BUILD_HOOK_TIMEOUT),
    Run: hook(h.run, DEFAULT_RUNTIME_HOOK_TIMEOUT),
    Resume: hook(h.resume, DEFAULT_RUNTIME_HOOK_TIMEOUT),
    Suspend: hook(h.suspend, DEFAULT_RUNTIME_HOOK_TIMEOUT),
    Terminate: hook(h.terminate, DEFAULT_RUNTIME_HOOK_TIMEOUT),
  };
}

/** An unqualified MicroVM image ARN: `arn:<partition>:lambda:<region>:<account>:microvm-image:<name>`. */
const IMAGE_ARN_PATTERN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:(\d{12}|aws):microvm-image:[a-zA-Z0-9-_]{1,64}$/;

/**
 * Environment variable names the guest's runtime owns. The MicroVMs docs list no reserved names;
 * we reserve the `AWS_` prefix, as Lambda reserves it for functions (AWS_REGION, AWS_ACCESS_KEY_ID,
 * ...: the SDKs inside the guest read them, and a value burnt into the snapshot would shadow the
 * real Region and execution-role credentials), and as the Python peer refuses AWS_REGION
 * (reference: peer-survey.md).
 */
const RESERVED_ENV_PREFIX = 'AWS_';

function checkEnvironmentVariable(key: string, value: string): void {
  checkPattern('environment variable name', key, /^[^\s]+$/, 1, 256, 'use a name without whitespace');
  if (!Token.isUnresolved(key) && key.toUpperCase().startsWith(RESERVED_ENV_PREFIX)) {
    throw new Error(`environment variable name '${key}' starts with ${RESERVED_ENV_PREFIX}, a prefix reserved for the AWS runtime ` +
      '(Region, credentials of the execution role): rename it, e.g. APP_' + key.slice(RESERVED_ENV_PREFIX.length));
  }
  checkPattern(`environment variable ${key}`, value, /^[\s\S]*$/, 0, 4096, 'keep values to 4096 characters or pass larger data another way');
}

function checkImportedImageArn(stack: Stack, id: string, arn: string): void {
  if (Token.isUnresolved(arn)) return;
  if (!IMAGE_ARN_PATTERN.test(arn)) {
    throw new Error(`MicroVmImage import ${id}: imageArn must be an unqualified MicroVM image ARN like ` +
      `arn:aws:lambda:us-east-1:123456789012:microvm-image:my-image, got '${arn}': ` +
      'drop any :<version> suffix (import versions with MicroVmImageVersion.fromVersionAttributes), or use fromImageName');
  }
  const parts = stack.splitArn(arn, ArnFormat.COLON_RESOURCE_NAME);
  for (const [what, theirs, ours] of [['Region', parts.region, stack.region], ['account', parts.account, stack.account]]) {
    if (theirs && !Token.isUnresolved(ours) && theirs !== ours) {
      throw new Error(`MicroVmImage import ${id}: the image is in ${what} ${theirs}, the stack in ${ours}: ` +
        'MicroVMs operations are regional and images cannot be shared across accounts, so nothing in this stack could use it: ' +
        `define the stack in the image's Region and account${theirs === 'aws' ? ' (for a Lambda-managed base image, use BaseImage.managed)' : ''}`);
    }
  }
}

function validateProps(scope: Construct, props: MicroVmImageProps, name: string): void {
  checkPattern('imageName', name, NAME_PATTERN, 1, 64, 'use letters, digits, hyphens and underscores only');
  if (props.adoptExisting && props.imageName === undefined) {
    throw new Error('adoptExisting: true needs imageName, the name of the image to take over (as ListMicrovmImages shows it): ' +
      'without it the name is derived from the construct path and matches no existing image');
  }
  if (props.memory) {
    const mib = props.memory.toMebibytes({ rounding: SizeRoundingBehavior.NONE });
    if (!Token.isUnresolved(mib)) checkOneOf('memory (MiB)', mib, MEMORY_TIERS_MIB, 'pick one of the service tiers, e.g. Size.gibibytes(2)');
  }
  const env = props.environment ?? {};
  checkMaxItems('environment', Object.keys(env), 50, 'the service takes at most 50 variables: merge some');
  for (const [k, v] of Object.entries(env)) checkEnvironmentVariable(k, v);
  checkTags('tags', props.tags);
  checkRemovalPolicy('removalPolicy', props.removalPolicy, 'a MicroVM image');
  if (props.hooks) {
    const h = props.hooks;
    checkRange('hooks.port', h.port, 1, 65535, 'use the port your hook server listens on');
    for (const [hookName, o] of Object.entries({ ready: h.ready, validate: h.validate })) {
      checkDurationSeconds(`hooks.${hookName}.timeout`, o?.timeout, 1, 3600, 'build hooks wait from 1 second to 1 hour');
    }
    for (const [hookName, o] of Object.entries({ run: h.run, resume: h.resume, suspend: h.suspend, terminate: h.terminate })) {
      checkDurationSeconds(`hooks.${hookName}.timeout`, o?.timeout, 1, 60, 'runtime hooks wait from 1 to 60 seconds');
    }
  }
  checkRange('keepVersions', props.keepVersions, 1, 50, 'an image has at most 50 versions; leave keepVersions unset to keep them all');
  checkMaxItems('egressConnectors', props.egressConnectors, 1, 'the MicroVMs API takes one egress connector per image: pass more to each MicroVmFleet instead');
  checkEgressConnectors('egressConnectors', props.egressConnectors);
  if (props.buildTimeout && !Token.isUnresolved(props.buildTimeout.toSeconds({ integral: false }))) {
    const seconds = props.buildTimeout.toSeconds({ integral: false });
    if (!Number.isInteger(seconds) || seconds < 60 || seconds > MAX_BUILD_TIMEOUT.toSeconds()) {
      throw new Error(`buildTimeout must be from 1 to ${MAX_BUILD_TIMEOUT.toMinutes()} minutes, got ${props.buildTimeout.toHumanString()}: ` +
        'CloudFormation waits at most one hour for a custom resource, and the handler reports before that');
    }
  }
  if (props.hooks && (props.hooks.run || props.hooks.resume || props.hooks.suspend || props.hooks.terminate) && !props.hooks.ready) {
    // A warning, not an error: the service documents the rule but enforces it only at build time.
    Annotations.of(scope).addWarningV2('cdk-lambda-microvms:hooks-need-ready',
      'hooks: runtime hooks are configured without the ready build hook; the service requires /ready whenever hooks are used: add `ready: {}`');
  }
}
