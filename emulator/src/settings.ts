/**
 * The emulator's settings and the service's published constants: what the public API (index.ts)
 * exposes. Free of SDK types, so that the shipped declarations stand alone.
 */
import { Clock } from './clock';

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

export interface RateLimit {
  rate: number;
  burst: number;
}

/** Default per-operation API rate limits (requests/second, burst) from the MicroVMs service quotas. */
export const DEFAULT_RATE_LIMITS: Readonly<Record<string, RateLimit>> = Object.freeze({
  RunMicrovm: { rate: 5, burst: 5 },
  ResumeMicrovm: { rate: 5, burst: 5 },
  SuspendMicrovm: { rate: 2, burst: 2 },
  TerminateMicrovm: { rate: 10, burst: 10 },
  GetMicrovm: { rate: 100, burst: 100 },
  CreateMicrovmAuthToken: { rate: 50, burst: 50 },
  CreateMicrovmShellAuthToken: { rate: 5, burst: 5 },
});
