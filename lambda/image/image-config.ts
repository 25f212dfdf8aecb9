import type {
  CreateMicrovmImageRequest,
  GetMicrovmImageVersionOutput,
  Hooks,
  Logging,
} from '@aws-sdk/client-lambda-microvms';
import {
  MAX_HANDLER_WAIT_SECONDS, MEMORY_TIERS_MIB, MIN_BUILD_TIMEOUT_SECONDS, SERVICE_DEFAULT_MEMORY_MIB,
} from '../../src/private/wire';
import type { HookWire, HooksWire, ImageProps, ImageVersionRetentionWire, LoggingWire } from '../../src/private/wire';
import { canonical, optionalInt, requireInt, requireString, toBool, toInt, WireMismatchError } from '../shared/props';

/** The image resource's properties on the wire. */
export type ImageWire = ImageProps & ImageVersionRetentionWire;

/**
 * What each image property is for. `build`: it goes into the image configuration, so a change
 * builds a new version and the no-rebuild comparison covers it. Every wire property must be listed:
 * a new one that is not classified here fails to compile.
 */
const PROPERTY_ROLES: Record<keyof ImageWire, 'build' | 'identity' | 'tags' | 'handler'> = {
  Name: 'identity',
  Description: 'build',
  CodeUri: 'build',
  CodeObjectVersion: 'build',
  BaseImageArn: 'build',
  BaseImageVersion: 'build',
  BuildRoleArn: 'build',
  Logging: 'build',
  MemoryMiB: 'build',
  Architecture: 'build',
  OsCapabilities: 'build',
  Environment: 'build',
  // Merged into Environment before the handler sees the event (lambda/shared/staged.ts); a new
  // object key means new values.
  StagedProperties: 'build',
  Hooks: 'build',
  EgressConnectors: 'build',
  Tags: 'tags',
  BuildTimeoutSeconds: 'handler',
  TerminateMicroVmsOnDelete: 'handler',
  KeepVersions: 'handler',
  AdoptExisting: 'handler',
};

/** True when the two property sets ask for different builds (tags and handler settings aside). */
export function buildChanged(a: ImageWire, b: ImageWire): boolean {
  const pick = (p: ImageWire) => Object.fromEntries((Object.keys(PROPERTY_ROLES) as Array<keyof ImageWire>)
    .filter((k) => PROPERTY_ROLES[k] === 'build').map((k) => [k, p[k]]));
  return canonical(pick(a)) !== canonical(pick(b));
}

/** BuildTimeoutSeconds, checked against the limits the construct applies. */
export function buildTimeoutSeconds(p: ImageWire): number {
  return requireInt(p.BuildTimeoutSeconds, 'BuildTimeoutSeconds', MIN_BUILD_TIMEOUT_SECONDS, MAX_HANDLER_WAIT_SECONDS);
}

/** KeepVersions: 1 to 50, or absent (keep every version). */
export function keepVersions(p: ImageWire): number | undefined {
  return optionalInt(p.KeepVersions, 'KeepVersions', 1, 50);
}

/** The image configuration as CreateMicrovmImage/UpdateMicrovmImage take it (name, tags and token aside). */
export type ImageConfig = Omit<CreateMicrovmImageRequest, 'name' | 'tags' | 'clientToken'>;

/** The image configuration from the wire; a missing or malformed required property throws WireMismatchError. */
export function imageConfig(p: ImageProps): ImageConfig {
  const memory = optionalInt(p.MemoryMiB, 'MemoryMiB', 1);
  if (memory !== undefined && !MEMORY_TIERS_MIB.includes(memory)) throw new WireMismatchError('MemoryMiB', p.MemoryMiB, `one of ${MEMORY_TIERS_MIB.join(', ')}`);
  return {
    description: p.Description || undefined,
    codeArtifact: { uri: requireString(p.CodeUri, 'CodeUri') },
    baseImageArn: requireString(p.BaseImageArn, 'BaseImageArn'),
    // Only what the user set: the service rejects its own resolved version echoed back on update.
    baseImageVersion: p.BaseImageVersion || undefined,
    buildRoleArn: requireString(p.BuildRoleArn, 'BuildRoleArn'),
    logging: logging(p.Logging),
    cpuConfigurations: [{ architecture: requireString(p.Architecture, 'Architecture') as 'ARM_64' }],
    resources: memory !== undefined ? [{ minimumMemoryInMiB: memory }] : undefined,
    additionalOsCapabilities: p.OsCapabilities?.length ? (p.OsCapabilities as Array<'ALL'>) : undefined,
    environmentVariables: p.Environment && Object.keys(p.Environment).length ? p.Environment : undefined,
    hooks: p.Hooks ? hooks(p.Hooks) : undefined,
    egressNetworkConnectors: p.EgressConnectors?.length ? p.EgressConnectors : undefined,
  };
}

