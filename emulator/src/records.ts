/**
 * The emulator's records of resources: what a read resolves against the clock. (Settings and the
 * service's published constants are in settings.ts, re-exported here for the families.)
 */
import { Timeline } from './timeline';
import type { NetworkConnectorConfiguration } from '../../lambda/shared/lambda-core-client';

export * from './settings';

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
