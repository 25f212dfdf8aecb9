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

/** Context key: an endpoint URL that the provider functions send MicroVMs and Lambda Core calls to. */
export const LOCAL_ENDPOINT_CONTEXT = 'cdk-lambda-microvms:localEndpoint';

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
  readonly Environment?: Record<string, string>;
  readonly Hooks?: HooksWire;
  readonly EgressConnectors?: string[];
  readonly Tags?: Record<string, string>;
  /** The handler's own deadline for the build, in seconds. */
  readonly BuildTimeoutSeconds: string;
  /** 'true': Delete terminates MicroVMs still running from the image instead of failing. */
  readonly TerminateMicroVmsOnDelete?: string;
}

/** Attributes (Fn::GetAtt) of Custom::LambdaMicroVmImage. */
export const ImageAttr = {
  IMAGE_ARN: 'ImageArn',
  IMAGE_NAME: 'ImageName',
  IMAGE_VERSION: 'ImageVersion',
  LATEST_ACTIVE_IMAGE_VERSION: 'LatestActiveImageVersion',
} as const;
