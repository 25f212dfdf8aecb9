/**
 * The emulator's records of resources (what a read resolves against the clock), its settings, and the
 * service's constants as recorded.
 */
import { Clock } from './clock';
import { Timeline } from './timeline';
import type { NetworkConnectorConfiguration } from '../../lambda/shared/lambda-core-client';

// ---------------------------------------------------------------------------------------------------
// Options

/** State-transition delays in (virtual) milliseconds. */
export interface Delays {
  /** Image version build: time spent PENDING before IN_PROGRESS. */
  imageBuildPending: number;
  /** Image version build: time spent IN_PROGRESS before SUCCESSFUL / FAILED. */
  imageBuildInProgress: number;
  /** DeleteMicrovmImage: DELETING → gone. */
  imageDelete: number;
  /** DeleteMicrovmImageVersion: DELETING → gone. */
  versionDelete: number;
  /** RunMicrovm: PENDING → RUNNING. */
  vmStart: number;
  /** SuspendMicrovm / idle suspend: SUSPENDING → SUSPENDED. */
  vmSuspend: number;
  /** ResumeMicrovm: stays SUSPENDED this long (the /resume hook), then RUNNING. */
  vmResume: number;
  /** TerminateMicrovm / idle or duration cap: TERMINATING → TERMINATED. */
  vmTerminate: number;
  /** CreateNetworkConnector: PENDING → ACTIVE / FAILED. */
  connectorCreate: number;
  /** UpdateNetworkConnector: LastUpdateStatus InProgress → Successful / Failed. */
  connectorUpdate: number;
  /** DeleteNetworkConnector: DELETING → gone. */
  connectorDelete: number;
}

export const DEFAULT_DELAYS: Readonly<Delays> = Object.freeze({
  imageBuildPending: 500,
  imageBuildInProgress: 2500,
  imageDelete: 1000,
  versionDelete: 1000,
  vmStart: 1000,
  vmSuspend: 500,
  vmResume: 500,
  vmTerminate: 500,
  connectorCreate: 2000,
  connectorUpdate: 1000,
  connectorDelete: 1000,
});

export interface ServiceSettings {
  region: string;
  account: string;
  clock: Clock;
  delays: Delays;
  memoryQuotaMiB: number;
  imageQuota: number;
  versionQuota: number;
  connectorQuota: number;
}

// ---------------------------------------------------------------------------------------------------
// Constants

export const MANAGED_IMAGE_NAME = 'al2023-1';
/** Managed base image versions as recorded (`managed-images/list-versions`): "1" and "0", newest first. */
export const MANAGED_IMAGE_VERSIONS = ['1', '0'];
export const MANAGED_CREATED_AT = Date.parse('2026-06-01T00:00:00.000Z');
export const MANAGED_CONNECTOR_NAMES = ['ALL_INGRESS', 'NO_INGRESS', 'SHELL_INGRESS', 'HTTP_INGRESS', 'INTERNET_EGRESS'];
export const INGRESS_NAMES = new Set(['ALL_INGRESS', 'NO_INGRESS', 'SHELL_INGRESS', 'HTTP_INGRESS']);
export const EGRESS_NAMES = new Set(['INTERNET_EGRESS']);
export const DEFAULT_MEMORY_MIB = 2048;
export const MAX_DURATION_SECONDS = 28800;
/** Recorded `snapshotBuild` sizes of a minimal image (`images-lifecycle/get-build`). */
export const SNAPSHOT_SIZES = { codeInstallSizeInBytes: 186400768, diskSnapshotSizeInBytes: 25600000, memorySnapshotSizeInBytes: 609087488 };
/** Two builds per version, one per Graviton generation, as recorded (`images-lifecycle/list-builds`). */
export const CHIPSET_GENERATIONS = ['4', '3'];

export const BUILD_FAILURE_MESSAGES: Record<string, string> = {
  S3_ACCESS_DENIED: 'Access denied when retrieving the code artifact from Amazon S3.',
  S3_NO_SUCH_KEY: 'The code artifact object does not exist in Amazon S3.',
  S3_NO_SUCH_BUCKET: 'The code artifact bucket does not exist.',
  S3_INVALID_OBJECT: 'The code artifact object is not in a directly accessible storage class.',
  S3_CROSS_REGION_ACCESS_DENIED: 'The code artifact must be in the same Region as the MicroVM image.',
  ARCHIVE_DOCKERFILE_NOT_FOUND: 'The code artifact archive does not contain a Dockerfile at its root.',
  ARCHIVE_INVALID: 'The code artifact is not a valid ZIP archive.',
  CONTAINER_BUILD_FAILED: 'The container image build failed.',
  DISK_STORAGE_FULL: 'The build ran out of disk space.',
  INTERNAL_PLATFORM_ERROR: 'An internal error occurred while building the image.',
};

