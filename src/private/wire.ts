/**
 * The wire contract between the constructs (src/) and the provider handlers (lambda/).
 *
 * CloudFormation turns every property value into a string (numbers and booleans included), so
 * the handlers parse with the helpers in lambda/shared/props.ts. Property and attribute names
 * are a contract with deployed stacks: never rename one, only add.
 *
 * Not exported from index.ts: it is private to the library.
 */

/** Custom resource types. Never renamed: a rename replaces every deployed resource. */
export const ResourceType = {
  IMAGE: 'Custom::LambdaMicroVmImage',
  IMAGE_VERSION: 'Custom::LambdaMicroVmImageVersion',
  NETWORK_CONNECTOR: 'Custom::LambdaNetworkConnector',
  FLEET: 'Custom::LambdaMicroVmFleet',
} as const;

/**
 * A property of every resource type: the ARN of the role its handler assumes for the request
 * (src/private/provider.ts `handlerRole`). The handler entry (lambda/provider/index.ts) reads it
 * and strips it, so no handler ever compares it.
 */
export const HANDLER_ROLE_ARN = 'HandlerRoleArn';

/**
 * Where a resource's sensitive values are: an S3 object the construct staged at synth as a file
 * asset of the stack (content-addressed: new values, new key). The object is a JSON object of wire
 * properties (only those in STAGED_PROPERTY_NAMES), read by the handler with the resource's own
 * role and merged into the properties before any handler sees them (lambda/shared/staged.ts).
 * So the values are in no template, no CloudFormation event and no Step Functions execution.
 */
export interface StagedPropertiesWire {
  readonly Bucket: string;
  readonly Key: string;
}

/** The property of an image or a fleet that carries its StagedPropertiesWire. */
export const STAGED_PROPERTIES = 'StagedProperties';

/**
 * The wire properties that may be staged. A map (Environment) is merged with the inline part of
 * the same property, which holds the entries whose values are tokens (unknown at synth).
 */
export const STAGED_PROPERTY_NAMES: readonly string[] = ['Environment', 'RunHookPayload'];

/** Context key: an endpoint URL that the provider functions send MicroVMs and Lambda Core calls to. */
export const LOCAL_ENDPOINT_CONTEXT = 'cdk-lambda-microvms:localEndpoint';

// ------------------------------------------------------------------------------------------------
// Defaults and limits both sides use. Plain numbers: this file is bundled into the handlers, which
// must not load aws-cdk-lib. The constructs turn them into Duration/Size.

/** The Provider framework's totalTimeout, in seconds: no waiter polls longer than this. */
export const PROVIDER_TOTAL_TIMEOUT_SECONDS = 3600;
/**
 * How long before the framework's totalTimeout a handler gives up, in seconds, so that the
 * CloudFormation event carries the handler's own message rather than the framework's timeout.
 */
export const HANDLER_DEADLINE_MARGIN_SECONDS = 300;
/**
 * The provider's isComplete function timeout, in seconds: 5 minutes, so that a fleet's step works
 * through a 1000-instance launch (200 s at 5/s) without stopping for the framework's 15 s between
 * polls (issue 13). Handlers that answer at once (images, versions, connectors) are not affected.
 */
export const IS_COMPLETE_TIMEOUT_SECONDS = 300;
/** The longest any handler waits (a build, a fleet deploy, a busy resource): 55 minutes. */
export const MAX_HANDLER_WAIT_SECONDS = PROVIDER_TOTAL_TIMEOUT_SECONDS - HANDLER_DEADLINE_MARGIN_SECONDS;

/** MicroVmImage `buildTimeout` when unset: 50 minutes. */
export const DEFAULT_BUILD_TIMEOUT_SECONDS = 3000;
/** MicroVmImage `buildTimeout`: 1 minute to MAX_HANDLER_WAIT_SECONDS. */
export const MIN_BUILD_TIMEOUT_SECONDS = 60;
/** The memory tiers an image may ask for (`resources.minimumMemoryInMiB`). */
export const MEMORY_TIERS_MIB: readonly number[] = [512, 1024, 2048, 4096, 8192];
/** The memory the service records for an image created without `resources` (recorded live). */
export const SERVICE_DEFAULT_MEMORY_MIB = 2048;

/** NetworkConnector: how long a create, update or delete may take to settle, in seconds (30 minutes). */
export const CONNECTOR_TIMEOUT_SECONDS = 1800;

