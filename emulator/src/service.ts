/**
 * The emulated control plane: images, versions, builds, MicroVMs, network connectors, tags, idempotency,
 * quotas and injected faults. All state transitions are lazy (see timeline.ts): mutations write the planned
 * future of a resource, reads resolve it against the clock.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { Clock } from './clock';
import { ApiError, coreErr, mvErr } from './errors';
import { Segment, Timeline } from './timeline';

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
const MANAGED_CREATED_AT = Date.parse('2026-06-01T00:00:00.000Z');
export const MANAGED_CONNECTOR_NAMES = ['ALL_INGRESS', 'NO_INGRESS', 'SHELL_INGRESS', 'HTTP_INGRESS', 'INTERNET_EGRESS'];
const INGRESS_NAMES = new Set(['ALL_INGRESS', 'NO_INGRESS', 'SHELL_INGRESS', 'HTTP_INGRESS']);
const EGRESS_NAMES = new Set(['INTERNET_EGRESS']);
export const DEFAULT_MEMORY_MIB = 2048;
export const MAX_DURATION_SECONDS = 28800;
/** Recorded `snapshotBuild` sizes of a minimal image (`images-lifecycle/get-build`). */
const SNAPSHOT_SIZES = { codeInstallSizeInBytes: 186400768, diskSnapshotSizeInBytes: 25600000, memorySnapshotSizeInBytes: 609087488 };
/** Two builds per version, one per Graviton generation, as recorded (`images-lifecycle/list-builds`). */
const CHIPSET_GENERATIONS = ['4', '3'];

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

type VersionState = 'PENDING' | 'IN_PROGRESS' | 'SUCCESSFUL' | 'FAILED';
type VmState = 'PENDING' | 'RUNNING' | 'SUSPENDING' | 'SUSPENDED' | 'TERMINATING' | 'TERMINATED';
type GoneState = 'DELETING' | 'GONE';

interface ImageConfig {
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

interface Build {
  buildId: string;
  chipsetGeneration: string;
  createdAt: number;
}

interface ImageVersion {
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

interface Image {
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

interface ConnectorVersion {
  version: number;
  configuration: any;
  operatorRole: string | null;
  lastModified: number;
}

interface Connector {
  id: string;
  name: string;
  arn: string;
  createdAt: number;
  tags: Record<string, string>;
  versions: ConnectorVersion[];
  tl: Timeline<'PENDING' | 'ACTIVE' | 'FAILED'>;
  update?: { tl: Timeline<'InProgress' | 'Successful' | 'Failed'>; configuration: any; operatorRole: string | null; applied: boolean; noChange: boolean };
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

// ---------------------------------------------------------------------------------------------------
// Faults

export interface BuildFailureFault {
  imageName: string;
  reasonCode: string;
  message?: string;
  count?: number;
}
export interface ConnectorFailureFault {
  operation: 'create' | 'update';
  /** Connector name (create) or name/Id (update); omitted = the next one of any name. */
  name?: string;
  reasonCode: string;
  reason?: string;
  count?: number;
}
export interface OperationFault {
  operation: string;
  mode: 'throttle' | 'error';
  /** Apply to the next N calls (default 1 unless `fraction` is given). */
  count?: number;
  /** Apply to this fraction (0–1] of calls until cleared. */
  fraction?: number;
  errorType?: string;
  message?: string;
  status?: number;
}
export interface EventualConsistencyFault {
  ms: number;
  kinds?: ('image' | 'microvm' | 'connector')[];
}

interface Faults {
  buildFailures: (BuildFailureFault & { remaining: number })[];
  connectorFailures: (ConnectorFailureFault & { remaining: number })[];
  operations: (OperationFault & { remaining: number })[];
  eventualConsistency?: EventualConsistencyFault;
}

// ---------------------------------------------------------------------------------------------------
// Helpers

export interface Result {
  status?: number;
  body?: unknown;
}

const sec = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : ms / 1000);
const iso = (ms: number) => new Date(ms).toISOString();
const clone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)));
const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v as object).sort().filter((k) => (v as any)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical((v as any)[k])}`).join(',')}}`;
}
function hashParams(input: Record<string, unknown>, tokenMember: string): string {
  const rest = { ...input };
  delete rest[tokenMember];
  return createHash('sha256').update(canonical(rest)).digest('hex');
}

function b64url(s: string | Buffer): string {
  return Buffer.from(s).toString('base64url');
}