export const CONNECTOR_REASON_CODES = ['DisallowedByVpcEncryptionControl', 'Ec2RequestLimitExceeded', 'InsufficientRolePermissions', 'InternalError', 'InvalidSecurityGroup', 'InvalidSubnet', 'SubnetOutOfIPAddresses'];

// ---------------------------------------------------------------------------------------------------
// Resource records

export type VersionState = 'PENDING' | 'IN_PROGRESS' | 'SUCCESSFUL' | 'FAILED';
export type VmState = 'PENDING' | 'RUNNING' | 'SUSPENDING' | 'SUSPENDED' | 'TERMINATING' | 'TERMINATED';
export type GoneState = 'DELETING' | 'GONE';

export interface ImageConfig {
  baseImageArn: string;
  baseImageVersion: string;
  buildRoleArn: string;
  description: string | null;
  codeArtifact: unknown;
  logging: unknown;
  egressNetworkConnectors: string[];
  cpuConfigurations: unknown;
  resources: { minimumMemoryInMiB: number }[];
  additionalOsCapabilities: unknown;
  hooks: unknown;
  environmentVariables: unknown;
}

export interface Build {
  buildId: string;
  chipsetGeneration: string;
  createdAt: number;
}

export interface ImageVersion {
  version: string;
  major: number;
  config: ImageConfig;
  status: 'ACTIVE' | 'INACTIVE';
  statusChangedAt: number;
  createdAt: number;
  tl: Timeline<VersionState>;
  failure?: { code: string; message: string };
  builds: Build[];
  deleteTl?: Timeline<GoneState>;
}

export interface Image {
  id: string;
  name: string;
  arn: string;
  createdAt: number;
  updatedAt: number;
  tags: Record<string, string>;
  createTags: Record<string, string> | null;
  versions: Map<string, ImageVersion>;
  nextMajor: number;
  lastOp: { kind: 'CREATE' | 'UPDATE'; version: string };
  frozenOpState?: string;
  deleteTl?: Timeline<GoneState>;
  /** Whether the last Create/Update specified baseImageVersion itself (see UpdateMicrovmImage). */
  baseVersionUserSpecified: boolean;
}

export interface Microvm {
  id: string;
  uuid: string;
  imageArn: string;
  imageName: string;
  imageVersion: string;
  memoryMiB: number;
  startedAt: number;
  executionRoleArn: string | null;
  idlePolicy: { maxIdleDurationSeconds: number; suspendedDurationSeconds: number; autoResumeEnabled: boolean } | null;
  logging: unknown;
  runHookPayload: string | null;
  maximumDurationInSeconds: number;
  ingress: string[];
  egress: string[];
  tl: Timeline<VmState>;
}

export interface ConnectorVersion {
  version: number;
  configuration: NetworkConnectorConfiguration;
  operatorRole: string | null;
  lastModified: number;
}

export interface Connector {
  id: string;
  name: string;
  arn: string;
  createdAt: number;
  tags: Record<string, string>;
  versions: ConnectorVersion[];
  tl: Timeline<'PENDING' | 'ACTIVE' | 'FAILED'>;
  update?: { tl: Timeline<'InProgress' | 'Successful' | 'Failed'>; configuration: NetworkConnectorConfiguration; operatorRole: string | null; applied: boolean; noChange: boolean };
  deleteTl?: Timeline<GoneState>;
}

/** What an auth token carries (emulator format). */
export interface TokenClaims {
  /** MicroVM id. */
  mvm: string;
  /** Expiry, epoch seconds. */
  exp: number;
  all: boolean;
  ports: [number, number][];
  shell: boolean;
}

/** The endpoint's answer to one request: 403 / 502 with the body to send, or 200 with the MicroVM to forward to. */
export interface EndpointAccess {
  status: number;
  body: string;
  state?: string;
  vm?: Microvm;
}