/** MicroVmFleet `timeout` when unset: 55 minutes. */
export const DEFAULT_FLEET_TIMEOUT_SECONDS = 3300;
/** MicroVmFleet `launchRate` when unset, RunMicrovm calls per second. */
export const DEFAULT_LAUNCH_RATE = 5;
/** RunMicrovm's limit for the /run hook payload, in bytes. */
export const MAX_RUN_HOOK_PAYLOAD_BYTES = 4096;

/** `logging` of an image or a MicroVM. */
export interface LoggingWire {
  /** 'true' when logging is disabled. */
  readonly Disabled?: string;
  readonly LogGroup?: string;
  readonly LogStream?: string;
}

/** One hook: present means ENABLED. */
export interface HookWire {
  readonly TimeoutSeconds?: string;
}

export interface HooksWire {
  readonly Port: string;
  readonly Ready?: HookWire;
  readonly Validate?: HookWire;
  readonly Run?: HookWire;
  readonly Resume?: HookWire;
  readonly Suspend?: HookWire;
  readonly Terminate?: HookWire;
}

/** Properties of Custom::LambdaMicroVmImage. */
export interface ImageProps {
  readonly Name: string;
  readonly Description?: string;
  readonly CodeUri: string;
  /** Changes when the user points at another object version: forces a rebuild. */
  readonly CodeObjectVersion?: string;
  readonly BaseImageArn: string;
  /** Only when the user set it: the service rejects its own resolved echo on update. */
  readonly BaseImageVersion?: string;
  readonly BuildRoleArn: string;
  readonly Logging: LoggingWire;
  readonly MemoryMiB?: string;
  readonly Architecture: string;
  readonly OsCapabilities?: string[];
  /** Only the variables whose name or value is a token; the others are in StagedProperties. */
  readonly Environment?: Record<string, string>;
  /** The literal environment variables, as `{ Environment: {...} }`. */
  readonly StagedProperties?: StagedPropertiesWire;
  readonly Hooks?: HooksWire;
  readonly EgressConnectors?: string[];
  readonly Tags?: Record<string, string>;
  /** The handler's own deadline for the build, in seconds. */
  readonly BuildTimeoutSeconds: string;
  /** 'true': Delete terminates MicroVMs still running from the image instead of failing. */
  readonly TerminateMicroVmsOnDelete?: string;
  /**
   * 'true': a Create that finds an image of this name made elsewhere (the L1, the console, another
   * tool: no owner tag) takes it over instead of failing; one owned by another resource of this
   * library is refused.
   */
  readonly AdoptExisting?: string;
}

/** Attributes (Fn::GetAtt) of Custom::LambdaMicroVmImage. */
export const ImageAttr = {
  IMAGE_ARN: 'ImageArn',
  IMAGE_NAME: 'ImageName',
  IMAGE_VERSION: 'ImageVersion',
  LATEST_ACTIVE_IMAGE_VERSION: 'LatestActiveImageVersion',
} as const;

/** Properties of Custom::LambdaNetworkConnector. */
export interface NetworkConnectorProps {
  /** Changing it replaces the connector. */
  readonly Name: string;
  /** 1 to 16 subnet ids. */
  readonly SubnetIds: string[];
  /** 0 to 5 security group ids. */
  readonly SecurityGroupIds?: string[];
  /** IPv4 | DualStack. */
  readonly NetworkProtocol: string;
  /** The one compute type the connector serves: MicroVm. */
  readonly ComputeType: string;
  readonly OperatorRoleArn?: string;
  readonly Tags?: Record<string, string>;
  /** The handler's own deadline for a create, update or delete to settle, in seconds. */
  readonly TimeoutSeconds: string;
}

/** Attributes (Fn::GetAtt) of Custom::LambdaNetworkConnector. */
export const NetworkConnectorAttr = {
  NETWORK_CONNECTOR_ARN: 'NetworkConnectorArn',
  NETWORK_CONNECTOR_ID: 'NetworkConnectorId',
  NETWORK_CONNECTOR_NAME: 'NetworkConnectorName',
} as const;

/** Properties of Custom::LambdaMicroVmImageVersion. */
export interface ImageVersionProps {
  /** The image ARN. A different image is a new physical resource. */
  readonly ImageArn: string;
  /** The version, e.g. `2.0`. A different version is a new physical resource. */
  readonly ImageVersion: string;
  /** ACTIVE | INACTIVE: changed in place with UpdateMicrovmImageVersion. */
  readonly Status: string;
  /**
   * 'destroy' | 'retain': what Delete does to the version. Carried as a property, not as the
   * CloudFormation DeletionPolicy: the handler must see every Delete to release its pin tag.
   */
  readonly RemovalPolicy: string;
}