function yymmddhh(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}`;
}

export function paginate<T>(
  items: T[],
  maxResults: number | undefined,
  token: string | undefined,
  defaultMax: number,
  err: (m: string) => ApiError,
): { page: T[]; next: string | null } {
  let offset = 0;
  if (token !== undefined && token !== '') {
    try {
      const o = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
      if (typeof o.o !== 'number' || o.o < 0) throw new Error('bad');
      offset = o.o;
    } catch {
      throw err(`Invalid pagination token: ${token}`);
    }
  }
  const max = maxResults ?? defaultMax;
  const page = items.slice(offset, offset + max);
  const next = offset + max < items.length ? b64url(JSON.stringify({ o: offset + max })) : null;
  return { page, next };
}

// ---------------------------------------------------------------------------------------------------

export class MicrovmsService {
  images = new Map<string, Image>(); // by name
  microvms = new Map<string, Microvm>(); // by id
  connectors = new Map<string, Connector>(); // by id
  deletedConnectors = new Map<string, { id: string; name: string; arn: string }>();
  idempotency = new Map<string, { hash: string; status: number; body: unknown }>();
  faults: Faults = { buildFailures: [], connectorFailures: [], operations: [] };
  /** Signs tokens so that a token edited by hand, or one from another emulator, fails like a forged one. */
  private readonly tokenKey = randomBytes(32);
  /** Called after each accepted RunMicrovm (the endpoint uses it for the `/run` hook). */
  onLaunch?: (vm: Microvm) => void;

  constructor(public readonly settings: ServiceSettings) {}

  get clock(): Clock {
    return this.settings.clock;
  }
  get region(): string {
    return this.settings.region;
  }
  get account(): string {
    return this.settings.account;
  }
  get delays(): Delays {
    return this.settings.delays;
  }
  now(): number {
    return this.clock.now();
  }

  reset(): void {
    this.images.clear();
    this.microvms.clear();
    this.connectors.clear();
    this.deletedConnectors.clear();
    this.idempotency.clear();
    this.faults = { buildFailures: [], connectorFailures: [], operations: [] };
  }

  // ----- ARNs

  imageArn(name: string): string {
    return `arn:aws:lambda:${this.region}:${this.account}:microvm-image:${name}`;
  }
  managedImageArn(): string {
    return `arn:aws:lambda:${this.region}:aws:microvm-image:${MANAGED_IMAGE_NAME}`;
  }
  managedConnectorArn(name: string): string {
    return `arn:aws:lambda:${this.region}:aws:network-connector:aws-network-connector:${name}`;
  }
  connectorArn(id: string): string {
    return `arn:aws:lambda:${this.region}:${this.account}:network-connector:${id}`;
  }

  /** Removes resources whose deletion has completed. */
  sweep(t = this.now()): void {
    for (const [name, img] of this.images) {
      if (img.deleteTl && img.deleteTl.state(t) === 'GONE') {
        this.images.delete(name);
        continue;
      }
      for (const [v, ver] of img.versions) {
        if (ver.deleteTl && ver.deleteTl.state(t) === 'GONE') {
          if (img.lastOp.version === v) img.frozenOpState = this.imageOpState(img, t, ver);
          img.versions.delete(v);
        }
      }
    }
    for (const [id, c] of this.connectors) {
      if (c.deleteTl && c.deleteTl.state(t) === 'GONE') {
        this.connectors.delete(id);
        this.deletedConnectors.set(id, { id, name: c.name, arn: c.arn });
      }
    }
  }

  // ----- idempotency

  private idem(op: string, token: unknown, input: Record<string, unknown>, tokenMember: string, service: 'microvms' | 'core'): { key: string; hash: string; replay?: Result } | undefined {
    if (typeof token !== 'string' || token.length === 0) return undefined;
    const key = `${op}\u0000${token}`;
    const hash = hashParams(input, tokenMember);
    const prev = this.idempotency.get(key);
    if (prev) {
      if (prev.hash !== hash) {
        const msg = `The client token ${token} was already used with different request parameters.`;
        throw service === 'core' ? coreErr.conflict(msg) : mvErr.conflict(msg, token, 'ClientToken');
      }
      return { key, hash, replay: { status: prev.status, body: clone(prev.body) } };
    }
    return { key, hash };
  }
  private remember(ctx: { key: string; hash: string } | undefined, res: Result, status: number): Result {
    if (ctx) this.idempotency.set(ctx.key, { hash: ctx.hash, status, body: clone(res.body) });
    return res;
  }

  // ----- faults

  private takeBuildFailure(imageName: string): { code: string; message: string } | undefined {
    const i = this.faults.buildFailures.findIndex((f) => f.imageName === imageName && f.remaining > 0);
    if (i < 0) return undefined;
    const f = this.faults.buildFailures[i];
    f.remaining--;
    if (f.remaining <= 0) this.faults.buildFailures.splice(i, 1);
    return { code: f.reasonCode, message: f.message ?? BUILD_FAILURE_MESSAGES[f.reasonCode] ?? 'The build failed.' };
  }
  private takeConnectorFailure(operation: 'create' | 'update', names: string[]): { code: string; reason: string } | undefined {
    const i = this.faults.connectorFailures.findIndex(
      (f) => f.operation === operation && f.remaining > 0 && (f.name === undefined || names.includes(f.name)),
    );
    if (i < 0) return undefined;
    const f = this.faults.connectorFailures[i];
    f.remaining--;
    if (f.remaining <= 0) this.faults.connectorFailures.splice(i, 1);
    return { code: f.reasonCode, reason: f.reason ?? `Network connector ${operation} failed: ${f.reasonCode}` };
  }
  private hiddenByConsistency(kind: 'image' | 'microvm' | 'connector', createdAt: number): boolean {
    const ec = this.faults.eventualConsistency;
    if (!ec || ec.ms <= 0) return false;
    if (ec.kinds && !ec.kinds.includes(kind)) return false;
    return this.now() - createdAt < ec.ms;
  }

  // ================================================================================================
  // Images

  private imageOpState(img: Image, t: number, ver?: ImageVersion): string {
    const v = ver ?? img.versions.get(img.lastOp.version);
    if (!v) return img.frozenOpState ?? (img.lastOp.kind === 'CREATE' ? 'CREATED' : 'UPDATED');
    const s = v.tl.state(t);
    const create = img.lastOp.kind === 'CREATE';
    if (s === 'PENDING' || s === 'IN_PROGRESS') return create ? 'CREATING' : 'UPDATING';
    if (s === 'SUCCESSFUL') return create ? 'CREATED' : 'UPDATED';
    return create ? 'CREATE_FAILED' : 'UPDATE_FAILED';
  }

  imageState(img: Image, t = this.now()): string {
    if (img.deleteTl) return 'DELETING';
    // Recorded (images-lifecycle/image-until-settled): after DeleteMicrovmImageVersion the image is
    // polled back to UPDATED, and a DeleteMicrovmImage meanwhile is refused with "...: UPDATING".
    if ([...img.versions.values()].some((v) => v.deleteTl?.state(t) === 'DELETING')) return 'UPDATING';
    return this.imageOpState(img, t);
  }

  private liveVersions(img: Image): ImageVersion[] {
    return [...img.versions.values()].sort((a, b) => a.major - b.major);
  }

  latestActive(img: Image, t = this.now()): string | null {
    const vs = this.liveVersions(img).filter((v) => !v.deleteTl && v.status === 'ACTIVE' && v.tl.state(t) === 'SUCCESSFUL');
    return vs.length ? vs[vs.length - 1].version : null;
  }
  latestFailed(img: Image, t = this.now()): string | null {
    const vs = this.liveVersions(img).filter((v) => !v.deleteTl && v.tl.state(t) === 'FAILED');
    return vs.length ? vs[vs.length - 1].version : null;
  }
  private imageUpdatedAt(img: Image, t: number): number {
    let u = img.updatedAt;
    const v = img.versions.get(img.lastOp.version);
    if (v) u = Math.max(u, v.tl.at(t).at);
    if (img.deleteTl) u = Math.max(u, img.deleteTl.segs[0].at);
    return u;
  }

  /** Finds an image by ARN, name or id. */
  findImage(identifier: string): Image | undefined {
    const m = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):microvm-image:([a-zA-Z0-9-_]+)$/.exec(identifier);
    if (m) {
      if (m[1] !== this.region || m[2] !== this.account) return undefined;
      return this.images.get(m[3]);
    }
    const byName = this.images.get(identifier);
    if (byName) return byName;
    for (const img of this.images.values()) if (img.id === identifier) return img;
    return undefined;
  }

  private requireImage(identifier: string, forGet = false): Image {
    const img = this.findImage(identifier);
    if (!img || (forGet && this.hiddenByConsistency('image', img.createdAt))) {
      throw mvErr.notFound(`MicroVMImage not found for MicroVMImageID: ${identifier}`);
    }
    return img;
  }

  private requireVersion(identifier: string, version: string): { img: Image; ver: ImageVersion } {
    const img = this.findImage(identifier);
    const ver = img?.versions.get(version);
    if (!img || !ver) {
      const arn = img?.arn ?? (identifier.startsWith('arn:') ? identifier : this.imageArn(identifier));
      throw mvErr.notFound(`MicroVMImage not found for MicroVMImage: ${arn}, Version: ${version}`);
    }
    return { img, ver };
  }

  private resolveBaseVersion(input: any, previous?: Image): { resolved: string; userSpecified: boolean } {
    const requested: string | undefined = input.baseImageVersion;
    if (requested === undefined) return { resolved: `${MANAGED_IMAGE_VERSIONS[0]}.0`, userSpecified: false };
    if (previous && !previous.baseVersionUserSpecified) {
      const current = previous.versions.get(previous.lastOp.version)?.config.baseImageVersion ?? `${MANAGED_IMAGE_VERSIONS[0]}.0`;
      if (requested === current) {
        // The service resolves an omitted baseImageVersion to a full version string (e.g. "1.0") and
        // echoes it in Get/Create/Update responses; sending that echo back as input is rejected
        // (hashicorp/terraform-provider-aws lambdamicrovms/image.go). Clients must omit it unless changed.
        throw mvErr.validation(`Invalid baseImageVersion '${requested}': the value was resolved by the service and cannot be specified as input. Omit baseImageVersion to use the latest version of the base image.`);
      }
    }
    const major = requested.replace(/\.0$/, '');
    if (!MANAGED_IMAGE_VERSIONS.includes(major)) {
      throw mvErr.validation(`Invalid baseImageVersion '${requested}' for base image ${input.baseImageArn}. Available versions: ${MANAGED_IMAGE_VERSIONS.join(', ')}.`);
    }
    return { resolved: `${major}.0`, userSpecified: true };
  }

  private checkBaseImage(arn: string): void {
    if (arn !== this.managedImageArn()) {
      throw mvErr.notFound(`Base MicroVM image not found: ${arn}. Use ListManagedMicrovmImages to list the available base images.`);
    }
  }

  /** Validates connector ARNs for image egress or RunMicrovm. */
  private checkConnectors(arns: string[], kind: 'ingress' | 'egress', member: string): void {
    for (const arn of arns) {
      const managed = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):aws:network-connector:aws-network-connector:([A-Z_]+)$/.exec(arn);
      if (managed) {
        if (managed[1] !== this.region || !MANAGED_CONNECTOR_NAMES.includes(managed[2])) {
          throw mvErr.validation(`Invalid network connector ARN in ${member}: ${arn}`);
        }
        const ok = kind === 'ingress' ? INGRESS_NAMES.has(managed[2]) : EGRESS_NAMES.has(managed[2]);
        if (!ok) throw mvErr.validation(`Network connector ${arn} cannot be used as an ${kind} network connector.`);
        continue;
      }
      const own = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):network-connector:([a-zA-Z0-9-_]+)$/.exec(arn);
      if (!own) throw mvErr.validation(`Invalid network connector ARN in ${member}: ${arn}`);
      if (kind === 'ingress') throw mvErr.validation(`Network connector ${arn} cannot be used as an ingress network connector.`);
      const c = own[1] === this.region && own[2] === this.account ? this.connectors.get(own[3]) : undefined;
      if (!c) throw mvErr.notFound(`Network connector not found: ${arn}`, arn, 'NetworkConnector');
      const st = this.connectorState(c);
      if (st !== 'ACTIVE') throw mvErr.validation(`Network connector ${arn} is in state ${st}; it must be ACTIVE.`);
    }
  }

  private buildConfig(input: any, baseVersion: string): ImageConfig {
    return {
      baseImageArn: input.baseImageArn,
      baseImageVersion: baseVersion,
      buildRoleArn: input.buildRoleArn,
      description: orNull(input.description),
      codeArtifact: clone(input.codeArtifact),
      logging: orNull(clone(input.logging)),
      egressNetworkConnectors: input.egressNetworkConnectors?.length ? [...input.egressNetworkConnectors] : [this.managedConnectorArn('INTERNET_EGRESS')],
      cpuConfigurations: orNull(clone(input.cpuConfigurations)),
      resources: input.resources?.length ? clone(input.resources) : [{ minimumMemoryInMiB: DEFAULT_MEMORY_MIB }],
      additionalOsCapabilities: orNull(clone(input.additionalOsCapabilities)),
      hooks: orNull(clone(input.hooks)),
      environmentVariables: orNull(clone(input.environmentVariables)),
    };
  }

  private newVersion(img: Image, config: ImageConfig, t: number): ImageVersion {
    const major = img.nextMajor++;
    const failure = this.takeBuildFailure(img.name);
    const d = this.delays;
    const tl = new Timeline<VersionState>({ state: 'PENDING', at: t });
    tl.push({ state: 'IN_PROGRESS', at: t + d.imageBuildPending });
    tl.push(failure
      ? { state: 'FAILED', at: t + d.imageBuildPending + d.imageBuildInProgress, reason: 'one or more builds failed', code: failure.code }
      : { state: 'SUCCESSFUL', at: t + d.imageBuildPending + d.imageBuildInProgress });
    const ver: ImageVersion = {
      version: `${major}.0`,
      major,
      config,
      status: 'ACTIVE',
      statusChangedAt: t,
      createdAt: t,
      tl,
      failure,
      builds: CHIPSET_GENERATIONS.map((g) => ({ buildId: randomUUID(), chipsetGeneration: g, createdAt: t })),
    };
    img.versions.set(ver.version, ver);
    return ver;
  }

  private imageBody(img: Image, ver: ImageVersion, t: number, kind: 'create' | 'update'): Record<string, unknown> {
    const c = ver.config;
    const body: Record<string, unknown> = {
      additionalOsCapabilities: clone(c.additionalOsCapabilities),
      baseImageArn: c.baseImageArn,
      baseImageVersion: c.baseImageVersion,
      buildPhaseOverrides: null,
      buildRoleArn: c.buildRoleArn,
      codeArtifact: clone(c.codeArtifact),
      cpuConfigurations: clone(c.cpuConfigurations),
      createdAt: sec(img.createdAt),
      description: c.description,
      egressNetworkConnectors: [...c.egressNetworkConnectors],
      environmentVariables: clone(c.environmentVariables),
      hooks: clone(c.hooks),
      id: img.id,
      imageArn: img.arn,
      imageVersion: ver.version,
      latestActiveImageVersion: this.latestActive(img, t),
      latestFailedImageVersion: this.latestFailed(img, t),
      logging: clone(c.logging),
      name: img.name,
      resources: clone(c.resources),
      roleConfiguration: null,
      state: this.imageState(img, t),
      updatedAt: sec(this.imageUpdatedAt(img, t)),
    };
    // Recorded: the Create answer carries `tags` (null when none were given), the Update answer has none.
    if (kind === 'create') body.tags = img.createTags ? { ...img.createTags } : null;
    return body;
  }

  imageView(img: Image, t = this.now(), withTags = true): Record<string, unknown> {
    const v: Record<string, unknown> = {
      createdAt: sec(img.createdAt),
      id: img.id,
      imageArn: img.arn,
      latestActiveImageVersion: this.latestActive(img, t),
      latestFailedImageVersion: this.latestFailed(img, t),
      name: img.name,
      state: this.imageState(img, t),
    };
    if (withTags) {
      v.tags = { ...img.tags };
      v.updatedAt = sec(this.imageUpdatedAt(img, t));
    }
    return v;
  }

  versionState(ver: ImageVersion, t = this.now()): string {
    if (ver.deleteTl) return 'DELETING';
    return ver.tl.state(t);
  }

  versionView(img: Image, ver: ImageVersion, t = this.now()): Record<string, unknown> {
    const c = ver.config;
    const seg = ver.tl.at(t);
    const state = this.versionState(ver, t);
    return {
      additionalOsCapabilities: clone(c.additionalOsCapabilities),
      baseImageArn: c.baseImageArn,
      baseImageVersion: c.baseImageVersion,
      buildRoleArn: c.buildRoleArn,
      codeArtifact: clone(c.codeArtifact),
      cpuConfigurations: clone(c.cpuConfigurations),
      createdAt: sec(ver.createdAt),
      description: c.description,
      egressNetworkConnectors: [...c.egressNetworkConnectors],
      environmentVariables: clone(c.environmentVariables),
      hooks: clone(c.hooks),
      imageArn: img.arn,
      imageVersion: ver.version,
      logging: clone(c.logging),
      resources: clone(c.resources),
      state,
      stateReason: seg.state === 'FAILED' ? (seg.reason ?? null) : null,
      status: ver.status,
      tags: null,
      updatedAt: sec(Math.max(seg.at, ver.statusChangedAt, ver.deleteTl?.segs[0].at ?? 0)),
      versionStateTimeBucket: `${state}#${yymmddhh(seg.at)}`,
    };
  }

  buildView(img: Image, ver: ImageVersion, b: Build, t = this.now(), detail = false): Record<string, unknown> {
    const seg = ver.tl.at(t);
    const v: Record<string, unknown> = {
      architecture: 'ARM_64',
      buildId: b.buildId,
      buildState: seg.state,
      chipset: 'GRAVITON',
      chipsetGeneration: b.chipsetGeneration,
      createdAt: sec(b.createdAt),
      imageArn: img.arn,
      imageVersion: ver.version,
      stateReason: seg.state === 'FAILED' && ver.failure ? `${ver.failure.code}: ${ver.failure.message}` : null,
      terminationReasonCode: null,
    };
    if (detail) v.snapshotBuild = seg.state === 'SUCCESSFUL' ? { ...SNAPSHOT_SIZES } : null;
    return v;
  }

  createMicrovmImage(input: any): Result {
    const t = this.now();
    const ctx = this.idem('CreateMicrovmImage', input.clientToken, input, 'clientToken', 'microvms');
    if (ctx?.replay) return ctx.replay;
    const existing = this.images.get(input.name);
    if (existing) {
      if (existing.deleteTl) {
        // Recorded (m80 notes): the name stays reserved until the delete drains; a create in that window gets 400.
        throw mvErr.validation(`MicroVM image with name ${input.name} already exists.`);
      }
      throw mvErr.conflict(`MicroVM image with name ${input.name} already exists.`, existing.arn, 'MicrovmImage');
    }
    if (this.images.size >= this.settings.imageQuota) {
      throw mvErr.quota(`You have reached the maximum number of MicroVM images (${this.settings.imageQuota}) for this account.`);
    }
    this.checkBaseImage(input.baseImageArn);
    if (input.egressNetworkConnectors) this.checkConnectors(input.egressNetworkConnectors, 'egress', 'egressNetworkConnectors');
    const base = this.resolveBaseVersion(input);
    const img: Image = {
      id: randomUUID(),
      name: input.name,
      arn: this.imageArn(input.name),
      createdAt: t,
      updatedAt: t,
      tags: { ...(input.tags ?? {}) },
      createTags: input.tags ? { ...input.tags } : null,
      versions: new Map(),
      nextMajor: 1,
      lastOp: { kind: 'CREATE', version: '1.0' },
      baseVersionUserSpecified: base.userSpecified,
    };
    const ver = this.newVersion(img, this.buildConfig(input, base.resolved), t);
    img.lastOp = { kind: 'CREATE', version: ver.version };
    this.images.set(img.name, img);
    return this.remember(ctx, { status: 201, body: this.imageBody(img, ver, t, 'create') }, 201);
  }

  updateMicrovmImage(input: any): Result {
    const t = this.now();
    const ctx = this.idem('UpdateMicrovmImage', input.clientToken, input, 'clientToken', 'microvms');
    if (ctx?.replay) return ctx.replay;
    const img = this.requireImage(input.imageIdentifier);
    const st = this.imageState(img, t);
    if (st === 'DELETING') throw mvErr.conflict(`MicroVM image ${img.arn} is being deleted.`, img.arn, 'MicrovmImage');
    if (st === 'CREATING' || st === 'UPDATING') {
      throw mvErr.conflict(`MicroVM image ${img.arn} is in state ${st}; wait for the current build to finish before updating it.`, img.arn, 'MicrovmImage');
    }
    if (img.versions.size >= this.settings.versionQuota) {
      throw mvErr.quota(`MicroVM image ${img.arn} has reached the maximum number of versions (${this.settings.versionQuota}). Delete unused versions first.`, { resourceId: img.arn, resourceType: 'MicrovmImage' });
    }
    this.checkBaseImage(input.baseImageArn);
    if (input.egressNetworkConnectors) this.checkConnectors(input.egressNetworkConnectors, 'egress', 'egressNetworkConnectors');
    const base = this.resolveBaseVersion(input, img);
    const ver = this.newVersion(img, this.buildConfig(input, base.resolved), t);
    img.lastOp = { kind: 'UPDATE', version: ver.version };
    img.frozenOpState = undefined;
    img.baseVersionUserSpecified = base.userSpecified;
    img.updatedAt = t;
    return this.remember(ctx, { status: 200, body: this.imageBody(img, ver, t, 'update') }, 200);
  }

  getMicrovmImage(input: any): Result {
    const img = this.requireImage(input.imageIdentifier, true);
    return { body: this.imageView(img) };
  }

  listMicrovmImages(input: any): Result {
    const t = this.now();
    let imgs = [...this.images.values()].sort((a, b) => a.createdAt - b.createdAt);
    if (input.nameFilter) imgs = imgs.filter((i) => i.name.includes(input.nameFilter));
    const { page, next } = paginate(imgs, input.maxResults, input.nextToken, 50, mvErr.validation);
    return { body: { items: page.map((i) => this.imageView(i, t, false)), nextToken: next } };
  }

  deleteMicrovmImage(input: any): Result {
    const t = this.now();
    const img = this.requireImage(input.imageIdentifier);
    if (img.deleteTl) return { body: { imageIdentifier: input.imageIdentifier, state: 'DELETING' } };
    const st = this.imageState(img, t);
    // Recorded (recorded-facts.md, Images): a delete during a build, or while a version delete still
    // drains (the image reads UPDATING then), is refused with 400 naming the state after the colon.
    if (st === 'CREATING' || st === 'UPDATING') throw mvErr.validation(`Cannot delete MicroVM image in its current state: ${st}`);
    // Recorded: any MicroVM not yet TERMINATED (TERMINATING included) blocks the delete with this 400.
    const active = [...this.microvms.values()].filter((vm) => vm.imageName === img.name && vm.imageArn === img.arn && this.vmState(vm, t) !== 'TERMINATED');
    if (active.length > 0) throw mvErr.validation('Cannot delete microvm image with running microvms.');
    img.deleteTl = new Timeline<GoneState>({ state: 'DELETING', at: t }).push({ state: 'GONE', at: t + this.delays.imageDelete });
    return { body: { imageIdentifier: input.imageIdentifier, state: 'DELETING' } };
  }

  listMicrovmImageVersions(input: any): Result {
    const t = this.now();
    const img = this.requireImage(input.imageIdentifier);
    const { page, next } = paginate(this.liveVersions(img), input.maxResults, input.nextToken, 50, mvErr.validation);
    return { body: { items: page.map((v) => this.versionView(img, v, t)), nextToken: next } };
  }

  getMicrovmImageVersion(input: any): Result {
    const { img, ver } = this.requireVersion(input.imageIdentifier, input.imageVersion);
    return { body: this.versionView(img, ver) };
  }

  updateMicrovmImageVersion(input: any): Result {
    const t = this.now();
    const { img, ver } = this.requireVersion(input.imageIdentifier, input.imageVersion);
    if (img.deleteTl || ver.deleteTl) throw mvErr.conflict(`MicroVM image version ${ver.version} of ${img.arn} is being deleted.`, img.arn, 'MicrovmImageVersion');
    // Recorded (recorded-facts.md, Images): a PATCH while the image builds is refused with this 409.
    const st = this.imageState(img, t);
    if (st === 'CREATING' || st === 'UPDATING') throw mvErr.conflict(`MicroVM Image is already in state: ${st}`, img.arn, 'MicrovmImage');
    if (ver.status !== input.status) {
      ver.status = input.status;
      ver.statusChangedAt = t;
    }
    return { body: this.versionView(img, ver, t) };
  }

  deleteMicrovmImageVersion(input: any): Result {
    const t = this.now();
    const { img, ver } = this.requireVersion(input.imageIdentifier, input.imageVersion);
    const body = { imageIdentifier: input.imageIdentifier, imageVersion: ver.version, state: 'DELETING' };
    if (ver.deleteTl) return { body };
    if (img.deleteTl) throw mvErr.conflict(`MicroVM image ${img.arn} is being deleted.`, img.arn, 'MicrovmImage');
    const st = ver.tl.state(t);
    if (st === 'PENDING' || st === 'IN_PROGRESS') {
      throw mvErr.conflict(`MicroVM image version ${ver.version} of ${img.arn} cannot be deleted while it is being built.`, img.arn, 'MicrovmImageVersion');
    }
    const remaining = [...img.versions.values()].filter((v) => !v.deleteTl);
    if (remaining.length <= 1) {
      throw mvErr.conflict(`Cannot delete version ${ver.version}: it is the last remaining version of MicroVM image ${img.arn}. Use DeleteMicrovmImage instead.`, img.arn, 'MicrovmImageVersion');
    }
    const running = [...this.microvms.values()].filter((vm) => vm.imageArn === img.arn && vm.imageVersion === ver.version && this.vmState(vm, t) !== 'TERMINATED');
    if (running.length > 0) {
      throw mvErr.conflict(`MicroVM image version ${ver.version} of ${img.arn} cannot be deleted while ${running.length} MicroVM(s) launched from it are not TERMINATED.`, img.arn, 'MicrovmImageVersion');
    }
    ver.deleteTl = new Timeline<GoneState>({ state: 'DELETING', at: t }).push({ state: 'GONE', at: t + this.delays.versionDelete });
    return { body };
  }

  listMicrovmImageBuilds(input: any): Result {
    const t = this.now();
    const { img, ver } = this.requireVersion(input.imageIdentifier, input.imageVersion);
    let builds = ver.builds;
    if (input.architecture && input.architecture !== 'ARM_64') builds = [];
    if (input.chipset && input.chipset !== 'GRAVITON') builds = [];
    if (input.chipsetGeneration) builds = builds.filter((b) => b.chipsetGeneration === input.chipsetGeneration);
    const { page, next } = paginate(builds, input.maxResults, input.nextToken, 50, mvErr.validation);
    return { body: { items: page.map((b) => this.buildView(img, ver, b, t)), nextToken: next } };
  }

  getMicrovmImageBuild(input: any): Result {
    const { img, ver } = this.requireVersion(input.imageIdentifier, input.imageVersion);
    const b = ver.builds.find((x) => x.buildId === input.buildId);
    if (!b) throw mvErr.notFound(`MicroVMImage build not found for MicroVMImage: ${img.arn}, Version: ${ver.version}, BuildId: ${input.buildId}`);
    return { body: this.buildView(img, ver, b, this.now(), true) };
  }

  // ----- managed images

  private managedItem(): Record<string, unknown> {
    return { createdAt: sec(MANAGED_CREATED_AT), imageArn: this.managedImageArn(), updatedAt: sec(MANAGED_CREATED_AT) };
  }

  listManagedMicrovmImages(input: any): Result {
    const { page, next } = paginate([this.managedItem()], input.maxResults, input.nextToken, 50, mvErr.validation);
    return { body: { items: page, nextToken: next } };
  }

  listManagedMicrovmImageVersions(input: any): Result {
    const id = input.imageIdentifier;
    if (id !== this.managedImageArn() && id !== MANAGED_IMAGE_NAME) {
      throw mvErr.notFound(`Managed MicroVM image not found: ${id}`);
    }
    const items = MANAGED_IMAGE_VERSIONS.map((v, i) => ({
      createdAt: sec(MANAGED_CREATED_AT - i * 86400000),
      imageArn: this.managedImageArn(),
      imageVersion: v,
      status: 'AVAILABLE',
      updatedAt: sec(MANAGED_CREATED_AT - i * 86400000),
    }));
    const { page, next } = paginate(items, input.maxResults, input.nextToken, 50, mvErr.validation);
    return { body: { items: page, nextToken: next } };
  }

  // ================================================================================================
  // MicroVMs

  vmState(vm: Microvm, t = this.now()): VmState {
    return vm.tl.state(t);
  }

  /** Plans RUNNING from `at`: the idle policy suspends after maxIdleDurationSeconds (no traffic reaches the emulator). */
  private planRunning(vm: Microvm, at: number): void {
    if (!vm.idlePolicy) return;
    const suspendingAt = at + vm.idlePolicy.maxIdleDurationSeconds * 1000;
    vm.tl.push({ state: 'SUSPENDING', at: suspendingAt });
    this.planSuspended(vm, suspendingAt + this.delays.vmSuspend);
  }

  private planSuspended(vm: Microvm, suspendedAt: number): void {
    vm.tl.push({ state: 'SUSPENDED', at: suspendedAt });
    if (!vm.idlePolicy) return;
    const termAt = suspendedAt + vm.idlePolicy.suspendedDurationSeconds * 1000;
    const reason = `The MicroVM was terminated after remaining SUSPENDED for ${vm.idlePolicy.suspendedDurationSeconds} seconds (idlePolicy.suspendedDurationSeconds).`;
    vm.tl.push({ state: 'TERMINATING', at: termAt, reason });
    vm.tl.push({ state: 'TERMINATED', at: termAt + this.delays.vmTerminate, reason });
  }

  /** The maximumDurationInSeconds cap (running + suspended time) ends every plan in TERMINATED. */
  private applyCap(vm: Microvm): void {
    const capAt = vm.startedAt + vm.maximumDurationInSeconds * 1000;
    const firstTerm = vm.tl.segs.find((s) => s.state === 'TERMINATING' || s.state === 'TERMINATED');
    if (firstTerm && firstTerm.at <= capAt) return;
    vm.tl.segs = vm.tl.segs.filter((s, i) => i === 0 || s.at < capAt);
    const reason = `The MicroVM reached its maximum duration of ${vm.maximumDurationInSeconds} seconds.`;
    vm.tl.push({ state: 'TERMINATING', at: capAt, reason });
    vm.tl.push({ state: 'TERMINATED', at: capAt + this.delays.vmTerminate, reason });
  }

  microvmView(vm: Microvm, t = this.now()): Record<string, unknown> {
    const seg = vm.tl.at(t);
    const terminated = seg.state === 'TERMINATED';
    return {
      egressNetworkConnectors: [...vm.egress],
      endpoint: this.endpointOf(vm),
      executionRoleArn: vm.executionRoleArn,
      idlePolicy: vm.idlePolicy ? { ...vm.idlePolicy } : null,
      imageArn: vm.imageArn,
      imageVersion: vm.imageVersion,
      ingressNetworkConnectors: [...vm.ingress],
      maximumDurationInSeconds: vm.maximumDurationInSeconds,
      microvmId: vm.id,
      startedAt: sec(vm.startedAt),
      state: seg.state,
      stateReason: seg.state === 'TERMINATING' || terminated ? (seg.reason ?? null) : null,
      terminatedAt: terminated ? sec(seg.at) : null,
      terminationReasonCode: null,
    };
  }

  /** Recorded endpoints are `<uuid>.lambda-microvm.<region>.on.aws` (no `microvm-` prefix). */
  endpointOf(vm: Microvm): string {
    return `${vm.uuid}.lambda-microvm.${this.region}.on.aws`;
  }

  findMicrovm(identifier: string): Microvm | undefined {
    const direct = this.microvms.get(identifier);
    if (direct) return direct;
    const m = /:microvm:(microvm-[0-9a-f-]+)$/.exec(identifier);
    return m ? this.microvms.get(m[1]) : undefined;
  }

  private requireMicrovm(identifier: string, forGet = false): Microvm {
    const vm = this.findMicrovm(identifier);
    if (!vm || (forGet && this.hiddenByConsistency('microvm', vm.startedAt))) throw mvErr.notFound(`MicroVM not found: ${identifier}`);
    return vm;
  }

  private terminatedError(vm: Microvm): ApiError {
    return mvErr.validation(`The MicroVM ${vm.id} has been terminated and its state cannot be changed.`);
  }

  memoryInUse(t = this.now()): number {
    let sum = 0;
    for (const vm of this.microvms.values()) {
      const s = this.vmState(vm, t);
      if (s === 'PENDING' || s === 'RUNNING' || s === 'SUSPENDING' || s === 'SUSPENDED') sum += vm.memoryMiB;
    }
    return sum;
  }

  runMicrovm(input: any): Result {
    const t = this.now();
    const ctx = this.idem('RunMicrovm', input.clientToken, input, 'clientToken', 'microvms');
    if (ctx?.replay) return ctx.replay;
    const id: string = input.imageIdentifier;
    if (!/^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:(\d{12}|aws):microvm-image:[a-zA-Z0-9-_]+$/.test(id)) {
      // The AWS skill and Dev Guide: RunMicrovm's imageIdentifier must be the image ARN (bare name rejected).
      throw mvErr.validation(`Invalid imageIdentifier '${id}': specify the ARN of the MicroVM image.`);
    }
    const img = this.findImage(id);
    if (!img || img.deleteTl) throw mvErr.notFound(`No active version found for MicroVM image ${id}`);
    let ver: ImageVersion | undefined;
    if (input.imageVersion !== undefined) {
      ver = img.versions.get(input.imageVersion);
      if (!ver || ver.deleteTl) throw mvErr.notFound(`MicroVMImage not found for MicroVMImage: ${img.arn}, Version: ${input.imageVersion}`);
      const vs = ver.tl.state(t);
      if (vs !== 'SUCCESSFUL') {
        throw mvErr.validation(`MicroVM image version ${ver.version} of ${img.arn} is in state ${vs}; only SUCCESSFUL versions can run MicroVMs.`);
      }
      if (ver.status !== 'ACTIVE') {
        throw mvErr.validation(`MicroVM image version ${ver.version} of ${img.arn} is INACTIVE and cannot launch new MicroVMs.`);
      }
    } else {
      const latest = this.latestActive(img, t);
      if (!latest) throw mvErr.notFound(`No active version found for MicroVM image ${img.arn}`);
      ver = img.versions.get(latest)!;
    }
    if (input.idlePolicy && input.idlePolicy.maxIdleDurationSeconds > MAX_DURATION_SECONDS) {
      throw mvErr.validation(`Value '${input.idlePolicy.maxIdleDurationSeconds}' at 'idlePolicy.maxIdleDurationSeconds' failed to satisfy constraint: Member must have value less than or equal to ${MAX_DURATION_SECONDS}`);
    }
    const ingress: string[] = input.ingressNetworkConnectors?.length ? [...input.ingressNetworkConnectors] : [this.managedConnectorArn('HTTP_INGRESS')];
    const egress: string[] = input.egressNetworkConnectors?.length ? [...input.egressNetworkConnectors] : [this.managedConnectorArn('INTERNET_EGRESS')];
    this.checkConnectors(ingress, 'ingress', 'ingressNetworkConnectors');
    this.checkConnectors(egress, 'egress', 'egressNetworkConnectors');
    const memoryMiB = ver.config.resources[0]?.minimumMemoryInMiB ?? DEFAULT_MEMORY_MIB;
    if (this.memoryInUse(t) + memoryMiB > this.settings.memoryQuotaMiB) {
      // Recorded (throttle/run-burst): 402 with this message and null quotaCode/serviceCode/resource fields.
      throw mvErr.quota('The base maximum allocated memory limit has been reached for this account.');
    }
    const uuid = randomUUID();
    const vm: Microvm = {
      id: `microvm-${uuid}`,
      uuid,
      imageArn: img.arn,
      imageName: img.name,
      imageVersion: ver.version,
      memoryMiB,
      startedAt: t,
      executionRoleArn: orNull(input.executionRoleArn),
      idlePolicy: input.idlePolicy
        ? {
          autoResumeEnabled: input.idlePolicy.autoResumeEnabled,
          maxIdleDurationSeconds: input.idlePolicy.maxIdleDurationSeconds,
          suspendedDurationSeconds: input.idlePolicy.suspendedDurationSeconds,
        }
        : null,
      logging: orNull(clone(input.logging)),
      runHookPayload: orNull(input.runHookPayload),
      maximumDurationInSeconds: input.maximumDurationInSeconds ?? MAX_DURATION_SECONDS,
      ingress,
      egress,
      tl: new Timeline<VmState>({ state: 'PENDING', at: t }),
    };
    vm.tl.push({ state: 'RUNNING', at: t + this.delays.vmStart });
    this.planRunning(vm, t + this.delays.vmStart);
    this.applyCap(vm);
    this.microvms.set(vm.id, vm);
    this.onLaunch?.(vm);
    return this.remember(ctx, { status: 200, body: this.microvmView(vm, t) }, 200);
  }

  getMicrovm(input: any): Result {
    return { body: this.microvmView(this.requireMicrovm(input.microvmIdentifier, true)) };
  }

  listMicrovms(input: any): Result {
    const t = this.now();
    let vms = [...this.microvms.values()].sort((a, b) => b.startedAt - a.startedAt);
    if (input.imageIdentifier) {
      const img = this.findImage(input.imageIdentifier);
      const arn = img?.arn ?? input.imageIdentifier;
      vms = vms.filter((v) => v.imageArn === arn || v.imageName === input.imageIdentifier);
    }
    if (input.imageVersion) vms = vms.filter((v) => v.imageVersion === input.imageVersion);
    const { page, next } = paginate(vms, input.maxResults, input.nextToken, 50, mvErr.validation);
    return {
      body: {
        items: page.map((vm) => ({
          imageArn: vm.imageArn,
          imageVersion: vm.imageVersion,
          microvmId: vm.id,
          startedAt: sec(vm.startedAt),
          state: this.vmState(vm, t),
        })),
        nextToken: next,
      },
    };
  }

  suspendMicrovm(input: any): Result {
    const t = this.now();
    const vm = this.requireMicrovm(input.microvmIdentifier);
    const st = this.vmState(vm, t);
    if (st === 'TERMINATED' || st === 'TERMINATING') throw this.terminatedError(vm);
    if (st !== 'RUNNING') throw mvErr.conflict(`The MicroVM ${vm.id} is in state ${st}; only a RUNNING MicroVM can be suspended.`, vm.id, 'Microvm');
    vm.tl.truncate(t).push({ state: 'SUSPENDING', at: t });
    this.planSuspended(vm, t + this.delays.vmSuspend);
    this.applyCap(vm);
    return { body: {} };
  }

  resumeMicrovm(input: any): Result {
    const t = this.now();
    const vm = this.requireMicrovm(input.microvmIdentifier);
    const st = this.vmState(vm, t);
    if (st === 'TERMINATED' || st === 'TERMINATING') throw this.terminatedError(vm);
    if (st !== 'SUSPENDED') throw mvErr.conflict(`The MicroVM ${vm.id} is in state ${st}; only a SUSPENDED MicroVM can be resumed.`, vm.id, 'Microvm');
    this.resumeAt(vm, t);
    return { body: {} };
  }

  private resumeAt(vm: Microvm, t: number): void {
    // Recorded: resume goes straight SUSPENDED → RUNNING (the /resume hook runs while still SUSPENDED).
    vm.tl.truncate(t).push({ state: 'RUNNING', at: t + this.delays.vmResume });
    this.planRunning(vm, t + this.delays.vmResume);
    this.applyCap(vm);
  }

  terminateMicrovm(input: any): Result {
    const t = this.now();
    const vm = this.requireMicrovm(input.microvmIdentifier);
    const st = this.vmState(vm, t);
    if (st === 'TERMINATED' || st === 'TERMINATING') return { body: {} }; // idempotent (recorded)
    vm.tl.truncate(t).push({ state: 'TERMINATING', at: t, reason: null }).push({ state: 'TERMINATED', at: t + this.delays.vmTerminate, reason: 'Success.' });
    return { body: {} };
  }

  /**
   * The MicroVM endpoint's checks for one inbound request, as recorded (recorded-facts.md, "The MicroVM
   * endpoint"): no token or one that cannot be parsed → 403 "Request missing authentication"; a token for
   * another MicroVM, a forged or expired one, or a host that names no MicroVM → 403 "Token authentication
   * failed"; `allowedPorts` is not enforced here (it is checked when the token is issued); TERMINATED (or
   * TERMINATING, PENDING) or SUSPENDED without auto-resume → 502 with an empty body. A RUNNING MicroVM's idle
   * timer restarts; a SUSPENDED (or SUSPENDING) one with auto-resume wakes at once (GetMicrovm reads RUNNING
   * right after). `host` is the endpoint host name (`<uuid>.lambda-microvm.<region>.on.aws`), a MicroVM id or ARN.
   */
  endpointAccess(host: string, token: string | undefined): EndpointAccess {
    const t = this.now();
    if (!token) return { status: 403, body: 'Request missing authentication' };
    const claims = this.decodeToken(token);
    if (claims === undefined) return { status: 403, body: 'Request missing authentication' };
    const vm = this.findMicrovm(host) ?? [...this.microvms.values()].find((v) => this.endpointOf(v) === host.toLowerCase());
    if (!vm || claims === null || claims.mvm !== vm.id || claims.exp * 1000 < t) return { status: 403, body: 'Token authentication failed' };
    const st = this.vmState(vm, t);
    if (st === 'RUNNING') {
      vm.tl.truncate(t);
      this.planRunning(vm, t);
      this.applyCap(vm);
      return { status: 200, body: '', state: st, vm };
    }
    if ((st === 'SUSPENDED' || st === 'SUSPENDING') && vm.idlePolicy?.autoResumeEnabled) {
      vm.tl.truncate(t).push({ state: 'RUNNING', at: t });
      this.planRunning(vm, t);
      this.applyCap(vm);
      return { status: 200, body: '', state: 'RUNNING', vm };
    }
    return { status: 502, body: '', state: st };
  }

  /** The admin traffic route's view of {@link endpointAccess} (kept for scripts written against it). */
  traffic(identifier: string, token?: string): { status: number; body: string; state?: string } {
    const { status, body, state } = this.endpointAccess(identifier, token);
    return state === undefined ? { status, body } : { status, body, state };
  }

  // ----- auth tokens

  private tokenTag(signed: string): Buffer {
    return createHmac('sha256', this.tokenKey).update(signed).digest().subarray(0, 16);
  }

  private makeToken(vm: Microvm, minutes: number, ports: any[] | 'shell'): string {
    const header = b64url(JSON.stringify({ kid: randomUUID(), alg: 'dir', enc: 'A256GCM' }));
    const all = ports === 'shell' || ports.some((p) => p.allPorts !== undefined);
    const ranges = ports === 'shell' ? [[8022, 8022]] : ports.filter((p) => p.allPorts === undefined).map((p) => (p.port !== undefined ? [p.port, p.port] : [p.range.startPort, p.range.endPort]));
    const claims = { mvm: vm.id, exp: Math.floor(this.now() / 1000) + minutes * 60, all: ports === 'shell' ? false : all, ports: ranges, shell: ports === 'shell' };
    // Shaped like a JWE compact serialization (header..iv.payload.tag); the payload is NOT encrypted (it is an
    // emulator), the tag is an HMAC under a key of this emulator instance.
    const signed = `${header}..${b64url(randomBytes(12))}.${b64url(JSON.stringify(claims))}`;
    return `${signed}.${b64url(this.tokenTag(signed))}`;
  }

  /** The token's claims; `undefined` when it cannot be parsed, `null` when it parses but was not issued here. */
  decodeToken(token: string): TokenClaims | null | undefined {
    const parts = token.split('.');
    if (parts.length !== 5) return undefined;
    let claims: TokenClaims;
    try {
      claims = JSON.parse(Buffer.from(parts[3], 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof claims !== 'object' || claims === null || typeof claims.mvm !== 'string') return undefined;
    const tag = Buffer.from(parts[4], 'base64url');
    const expected = this.tokenTag(parts.slice(0, 4).join('.'));
    return tag.length === expected.length && timingSafeEqual(tag, expected) ? claims : null;
  }

  private tokenTarget(identifier: string, minutes: number): Microvm {
    const vm = this.requireMicrovm(identifier);
    if (minutes > 60) {
      throw mvErr.validation(`Value '${minutes}' at 'expirationInMinutes' failed to satisfy constraint: Member must have value less than or equal to 60`);
    }
    const st = this.vmState(vm);
    if (st === 'TERMINATED' || st === 'TERMINATING') throw this.terminatedError(vm);
    if (st !== 'RUNNING' && st !== 'SUSPENDED') {
      throw mvErr.conflict(`The MicroVM ${vm.id} is in state ${st}; auth tokens can only be created for RUNNING or SUSPENDED MicroVMs.`, vm.id, 'Microvm');
    }
    return vm;
  }

  createMicrovmAuthToken(input: any): Result {
    const vm = this.tokenTarget(input.microvmIdentifier, input.expirationInMinutes);
    return { body: { authToken: { 'X-aws-proxy-auth': this.makeToken(vm, input.expirationInMinutes, input.allowedPorts) } } };
  }

  createMicrovmShellAuthToken(input: any): Result {
    const vm = this.tokenTarget(input.microvmIdentifier, input.expirationInMinutes);
    if (!vm.ingress.includes(this.managedConnectorArn('SHELL_INGRESS'))) {
      // Recorded message (tokens/shell-auth-token-without-ingress).
      throw mvErr.validation('Shell access requires SHELL_INGRESS network connector to be configured on the MicroVM.');
    }
    return { body: { authToken: { 'X-aws-proxy-auth': this.makeToken(vm, input.expirationInMinutes, 'shell') } } };
  }

  // ================================================================================================
  // Tags (Lambda routes, both resource kinds)

  private tagTarget(resource: string): { tags: Record<string, string> } {
    const m = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):(microvm-image|network-connector):([a-zA-Z0-9-_]+)$/.exec(resource);
    if (!m) throw mvErr.invalidParameter(`Resource ${resource} is not a taggable MicroVM image or network connector ARN.`);
    if (m[1] !== this.region || m[2] !== this.account) throw mvErr.notFound(`Resource not found: ${resource}`, resource, null);
    if (m[3] === 'microvm-image') {
      const img = this.images.get(m[4]);
      if (!img) throw mvErr.notFound(`MicroVMImage not found for MicroVMImageID: ${resource}`, resource, 'MicrovmImage');
      return img;
    }
    const c = this.connectors.get(m[4]);
    if (!c) throw mvErr.notFound(`Network connector not found for: ${resource}`, resource, 'NetworkConnector');
    return c;
  }

  listTags(input: any): Result {
    return { body: { Tags: { ...this.tagTarget(input.Resource).tags } } };
  }

  tagResource(input: any): Result {
    const target = this.tagTarget(input.Resource);
    const merged = { ...target.tags, ...input.Tags };
    if (Object.keys(merged).length > 50) throw mvErr.invalidParameter('A resource can have at most 50 tags.');
    for (const k of Object.keys(input.Tags)) if (k.toLowerCase().startsWith('aws:')) throw mvErr.invalidParameter(`Tag keys starting with 'aws:' are reserved: ${k}`);
    target.tags = merged;
    if ('updatedAt' in target) (target as Image).updatedAt = Math.max((target as Image).updatedAt, this.now());
    return { status: 204 };
  }

  untagResource(input: any): Result {
    const target = this.tagTarget(input.Resource);
    for (const k of input.TagKeys as string[]) delete target.tags[k];
    return { status: 204 };
  }

  // ================================================================================================
  // Lambda Core network connectors

  connectorState(c: Connector, t = this.now()): string {
    if (c.deleteTl) return 'DELETING';
    return c.tl.state(t);
  }

  /** Applies a finished successful update (new immutable version). */
  private settleConnector(c: Connector, t = this.now()): void {
    const u = c.update;
    if (!u || u.applied || u.noChange) return;
    const seg = u.tl.at(t);
    if (seg.state === 'Successful') {
      const prev = c.versions[c.versions.length - 1];
      c.versions.push({ version: prev.version + 1, configuration: clone(u.configuration), operatorRole: u.operatorRole, lastModified: seg.at });
      u.applied = true;
    } else if (seg.state === 'Failed') {
      u.applied = true;
    }
  }

  private findConnector(identifier: string): { c?: Connector; version?: number; arn: string } {
    const m = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}|aws):network-connector:([a-zA-Z0-9-_]+)(?::(\d+))?$/.exec(identifier);
    if (m) {
      const arn = `arn:aws:lambda:${m[1]}:${m[2]}:network-connector:${m[3]}`;
      if (m[1] !== this.region || m[2] !== this.account) return { arn: identifier };
      return { c: this.connectors.get(m[3]), version: m[4] !== undefined ? Number(m[4]) : undefined, arn };
    }
    const byId = this.connectors.get(identifier);
    if (byId) return { c: byId, arn: byId.arn };
    for (const c of this.connectors.values()) if (c.name === identifier) return { c, arn: c.arn };
    return { arn: this.connectorArn(identifier) };
  }

  private requireConnector(identifier: string, forGet = false): { c: Connector; version?: number } {
    const r = this.findConnector(identifier);
    if (!r.c || (forGet && this.hiddenByConsistency('connector', r.c.createdAt))) {
      // Recorded message (errors-not-found/get-connector-missing) names the ARN form of the identifier.
      throw coreErr.notFound(`Network connector not found for: ${r.arn}`);
    }
    this.settleConnector(r.c);
    return { c: r.c, version: r.version };
  }

  private connectorBase(c: Connector, v: ConnectorVersion): Record<string, unknown> {
    const b: Record<string, unknown> = { Arn: c.arn, Configuration: clone(v.configuration), Id: c.id, Name: c.name };
    if (v.operatorRole !== null) b.OperatorRole = v.operatorRole;
    return b;
  }

  connectorView(c: Connector, t = this.now(), pinned?: number): Record<string, unknown> {
    this.settleConnector(c, t);
    const latest = c.versions[c.versions.length - 1];
    const v = pinned !== undefined ? c.versions.find((x) => x.version === pinned)! : latest;
    const seg = c.tl.at(t);
    const state = this.connectorState(c, t);
    const body = this.connectorBase(c, v);
    body.State = state;
    if (seg.state === 'ACTIVE') body.StateReason = seg.reason ?? 'Initial creation';
    if (seg.state === 'FAILED') {
      body.StateReason = seg.reason;
      body.StateReasonCode = seg.code;
    }
    if (c.update) {
      const us = c.update.tl.at(t);
      body.LastUpdateStatus = us.state;
      if (us.reason) body.LastUpdateStatusReason = us.reason;
      if (us.code) body.LastUpdateStatusReasonCode = us.code;
    }
    body.LastModified = iso(Math.max(v.lastModified, state === 'PENDING' ? c.createdAt : seg.at));
    // Recorded (connectors/get-until-active): no Version / LatestVersion / LatestVersionArn members.
    return body;
  }

  createNetworkConnector(input: any): Result {
    const t = this.now();
    requireConnectorMembers(input, true);
    const ctx = this.idem('CreateNetworkConnector', input.ClientToken, input, 'ClientToken', 'core');
    if (ctx?.replay) return ctx.replay;
    const name: string = input.Name;
    if (name.startsWith('arn:')) throw coreErr.invalidParameter(`Invalid network connector name: ${name}. Specify a name, not an ARN, when creating a network connector.`);
    for (const c of this.connectors.values()) {
      if (c.name === name) throw coreErr.conflict(`Network connector already exists with name: ${name}`);
    }
    if (this.connectors.size >= this.settings.connectorQuota) {
      throw coreErr.limit(`The account has reached the maximum number of network connectors (${this.settings.connectorQuota}). Request a limit increase through Service Quotas.`);
    }
    const vpc = input.Configuration?.VpcEgressConfiguration;
    if (vpc && (!vpc.SubnetIds || vpc.SubnetIds.length === 0)) throw coreErr.invalidParameter('VpcEgressConfiguration.SubnetIds must contain at least one subnet.');
    const id = `nc-${randomUUID()}`; // recorded: nc-<uuid>
    const failure = this.takeConnectorFailure('create', [name]);
    const configuration = normalizeConnectorConfig(input.Configuration);
    const c: Connector = {
      id,
      name,
      arn: this.connectorArn(id),
      createdAt: t,
      tags: { ...(input.Tags ?? {}) },
      versions: [{ version: 1, configuration, operatorRole: orNull(input.OperatorRole), lastModified: t }],
      tl: new Timeline({ state: 'PENDING', at: t }),
    };
    const doneAt = t + this.delays.connectorCreate;
    c.tl.push(failure ? { state: 'FAILED', at: doneAt, reason: failure.reason, code: failure.code } : { state: 'ACTIVE', at: doneAt, reason: 'Initial creation' });
    this.connectors.set(id, c);
    const body = { ...this.connectorBase(c, c.versions[0]), State: 'PENDING' };
    return this.remember(ctx, { status: 202, body }, 202);
  }

  getNetworkConnector(input: any): Result {
    const { c, version } = this.requireConnector(input.Identifier, true);
    if (version !== undefined && !c.versions.some((v) => v.version === version)) {
      throw coreErr.notFound(`Network connector not found for: ${input.Identifier}`);
    }
    return { body: this.connectorView(c, this.now(), version) };
  }

  listNetworkConnectors(input: any): Result {
    const t = this.now();
    let cs = [...this.connectors.values()].sort((a, b) => a.createdAt - b.createdAt);
    if (input.State) cs = cs.filter((c) => this.connectorState(c, t) === input.State);
    const max = Math.min(input.MaxItems ?? 50, 50);
    const { page, next } = paginate(cs, max, input.Marker, 50, coreErr.invalidParameter);
    const body: Record<string, unknown> = {
      NetworkConnectors: page.map((c) => {
        const v = this.connectorView(c, t);
        return { Arn: c.arn, Id: c.id, LastModified: v.LastModified, Name: c.name, State: v.State, Type: 'VPC_EGRESS' };
      }),
    };
    if (next) body.NextMarker = next;
    return { body };
  }

  updateNetworkConnector(input: any): Result {
    const t = this.now();
    requireConnectorMembers(input, false);
    const ctx = this.idem('UpdateNetworkConnector', input.ClientToken, input, 'ClientToken', 'core');
    if (ctx?.replay) return ctx.replay;
    const { c } = this.requireConnector(input.Identifier);
    const state = this.connectorState(c, t);
    if (state !== 'ACTIVE') throw coreErr.conflict(`Network connector ${c.id} is in state ${state}; it must be ACTIVE to be updated.`);
    if (c.update && c.update.tl.state(t) === 'InProgress') throw coreErr.conflict(`An update of network connector ${c.id} is already in progress.`);
    const latest = c.versions[c.versions.length - 1];
    const configuration = input.Configuration ? normalizeConnectorConfig(input.Configuration) : clone(latest.configuration);
    const operatorRole = input.OperatorRole !== undefined ? input.OperatorRole : latest.operatorRole;
    const noChange = canonical(configuration) === canonical(latest.configuration) && operatorRole === latest.operatorRole;
    if (noChange) {
      // Recorded (connectors/update): an update without changes completes at once.
      c.update = { tl: new Timeline({ state: 'Successful', at: t, reason: 'No configuration changes detected' }), configuration, operatorRole, applied: true, noChange };
    } else {
      const failure = this.takeConnectorFailure('update', [c.name, c.id]);
      const tl = new Timeline<'InProgress' | 'Successful' | 'Failed'>({ state: 'InProgress', at: t });
      const doneAt = t + this.delays.connectorUpdate;
      tl.push(failure ? { state: 'Failed', at: doneAt, reason: failure.reason, code: failure.code } : { state: 'Successful', at: doneAt });
      c.update = { tl, configuration, operatorRole, applied: false, noChange };
    }
    const us = c.update.tl.at(t);
    const body: Record<string, unknown> = { Arn: c.arn, Configuration: clone(configuration), Id: c.id, Name: c.name };
    if (operatorRole !== null) body.OperatorRole = operatorRole;
    body.State = 'ACTIVE';
    body.LastUpdateStatus = us.state;
    if (us.reason) body.LastUpdateStatusReason = us.reason;
    body.LastModified = iso(t);
    return this.remember(ctx, { status: 202, body }, 202);
  }

  deleteNetworkConnector(input: any): Result {
    const t = this.now();
    const r = this.findConnector(input.Identifier);
    if (!r.c) {
      const tomb = [...this.deletedConnectors.values()].find((d) => d.id === input.Identifier || d.name === input.Identifier || d.arn === r.arn);
      if (tomb) return { status: 202, body: { Arn: tomb.arn, Id: tomb.id, Name: tomb.name } }; // idempotent per model doc
      throw coreErr.notFound(`Network connector not found for: ${r.arn}`);
    }
    const c = r.c;
    this.settleConnector(c, t);
    const latest = c.versions[c.versions.length - 1];
    if (!c.deleteTl) {
      const st = this.connectorState(c, t);
      if (st !== 'ACTIVE' && st !== 'FAILED') throw coreErr.conflict(`Network connector ${c.id} is in state ${st}; only ACTIVE or FAILED connectors can be deleted.`);
      c.deleteTl = new Timeline<GoneState>({ state: 'DELETING', at: t }).push({ state: 'GONE', at: t + this.delays.connectorDelete });
    }
    return { status: 202, body: { ...this.connectorBase(c, latest), State: 'DELETING' } };
  }

  // ================================================================================================
  // Admin: holds and snapshot

  /** Timelines of a resource named by id, ARN or name (image name/ARN, MicroVM id, connector id/name/ARN). */
  private timelinesOf(ref: string): Timeline<any>[] | undefined {
    const img = this.findImage(ref);
    if (img) {
      const tls: Timeline<any>[] = [];
      const v = img.versions.get(img.lastOp.version);
      if (v) tls.push(v.tl);
      if (img.deleteTl) tls.push(img.deleteTl);
      for (const ver of img.versions.values()) if (ver.deleteTl) tls.push(ver.deleteTl);
      return tls;
    }
    const vm = this.findMicrovm(ref);
    if (vm) return [vm.tl];
    const { c } = this.findConnector(ref);
    if (c) return [c.tl, ...(c.update ? [c.update.tl] : []), ...(c.deleteTl ? [c.deleteTl] : [])];
    return undefined;
  }

  hold(ref: string): boolean {
    const tls = this.timelinesOf(ref);
    if (!tls) return false;
    const t = this.now();
    tls.forEach((tl) => tl.hold(t));
    return true;
  }

  release(ref: string): boolean {
    const tls = this.timelinesOf(ref);
    if (!tls) return false;
    const t = this.now();
    tls.forEach((tl) => tl.release(t));
    return true;
  }

  snapshot(): Record<string, unknown> {
    const t = this.now();
    this.sweep(t);
    return {
      now: iso(t),
      region: this.region,
      account: this.account,
      images: [...this.images.values()].map((img) => ({
        ...this.imageView(img, t),
        versions: this.liveVersions(img).map((v) => ({
          ...this.versionView(img, v, t),
          builds: v.builds.map((b) => this.buildView(img, v, b, t, true)),
        })),
      })),
      microvms: [...this.microvms.values()].map((vm) => ({ ...this.microvmView(vm, t), memoryMiB: vm.memoryMiB })),
      connectors: [...this.connectors.values()].map((c) => ({ ...this.connectorView(c, t), Tags: { ...c.tags } })),
      tags: Object.fromEntries([
        ...[...this.images.values()].map((i) => [i.arn, { ...i.tags }]),
        ...[...this.connectors.values()].map((c) => [c.arn, { ...c.tags }]),
      ]),
      memoryInUseMiB: this.memoryInUse(t),
      memoryQuotaMiB: this.settings.memoryQuotaMiB,
    };
  }
}

