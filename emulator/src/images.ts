/**
 * MicroVM images, their versions and builds, and the managed base images: CreateMicrovmImage,
 * UpdateMicrovmImage, Get/List/DeleteMicrovmImage, the version and build operations, ListManagedMicrovmImages
 * and ListManagedMicrovmImageVersions. Answers as recorded (recorded-facts.md, "Images and versions").
 */
import { randomUUID } from 'node:crypto';
import type { CreateMicrovmImageCommandInput, DeleteMicrovmImageCommandInput, DeleteMicrovmImageVersionCommandInput, GetMicrovmImageBuildCommandInput, GetMicrovmImageCommandInput, GetMicrovmImageVersionCommandInput, ListManagedMicrovmImageVersionsCommandInput, ListManagedMicrovmImagesCommandInput, ListMicrovmImageBuildsCommandInput, ListMicrovmImageVersionsCommandInput, ListMicrovmImagesCommandInput, UpdateMicrovmImageCommandInput, UpdateMicrovmImageVersionCommandInput, Resources } from '@aws-sdk/client-lambda-microvms';
import { mvErr } from './errors';
import { hiddenByConsistency, takeBuildFailure } from './faults';
import { Build, CHIPSET_GENERATIONS, DEFAULT_MEMORY_MIB, GoneState, Image, ImageConfig, ImageVersion, MANAGED_CREATED_AT, MANAGED_IMAGE_NAME, MANAGED_IMAGE_VERSIONS, SNAPSHOT_SIZES, VersionState } from './records';
import type { MicrovmsService } from './service';
import { Timeline } from './timeline';
import type { Checked } from './util';
import { Result, clone, orNull, paginate, sec, yymmddhh } from './util';

export class ImagesApi {
  constructor(private readonly svc: MicrovmsService) {}

  imageOpState(img: Image, t: number, ver?: ImageVersion): string {
    const v = ver ?? img.versions.get(img.lastOp.version);
    if (!v) return img.frozenOpState ?? (img.lastOp.kind === 'CREATE' ? 'CREATED' : 'UPDATED');
    const s = v.tl.state(t);
    const create = img.lastOp.kind === 'CREATE';
    if (s === 'PENDING' || s === 'IN_PROGRESS') return create ? 'CREATING' : 'UPDATING';
    if (s === 'SUCCESSFUL') return create ? 'CREATED' : 'UPDATED';
    return create ? 'CREATE_FAILED' : 'UPDATE_FAILED';
  }

  imageState(img: Image, t = this.svc.now()): string {
    if (img.deleteTl) return 'DELETING';
    // Recorded (images-lifecycle/image-until-settled): after DeleteMicrovmImageVersion the image is
    // polled back to UPDATED, and a DeleteMicrovmImage meanwhile is refused with "...: UPDATING".
    if ([...img.versions.values()].some((v) => v.deleteTl?.state(t) === 'DELETING')) return 'UPDATING';
    return this.imageOpState(img, t);
  }

  liveVersions(img: Image): ImageVersion[] {
    return [...img.versions.values()].sort((a, b) => a.major - b.major);
  }