/** Attributes (Fn::GetAtt) of Custom::LambdaMicroVmImageVersion. */
export const ImageVersionAttr = {
  IMAGE_ARN: 'ImageArn',
  IMAGE_VERSION: 'ImageVersion',
  IMAGE_VERSION_ARN: 'ImageVersionArn',
  VERSION_STATE: 'VersionState',
  VERSION_STATUS: 'VersionStatus',
  /** Comma-separated, one per build (architecture, chipset generation). */
  BUILD_IDS: 'BuildIds',
  /** The largest across the version's builds, in bytes. */
  MEMORY_SNAPSHOT_SIZE_BYTES: 'MemorySnapshotSizeBytes',
  DISK_SNAPSHOT_SIZE_BYTES: 'DiskSnapshotSizeBytes',
  CODE_INSTALL_SIZE_BYTES: 'CodeInstallSizeBytes',
} as const;

/**
 * Image tags that pin versions against pruning: `<prefix><version>:<pinner hash>` =
 * `<stack name>/<logical id>`, one per MicroVmImageVersion resource. The image handler's own tag
 * diff only touches the keys in the user's tags, so these survive image updates.
 */
export const PIN_TAG_PREFIX = 'cdk-lambda-microvms:pinned:';

/** Added to Custom::LambdaMicroVmImage: prune the oldest versions beyond this count on each update. */
export interface ImageVersionRetentionWire {
  /** 1 to 50; absent keeps every version. */
  readonly KeepVersions?: string;
}

/** `idlePolicy` of a MicroVmFleet: all three fields, as the API requires. */
export interface FleetIdlePolicyWire {
  readonly MaxIdleSeconds: string;
  readonly SuspendedSeconds: string;
  readonly AutoResume: string;
}

/** Properties of Custom::LambdaMicroVmFleet. */
export interface FleetProps {
  readonly ImageArn: string;
  /** Empty: the image's latest active version, resolved at each deploy. */
  readonly ImageVersion?: string;
  readonly DesiredCount: string;
  readonly ExecutionRoleArn?: string;
  readonly IngressConnectors?: string[];
  readonly EgressConnectors?: string[];
  readonly IdlePolicy?: FleetIdlePolicyWire;
  readonly MaximumDurationSeconds: string;
  readonly Logging?: LoggingWire;
  /** Inline /run payload: only a payload that is a token (unknown at synth); a literal one is staged. */
  readonly RunHookPayload?: string;
  /** A literal /run payload, as `{ RunHookPayload: "..." }`. */
  readonly StagedProperties?: StagedPropertiesWire;
  /** A Secrets Manager secret whose SecretString is the /run payload, read at deploy time. */
  readonly RunHookPayloadSecretArn?: string;
  /** 'ROLLING' or 'REPLACE_ALL'. */
  readonly UpdatePolicy: string;
  /** ROLLING: replacements in flight at once. */
  readonly BatchSize?: string;
  /** 'true': suspend each instance once RUNNING (a warm pool). */
  readonly SuspendAfterLaunch?: string;
  /** RunMicrovm calls per second. */
  readonly LaunchRate: string;
  /** The DynamoDB inventory table. */
  readonly TableName: string;
  /** The handler's own deadline for one deploy, in seconds. */
  readonly TimeoutSeconds: string;
}

/** Attributes (Fn::GetAtt) of Custom::LambdaMicroVmFleet. */
export const FleetAttr = {
  FLEET_ID: 'FleetId',
  IMAGE_VERSION: 'ImageVersion',
  INSTANCE_COUNT: 'InstanceCount',
  /** Comma-separated, in slot order; empty above FLEET_ATTRIBUTE_MAX_INSTANCES. */
  INSTANCE_IDS: 'InstanceIds',
  /** Comma-separated, in slot order; empty above FLEET_ATTRIBUTE_MAX_INSTANCES. */
  ENDPOINTS: 'Endpoints',
} as const;

/** Up to this many instances, ids and endpoints are attributes (they fit CloudFormation's 4 KB response). */
export const FLEET_ATTRIBUTE_MAX_INSTANCES = 10;