/**
 * Recorded (recorded-facts.md, Network connectors): ClientToken, OperatorRole, NetworkProtocol and
 * AssociatedComputeResourceTypes are enforced although the model marks them optional, with 400
 * InvalidParameterValueException and a prose message. Runs after the model's own checks.
 */
function requireConnectorMembers(input: any, create: boolean): void {
  if (typeof input.ClientToken !== 'string' || input.ClientToken === '') throw coreErr.invalidParameter('ClientToken is a required field');
  if (typeof input.OperatorRole !== 'string' || input.OperatorRole === '') throw coreErr.invalidParameter('NetworkConnectorOperatorRole is required for VPC_EGRESS connector type');
  const vpc = input.Configuration?.VpcEgressConfiguration;
  if (!vpc && !create) return;
  if (!vpc?.NetworkProtocol) throw coreErr.invalidParameter('NetworkProtocol is required for VPC_EGRESS connector type');
  if (!vpc.AssociatedComputeResourceTypes?.length) throw coreErr.invalidParameter('AssociatedComputeResourceTypes is required for VPC_EGRESS connector type');
}

function normalizeConnectorConfig(cfg: any): any {
  const v = cfg?.VpcEgressConfiguration ?? {};
  const out: Record<string, unknown> = {
    AssociatedComputeResourceTypes: v.AssociatedComputeResourceTypes ?? ['MicroVm'],
    NetworkProtocol: v.NetworkProtocol ?? 'IPv4',
    SecurityGroupIds: v.SecurityGroupIds ?? [],
    SubnetIds: v.SubnetIds ?? [],
  };
  return { VpcEgressConfiguration: out };
}

export type { Segment };