  latestActive(img: Image, t = this.svc.now()): string | null {
    const vs = this.liveVersions(img).filter((v) => !v.deleteTl && v.status === 'ACTIVE' && v.tl.state(t) === 'SUCCESSFUL');
    return vs.length ? vs[vs.length - 1].version : null;
  }
  latestFailed(img: Image, t = this.svc.now()): string | null {
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
      if (m[1] !== this.svc.region || m[2] !== this.svc.account) return undefined;
      return this.svc.images.get(m[3]);
    }
    const byName = this.svc.images.get(identifier);
    if (byName) return byName;
    for (const img of this.svc.images.values()) if (img.id === identifier) return img;
    return undefined;
  }

  private requireImage(identifier: string, forGet = false): Image {
    const img = this.findImage(identifier);
    if (!img || (forGet && hiddenByConsistency(this.svc.faults, this.svc.now(), 'image', img.createdAt))) {
      throw mvErr.notFound(`MicroVMImage not found for MicroVMImageID: ${identifier}`);
    }
    return img;
  }

  private requireVersion(identifier: string, version: string): { img: Image; ver: ImageVersion } {
    const img = this.findImage(identifier);
    const ver = img?.versions.get(version);
    if (!img || !ver) {
      const arn = img?.arn ?? (identifier.startsWith('arn:') ? identifier : this.svc.imageArn(identifier));
      throw mvErr.notFound(`MicroVMImage not found for MicroVMImage: ${arn}, Version: ${version}`);
    }
    return { img, ver };
  }

  private resolveBaseVersion(input: Checked<CreateMicrovmImageCommandInput | UpdateMicrovmImageCommandInput, 'baseImageArn'>, previous?: Image): { resolved: string; userSpecified: boolean } {
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
    if (arn !== this.svc.managedImageArn()) {
      throw mvErr.notFound(`Base MicroVM image not found: ${arn}. Use ListManagedMicrovmImages to list the available base images.`);
    }
  }

  private buildConfig(input: Checked<CreateMicrovmImageCommandInput | UpdateMicrovmImageCommandInput, 'baseImageArn' | 'buildRoleArn' | 'codeArtifact'>, baseVersion: string): ImageConfig {
    return {
      baseImageArn: input.baseImageArn,
      baseImageVersion: baseVersion,
      buildRoleArn: input.buildRoleArn,
      description: orNull(input.description),
      codeArtifact: clone(input.codeArtifact),
      logging: orNull(clone(input.logging)),
      egressNetworkConnectors: input.egressNetworkConnectors?.length ? [...input.egressNetworkConnectors] : [this.svc.managedConnectorArn('INTERNET_EGRESS')],
      cpuConfigurations: orNull(clone(input.cpuConfigurations)),
      // The model requires minimumMemoryInMiB in each item: the server checked it.
      resources: input.resources?.length ? clone(input.resources as Checked<Resources, 'minimumMemoryInMiB'>[]) : [{ minimumMemoryInMiB: DEFAULT_MEMORY_MIB }],
      additionalOsCapabilities: orNull(clone(input.additionalOsCapabilities)),
      hooks: orNull(clone(input.hooks)),
      environmentVariables: orNull(clone(input.environmentVariables)),
    };
  }

  private newVersion(img: Image, config: ImageConfig, t: number): ImageVersion {
    const major = img.nextMajor++;
    const failure = takeBuildFailure(this.svc.faults, img.name);
    const d = this.svc.delays;
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

  imageView(img: Image, t = this.svc.now(), withTags = true): Record<string, unknown> {
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

  versionState(ver: ImageVersion, t = this.svc.now()): string {
    if (ver.deleteTl) return 'DELETING';
    return ver.tl.state(t);
  }

  versionView(img: Image, ver: ImageVersion, t = this.svc.now()): Record<string, unknown> {
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

  buildView(img: Image, ver: ImageVersion, b: Build, t = this.svc.now(), detail = false): Record<string, unknown> {
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

  createMicrovmImage(input: Checked<CreateMicrovmImageCommandInput, 'baseImageArn' | 'buildRoleArn' | 'codeArtifact' | 'name'>): Result {
    const t = this.svc.now();
    const ctx = this.svc.idem('CreateMicrovmImage', input.clientToken, input, 'clientToken', 'microvms');
    if (ctx?.replay) return ctx.replay;
    const existing = this.svc.images.get(input.name);
    if (existing) {
      if (existing.deleteTl) {
        // Recorded (m80 notes): the name stays reserved until the delete drains; a create in that window gets 400.
        throw mvErr.validation(`MicroVM image with name ${input.name} already exists.`);
      }
      throw mvErr.conflict(`MicroVM image with name ${input.name} already exists.`, existing.arn, 'MicrovmImage');
    }
    if (this.svc.images.size >= this.svc.settings.imageQuota) {
      throw mvErr.quota(`You have reached the maximum number of MicroVM images (${this.svc.settings.imageQuota}) for this account.`);
    }
    this.checkBaseImage(input.baseImageArn);
    if (input.egressNetworkConnectors) this.svc.connectorsApi.checkConnectors(input.egressNetworkConnectors, 'egress', 'egressNetworkConnectors');
    const base = this.resolveBaseVersion(input);
    const img: Image = {
      id: randomUUID(),
      name: input.name,
      arn: this.svc.imageArn(input.name),
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
    this.svc.images.set(img.name, img);
    return this.svc.remember(ctx, { status: 201, body: this.imageBody(img, ver, t, 'create') }, 201);
  }

  updateMicrovmImage(input: Checked<UpdateMicrovmImageCommandInput, 'baseImageArn' | 'buildRoleArn' | 'codeArtifact' | 'imageIdentifier'>): Result {
    const t = this.svc.now();
    const ctx = this.svc.idem('UpdateMicrovmImage', input.clientToken, input, 'clientToken', 'microvms');
    if (ctx?.replay) return ctx.replay;
    const img = this.requireImage(input.imageIdentifier);
    const st = this.imageState(img, t);
    if (st === 'DELETING') throw mvErr.conflict(`MicroVM image ${img.arn} is being deleted.`, img.arn, 'MicrovmImage');
    if (st === 'CREATING' || st === 'UPDATING') {
      throw mvErr.conflict(`MicroVM image ${img.arn} is in state ${st}; wait for the current build to finish before updating it.`, img.arn, 'MicrovmImage');
    }
    if (img.versions.size >= this.svc.settings.versionQuota) {
      throw mvErr.quota(`MicroVM image ${img.arn} has reached the maximum number of versions (${this.svc.settings.versionQuota}). Delete unused versions first.`, { resourceId: img.arn, resourceType: 'MicrovmImage' });
    }
    this.checkBaseImage(input.baseImageArn);
    if (input.egressNetworkConnectors) this.svc.connectorsApi.checkConnectors(input.egressNetworkConnectors, 'egress', 'egressNetworkConnectors');
    const base = this.resolveBaseVersion(input, img);
    const ver = this.newVersion(img, this.buildConfig(input, base.resolved), t);
    img.lastOp = { kind: 'UPDATE', version: ver.version };
    img.frozenOpState = undefined;
    img.baseVersionUserSpecified = base.userSpecified;
    img.updatedAt = t;
    return this.svc.remember(ctx, { status: 200, body: this.imageBody(img, ver, t, 'update') }, 200);
  }

  getMicrovmImage(input: Checked<GetMicrovmImageCommandInput, 'imageIdentifier'>): Result {
    const img = this.requireImage(input.imageIdentifier, true);
    return { body: this.imageView(img) };
  }

  listMicrovmImages(input: ListMicrovmImagesCommandInput): Result {
    const t = this.svc.now();
    let imgs = [...this.svc.images.values()].sort((a, b) => a.createdAt - b.createdAt);
    const filter = input.nameFilter;
    if (filter) imgs = imgs.filter((i) => i.name.includes(filter));
    const { page, next } = paginate(imgs, input.maxResults, input.nextToken, 50, mvErr.validation);
    return { body: { items: page.map((i) => this.imageView(i, t, false)), nextToken: next } };
  }

  deleteMicrovmImage(input: Checked<DeleteMicrovmImageCommandInput, 'imageIdentifier'>): Result {
    const t = this.svc.now();
    const img = this.requireImage(input.imageIdentifier);
    if (img.deleteTl) return { body: { imageIdentifier: input.imageIdentifier, state: 'DELETING' } };
    const st = this.imageState(img, t);
    // Recorded (recorded-facts.md, Images): a delete during a build, or while a version delete still
    // drains (the image reads UPDATING then), is refused with 400 naming the state after the colon.
    if (st === 'CREATING' || st === 'UPDATING') throw mvErr.validation(`Cannot delete MicroVM image in its current state: ${st}`);
    // Recorded: any MicroVM not yet TERMINATED (TERMINATING included) blocks the delete with this 400.
    const active = [...this.svc.microvms.values()].filter((vm) => vm.imageName === img.name && vm.imageArn === img.arn && this.svc.microvmsApi.vmState(vm, t) !== 'TERMINATED');
    if (active.length > 0) throw mvErr.validation('Cannot delete microvm image with running microvms.');
    img.deleteTl = new Timeline<GoneState>({ state: 'DELETING', at: t }).push({ state: 'GONE', at: t + this.svc.delays.imageDelete });
    return { body: { imageIdentifier: input.imageIdentifier, state: 'DELETING' } };
  }

  listMicrovmImageVersions(input: Checked<ListMicrovmImageVersionsCommandInput, 'imageIdentifier'>): Result {
    const t = this.svc.now();
    const img = this.requireImage(input.imageIdentifier);
    const { page, next } = paginate(this.liveVersions(img), input.maxResults, input.nextToken, 50, mvErr.validation);
    return { body: { items: page.map((v) => this.versionView(img, v, t)), nextToken: next } };
  }

  getMicrovmImageVersion(input: Checked<GetMicrovmImageVersionCommandInput, 'imageIdentifier' | 'imageVersion'>): Result {
    const { img, ver } = this.requireVersion(input.imageIdentifier, input.imageVersion);
    return { body: this.versionView(img, ver) };
  }

  updateMicrovmImageVersion(input: Checked<UpdateMicrovmImageVersionCommandInput, 'imageIdentifier' | 'imageVersion' | 'status'>): Result {
    const t = this.svc.now();
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

  deleteMicrovmImageVersion(input: Checked<DeleteMicrovmImageVersionCommandInput, 'imageIdentifier' | 'imageVersion'>): Result {
    const t = this.svc.now();
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
    const running = [...this.svc.microvms.values()].filter((vm) => vm.imageArn === img.arn && vm.imageVersion === ver.version && this.svc.microvmsApi.vmState(vm, t) !== 'TERMINATED');
    if (running.length > 0) {
      throw mvErr.conflict(`MicroVM image version ${ver.version} of ${img.arn} cannot be deleted while ${running.length} MicroVM(s) launched from it are not TERMINATED.`, img.arn, 'MicrovmImageVersion');
    }
    ver.deleteTl = new Timeline<GoneState>({ state: 'DELETING', at: t }).push({ state: 'GONE', at: t + this.svc.delays.versionDelete });
    return { body };
  }

  listMicrovmImageBuilds(input: Checked<ListMicrovmImageBuildsCommandInput, 'imageIdentifier' | 'imageVersion'>): Result {
    const t = this.svc.now();
    const { img, ver } = this.requireVersion(input.imageIdentifier, input.imageVersion);
    let builds = ver.builds;
    if (input.architecture && input.architecture !== 'ARM_64') builds = [];
    if (input.chipset && input.chipset !== 'GRAVITON') builds = [];
    if (input.chipsetGeneration) builds = builds.filter((b) => b.chipsetGeneration === input.chipsetGeneration);
    const { page, next } = paginate(builds, input.maxResults, input.nextToken, 50, mvErr.validation);
    return { body: { items: page.map((b) => this.buildView(img, ver, b, t)), nextToken: next } };
  }

  getMicrovmImageBuild(input: Checked<GetMicrovmImageBuildCommandInput, 'imageIdentifier' | 'imageVersion' | 'buildId'>): Result {
    const { img, ver } = this.requireVersion(input.imageIdentifier, input.imageVersion);
    const b = ver.builds.find((x) => x.buildId === input.buildId);
    if (!b) throw mvErr.notFound(`MicroVMImage build not found for MicroVMImage: ${img.arn}, Version: ${ver.version}, BuildId: ${input.buildId}`);
    return { body: this.buildView(img, ver, b, this.svc.now(), true) };
  }

  // ----- managed images

  private managedItem(): Record<string, unknown> {
    return { createdAt: sec(MANAGED_CREATED_AT), imageArn: this.svc.managedImageArn(), updatedAt: sec(MANAGED_CREATED_AT) };
  }

  listManagedMicrovmImages(input: ListManagedMicrovmImagesCommandInput): Result {
    const { page, next } = paginate([this.managedItem()], input.maxResults, input.nextToken, 50, mvErr.validation);
    return { body: { items: page, nextToken: next } };
  }

  listManagedMicrovmImageVersions(input: Checked<ListManagedMicrovmImageVersionsCommandInput, 'imageIdentifier'>): Result {
    const id = input.imageIdentifier;
    if (id !== this.svc.managedImageArn() && id !== MANAGED_IMAGE_NAME) {
      throw mvErr.notFound(`Managed MicroVM image not found: ${id}`);
    }
    const items = MANAGED_IMAGE_VERSIONS.map((v, i) => ({
      createdAt: sec(MANAGED_CREATED_AT - i * 86400000),
      imageArn: this.svc.managedImageArn(),
      imageVersion: v,
      status: 'AVAILABLE',
      updatedAt: sec(MANAGED_CREATED_AT - i * 86400000),
    }));
    const { page, next } = paginate(items, input.maxResults, input.nextToken, 50, mvErr.validation);
    return { body: { items: page, nextToken: next } };
  }
}