function logging(l: LoggingWire | undefined): Logging | undefined {
  if (!l) return undefined;
  if (toBool(l.Disabled)) return { disabled: {} };
  return { cloudWatch: { logGroup: l.LogGroup || undefined, logStream: l.LogStream || undefined } };
}

function hooks(h: HooksWire): Hooks {
  const state = (hook?: HookWire) => (hook ? 'ENABLED' as const : undefined);
  const timeout = (hook: HookWire | undefined, name: string) => (hook ? toInt(hook.TimeoutSeconds, name) : undefined);
  const runtime = {
    run: state(h.Run),
    runTimeoutInSeconds: timeout(h.Run, 'Hooks.Run'),
    resume: state(h.Resume),
    resumeTimeoutInSeconds: timeout(h.Resume, 'Hooks.Resume'),
    suspend: state(h.Suspend),
    suspendTimeoutInSeconds: timeout(h.Suspend, 'Hooks.Suspend'),
    terminate: state(h.Terminate),
    terminateTimeoutInSeconds: timeout(h.Terminate, 'Hooks.Terminate'),
  };
  const build = {
    ready: state(h.Ready),
    readyTimeoutInSeconds: timeout(h.Ready, 'Hooks.Ready'),
    validate: state(h.Validate),
    validateTimeoutInSeconds: timeout(h.Validate, 'Hooks.Validate'),
  };
  const any = (o: Record<string, unknown>) => Object.values(o).some((v) => v !== undefined);
  return {
    port: toInt(h.Port, 'Hooks.Port'),
    microvmHooks: any(runtime) ? runtime : undefined,
    microvmImageHooks: any(build) ? build : undefined,
  };
}

/**
 * True when `version` was built from exactly `config`: then an Update to `config` (typically the
 * rollback of a failed update) needs no rebuild. Compares only what we send; a base image version
 * the service resolved is ignored unless the user pinned one.
 */
export function sameConfig(config: ImageConfig, version: GetMicrovmImageVersionOutput): boolean {
  // Every member of ImageConfig must be read back from the version: a new one fails to compile here.
  const fromVersion: { [K in keyof Required<ImageConfig>]: ImageConfig[K] } = {
    description: version.description,
    codeArtifact: version.codeArtifact,
    baseImageArn: version.baseImageArn,
    baseImageVersion: config.baseImageVersion === undefined ? undefined : version.baseImageVersion,
    buildRoleArn: version.buildRoleArn,
    logging: version.logging,
    cpuConfigurations: version.cpuConfigurations,
    resources: version.resources,
    additionalOsCapabilities: version.additionalOsCapabilities,
    environmentVariables: version.environmentVariables,
    hooks: version.hooks,
    egressNetworkConnectors: version.egressNetworkConnectors,
  };
  return canonical(normalize(config)) === canonical(normalize(fromVersion));
}

/** Folds the service's echo of defaults (empty lists and maps, disabled hooks) into "unset". */
function normalize(c: ImageConfig): Record<string, unknown> {
  const emptyToUndefined = (v: unknown) => {
    if (Array.isArray(v) && v.length === 0) return undefined;
    if (v && typeof v === 'object' && Object.keys(v).length === 0) return undefined;
    return v;
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) out[k] = k === 'hooks' ? normalizeHooks(v as Hooks | undefined) : emptyToUndefined(v);
  if (out.description === '') out.description = undefined;
  // Without egress connectors the service records its default, the AWS-managed internet egress.
  const egress = out.egressNetworkConnectors as string[] | undefined;
  if (egress?.length === 1 && egress[0].endsWith(':aws-network-connector:INTERNET_EGRESS')) out.egressNetworkConnectors = undefined;
  // Without resources the service records its default size, 2 GiB.
  const resources = out.resources as Array<{ minimumMemoryInMiB?: number }> | undefined;
  if (resources?.length === 1 && resources[0].minimumMemoryInMiB === SERVICE_DEFAULT_MEMORY_MIB) out.resources = undefined;
  if (c.logging && 'cloudWatch' in c.logging && c.logging.cloudWatch) out.logging = { cloudWatch: { ...c.logging.cloudWatch } };
  return out;
}

function normalizeHooks(h: Hooks | undefined): unknown {
  if (!h) return undefined;
  const enabled = (group: Record<string, unknown> | undefined) => {
    if (!group) return undefined;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(group)) {
      if (k.endsWith('TimeoutInSeconds')) continue;
      if (v === 'ENABLED') out[k] = group[`${k}TimeoutInSeconds`];
    }
    return Object.keys(out).length ? out : undefined;
  };
  const runtime = enabled(h.microvmHooks as Record<string, unknown> | undefined);
  const build = enabled(h.microvmImageHooks as Record<string, unknown> | undefined);
  if (!runtime && !build) return undefined;
  return { port: h.port, runtime, build };
}
