import {
  CreateMicrovmImageCommand,
  DeleteMicrovmImageCommand,
  GetMicrovmImageCommand,
  GetMicrovmImageOutput,
  GetMicrovmImageVersionCommand,
  ListMicrovmImagesCommand,
  ListTagsCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateMicrovmImageCommand,
  UpdateMicrovmImageVersionCommand,
  TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';
import { buildChanged, buildTimeoutSeconds, imageConfig, ImageConfig, ImageWire, keepVersions, sameConfig } from './image-config';
import { pruneImageVersions } from './prune';
import { ImageAttr, MAX_HANDLER_WAIT_SECONDS } from '../../src/private/wire';
import { buildReasons } from '../shared/builds';
import { pollDelete, requestDelete } from '../shared/deletion';
import { classifyError, errorMessage, isNotFound } from '../shared/errors';
import { CustomResourceHandler, ProvisioningError } from '../shared/framework';
import type { HandlerOptions, IsCompleteRequest, OnEventRequest, OnEventResponse, ProgressOf, StepResult, Steps } from '../shared/framework';
import { log } from '../shared/log';
import { listMicrovms } from '../shared/microvm-states';
import type { MicrovmsApi } from '../shared/microvms-client';
import { FENCE_TAG_KEY, Fence, formatFence, OWNER_TAG_KEY, ownerOf, parseFence, requestHash, userTagChanges } from '../shared/ownership';
import { requireString, toBool } from '../shared/props';
import { clientToken } from '../shared/tokens';

type Event = OnEventRequest<ImageWire>;
/**
 * What isComplete waits for:
 * - create: the first build of an image this request created (`version`);
 * - update: the image converging in place to the requested configuration: a build this request
 *   started (`version`, or the one the fence tag records), or first a build it did not start, or
 *   the deletion of the image a failed rename left (`orphan`);
 * - done: nothing (tags only, or the latest active version already has this configuration);
 * - delete: the image's deletion (`gone` when there was nothing to delete).
 */
type ImageProgress =
  | { readonly op: 'create'; readonly deadline: number; readonly version: string }
  | { readonly op: 'update'; readonly deadline: number; readonly version?: string; readonly orphan?: string }
  | { readonly op: 'done'; readonly deadline: number; readonly version: string; readonly orphan?: string }
  | { readonly op: 'delete'; readonly deadline: number; readonly imageArn?: string };
type CompleteEvent = IsCompleteRequest<ImageWire, ImageProgress>;

/** How many MicroVM ids a failure message lists before it summarizes. */
const MAX_IDS_IN_MESSAGE = 20;
const BUSY_STATES = new Set(['CREATING', 'UPDATING']);
const SETTLED_STATES = new Set(['CREATED', 'UPDATED', 'CREATE_FAILED', 'UPDATE_FAILED']);

/**
 * Custom::LambdaMicroVmImage. The physical id is the image ARN.
 *
 * - Create: CreateMicrovmImage (owner and fence tags with the user's), then a poll until the first
 *   build settles. A failed or timed-out build fails the request with the build reasons; the
 *   framework then reports FAILED with the image ARN and CloudFormation's rollback sends a Delete
 *   for it (only a failed onEvent skips that Delete).
 * - Update: a name that differs from the image the physical id names is a new image (or, after a
 *   rollback, the image of that name this resource already owns). Otherwise the image converges
 *   in place: no build when the latest active version already has the configuration (a rollback),
 *   else UpdateMicrovmImage. A build that runs when the request arrives (an abandoned one, or the
 *   build of the update this request rolls back) is waited for, within the handler's deadline; a
 *   version a superseded request built is set INACTIVE, so that what is live is what the stack
 *   last asked for. The rollback of a failed rename deletes the image the rename created.
 * - Delete: terminates or refuses live MicroVMs, then DeleteMicrovmImage until the service no
 *   longer knows the image; a refusal while a build runs is "not yet". A Delete with an id
 *   CloudFormation generated finds the image by name and deletes it when this resource owns it.
 * - Every request writes the fence tag before it acts; a waiter whose request is no longer the
 *   fence's stops without acting.
 */
export class ImageHandler extends CustomResourceHandler<ImageWire, ImageProgress> {
  protected readonly steps: Steps<ImageWire, ImageProgress> = {
    create: { check: (e, p) => this.isBuilt(e, p), timedOut: (e, p) => this.buildTimedOut(e, p.version) },
    update: {
      check: (e, p) => this.isConverged(e, p),
      timedOut: (e, p, last) => (p.version ? this.buildTimedOut(e, p.version)
        : new ProvisioningError(`MicroVM image ${e.ResourceProperties.Name} did not settle in time (${last}): it stayed busy with a build this deploy did not start, ` +
          'or the image a failed rename left could not be deleted yet. Deploy again once the image is CREATED or UPDATED.')),
    },
    done: {
      check: (e, p) => this.isDone(e, p),
      timedOut: (e, p, last) => new ProvisioningError(`MicroVM image ${p.orphan} that a failed rename of ${e.ResourceProperties.Name} left was not deleted in time (${last}).`),
    },
    delete: {
      check: (_e, p) => this.isDeleted(p),
      timedOut: (_e, p, last) => new ProvisioningError(`MicroVM image ${p.imageArn} was not deleted in time (last state ${last}).`),
    },
  };

  constructor(private readonly client: MicrovmsApi, options: HandlerOptions = {}) {
    super(options);
  }

  // ----------------------------------------------------------------------------------------------
  // onEvent

  protected async onCreate(event: Event): Promise<OnEventResponse<ImageProgress>> {
    const props = event.ResourceProperties;
    const name = requireString(props.Name, 'Name');
    const config = imageConfig(props);
    const buildTimeout = buildTimeoutSeconds(props);
    let created;
    try {
      created = await this.client.send(new CreateMicrovmImageCommand({
        ...config,
        name,
        tags: {
          ...props.Tags,
          [OWNER_TAG_KEY]: ownerOf(event.StackId, event.LogicalResourceId),
          [FENCE_TAG_KEY]: formatFence({ request: requestHash(event.RequestId) }),
        },
        clientToken: clientToken(128, event.StackId, event.LogicalResourceId, event.RequestId),
      }));
    } catch (err) {
      if (classifyError(err) !== 'conflict') throw err;
      // The image of this name may be one this resource made: the rollback of a successful rename
      // back to it, or a create that ran again after a cancelled one. Then it converges in place.
      const owned = await this.ownedImage(event, name);
      if (owned) return this.converge(event, owned, config, { unchanged: false });
      throw new ProvisioningError(`a MicroVM image named '${name}' already exists in this account and Region: ${errorMessage(err)}. ` +
        'Image names are unique and stay reserved while an image is deleted: choose another `name`, or import the existing image with MicroVmImage.fromImageName.');
    }
    const imageArn = created.imageArn!;
    log('image creating', { imageArn, imageVersion: created.imageVersion });
    return { PhysicalResourceId: imageArn, Progress: { op: 'create', deadline: this.now() + buildTimeout * 1000, version: created.imageVersion! } };
  }

  protected async onUpdate(event: Event): Promise<OnEventResponse<ImageProgress>> {
    const props = event.ResourceProperties;
    const old = event.OldResourceProperties!;
    const imageArn = event.PhysicalResourceId!;
    const name = requireString(props.Name, 'Name');
    // Names are fixed for an image's life: a name other than the physical id's image is another
    // image, and CloudFormation deletes the old one once the stack update has succeeded.
    if (imageName(imageArn) !== name) return this.onCreate(event);

    const config = imageConfig(props);
    buildTimeoutSeconds(props);
    const actual = (await this.client.send(new ListTagsCommand({ Resource: imageArn }))).Tags ?? {};
    const { toSet, toRemove } = userTagChanges(actual, old.Tags, props.Tags);
    if (Object.keys(toSet).length) await this.client.send(new TagResourceCommand({ Resource: imageArn, Tags: toSet }));
    if (toRemove.length) await this.client.send(new UntagResourceCommand({ Resource: imageArn, TagKeys: toRemove }));

    // The rollback of a failed rename (the physical id names this image, the old properties
    // another): the image the rename created, if this resource owns it, must go.
    let orphan: string | undefined;
    if (old.Name && old.Name !== name) orphan = await this.ownedImage(event, old.Name);
    return this.converge(event, imageArn, config, { unchanged: !buildChanged(old, props), tags: actual, orphan });
  }

  /**
   * Starts converging `imageArn` in place to `config`. `unchanged`: the build properties did not
   * change, so the latest active version has them (no need to read it). `tags`: the image's tags,
   * when already read.
   */
  private async converge(event: Event, imageArn: string, config: ImageConfig,
    opts: { unchanged: boolean; tags?: Record<string, string>; orphan?: string }): Promise<OnEventResponse<ImageProgress>> {
    const props = event.ResourceProperties;
    const me = requestHash(event.RequestId);
    const orphan = opts.orphan;
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    const wait = { op: 'update' as const, deadline: this.now() + MAX_HANDLER_WAIT_SECONDS * 1000, orphan };
    if (BUSY_STATES.has(image.state!)) {
      // A build this request did not start: wait for it. If it is the build of the request this
      // one supersedes, its version must not stay live once built (unless it has this configuration).
      const tags = opts.tags ?? (await this.client.send(new ListTagsCommand({ Resource: imageArn }))).Tags ?? {};
      const previous = parseFence(tags[FENCE_TAG_KEY]);
      const superseded = previous && previous.request !== me && previous.version !== image.latestActiveImageVersion;
      const building = superseded ? previous.version : undefined;
      await this.fence(imageArn, { request: me, discard: building ?? (previous?.request === me ? previous.discard : undefined) });
      log('image busy with a build this request did not start: waiting', { imageArn, state: image.state, discard: building });
      return { PhysicalResourceId: imageArn, Progress: wait };
    }
    const active = image.latestActiveImageVersion;
    if (active && (opts.unchanged || sameConfig(config, await this.version(imageArn, active)))) {
      log('latest active version already has this configuration: no build', { imageArn, imageVersion: active });
      // Nothing changes on this image (no fence needed): at most the image a failed rename left goes.
      return { PhysicalResourceId: imageArn, Progress: { op: 'done', deadline: orphan ? wait.deadline : 0, version: active, orphan } };
    }
    const version = await this.startBuild(event, imageArn, config);
    if (!version) return { PhysicalResourceId: imageArn, Progress: wait };
    return { PhysicalResourceId: imageArn, Progress: { ...wait, deadline: this.now() + buildTimeoutSeconds(props) * 1000, version } };
  }

  /** UpdateMicrovmImage with this request's token, fenced; undefined when the service refuses for now. */
  private async startBuild(event: CompleteEvent | Event, imageArn: string, config: ImageConfig): Promise<string | undefined> {
    let updated;
    try {
      updated = await this.client.send(new UpdateMicrovmImageCommand({
        ...config,
        imageIdentifier: imageArn,
        clientToken: clientToken(128, event.StackId, event.LogicalResourceId, event.RequestId),
      }));
    } catch (err) {
      const c = classifyError(err);
      if (c === 'busy' || c === 'conflict') {
        log('update refused for now, will ask again', { imageArn, reason: errorMessage(err) });
        return undefined;
      }
      throw err;
    }
    await this.fence(imageArn, { request: requestHash(event.RequestId), version: updated.imageVersion });
    log('image updating', { imageArn, imageVersion: updated.imageVersion });
    return updated.imageVersion!;
  }

  protected async onDelete(event: Event): Promise<OnEventResponse<ImageProgress>> {
    const props = event.ResourceProperties;
    const id = event.PhysicalResourceId!;
    const deadline = this.now() + MAX_HANDLER_WAIT_SECONDS * 1000;
    // An id CloudFormation generated (a create cancelled before it answered) or the framework's
    // marker: the image, if the cancelled create made one, is found by name and ownership.
    const imageArn = isImageArn(id) ? id : props.Name ? await this.ownedImage(event, props.Name) : undefined;
    if (!imageArn) return { PhysicalResourceId: id, Progress: { op: 'delete', deadline } };
    try {
      await this.fence(imageArn, { request: requestHash(event.RequestId) });
    } catch (err) {
      if (isNotFound(err)) return { PhysicalResourceId: id, Progress: { op: 'delete', deadline } };
      throw err;
    }
    const live = await this.liveMicroVms(imageArn);
    if (live.length && !toBool(props.TerminateMicroVmsOnDelete)) {
      throw new ProvisioningError(`cannot delete MicroVM image ${imageArn}: ${live.length} MicroVM(s) still run from it: ${listIds(live)}. ` +
        'Terminate them (TerminateMicrovm) and retry the delete, or set `terminateMicroVmsOnDelete: true` on the MicroVmImage to let the stack terminate them.');
    }
    await this.terminate(live);
    if (!live.length) await this.requestImageDelete(imageArn);
    return { PhysicalResourceId: id, Progress: { op: 'delete', deadline, imageArn } };
  }

  // ----------------------------------------------------------------------------------------------
  // isComplete

  /** A waiter whose request no longer holds the image's fence tag stops without acting. */
  protected async isSuperseded(event: CompleteEvent, progress: ImageProgress): Promise<string | undefined> {
    if (progress.op === 'delete' || progress.op === 'done') return undefined;
    let tags: Record<string, string>;
    try {
      tags = (await this.client.send(new ListTagsCommand({ Resource: event.PhysicalResourceId! }))).Tags ?? {};
    } catch (err) {
      if (isNotFound(err)) return `image ${event.PhysicalResourceId} is gone`;
      throw err;
    }
    const fence = parseFence(tags[FENCE_TAG_KEY]);
    return fence && fence.request !== requestHash(event.RequestId) ? `the image now follows request ${fence.request}` : undefined;
  }

  private async isBuilt(event: CompleteEvent, progress: ProgressOf<ImageProgress, 'create'>): Promise<StepResult> {
    const imageArn = event.PhysicalResourceId!;
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    return this.buildOutcome(event, image, progress.version);
  }

  /** Our build of `version`: failed (throws), built (complete), or still running. */
  private async buildOutcome(event: CompleteEvent, image: GetMicrovmImageOutput, version: string): Promise<StepResult> {
    const failed = image.latestFailedImageVersion === version
      || ((image.state === 'CREATE_FAILED' || image.state === 'UPDATE_FAILED') && !image.latestFailedImageVersion);
    if (failed) throw await this.buildFailure(event, image, version, 'failed');
    if (SETTLED_STATES.has(image.state!) && image.latestActiveImageVersion === version) {
      await this.pruneVersions(event, version);
      return { IsComplete: true, Data: data(image, version) };
    }
    log('waiting for build', { imageArn: image.imageArn, state: image.state, imageVersion: version });
    return { IsComplete: false, lastState: `image state ${image.state}` };
  }

  /** Undefined once the image a failed rename left is gone; else the not-yet answer. */
  private async orphanGone(orphan: string | undefined): Promise<StepResult | undefined> {
    if (!orphan) return undefined;
    const poll = await this.deletePoll(orphan);
    return poll.gone ? undefined : { IsComplete: false, lastState: `the image ${orphan} a failed rename left is ${poll.lastState}` };
  }

  private async isConverged(event: CompleteEvent, progress: ProgressOf<ImageProgress, 'update'>): Promise<StepResult> {
    const imageArn = event.PhysicalResourceId!;
    const orphan = await this.orphanGone(progress.orphan);
    if (orphan) return orphan;
    const fence = parseFence((await this.client.send(new ListTagsCommand({ Resource: imageArn }))).Tags?.[FENCE_TAG_KEY]);
    const ours = progress.version ?? fence?.version;
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    if (ours) return this.buildOutcome(event, image, ours);
    if (BUSY_STATES.has(image.state!)) {
      log('waiting for a build this request did not start', { imageArn, state: image.state });
      return { IsComplete: false, lastState: `image state ${image.state}` };
    }
    const config = imageConfig(event.ResourceProperties);
    if (fence?.discard && image.latestActiveImageVersion === fence.discard) {
      // Built by a request CloudFormation has rolled back: it must not stay what the image runs.
      const discard = await this.version(imageArn, fence.discard);
      if (!sameConfig(config, discard)) {
        try {
          await this.client.send(new UpdateMicrovmImageVersionCommand({ imageIdentifier: imageArn, imageVersion: fence.discard, status: 'INACTIVE' }));
          log('version of a superseded request set INACTIVE', { imageArn, imageVersion: fence.discard });
        } catch (err) {
          const c = classifyError(err);
          if (c === 'busy' || c === 'conflict') return { IsComplete: false, lastState: `version ${fence.discard} cannot be set INACTIVE yet` };
          throw err;
        }
        return { IsComplete: false, lastState: `version ${fence.discard} set INACTIVE` };
      }
    }
    const active = image.latestActiveImageVersion;
    if (active && sameConfig(config, await this.version(imageArn, active))) {
      await this.pruneVersions(event, active);
      return { IsComplete: true, Data: data(image, active) };
    }
    await this.startBuild(event, imageArn, config);
    return { IsComplete: false, lastState: `image state ${image.state}, build requested` };
  }

  /** Nothing to wait for (tags only, or the latest active version already has this configuration). */
  private async isDone(event: CompleteEvent, progress: ProgressOf<ImageProgress, 'done'>): Promise<StepResult> {
    const orphan = await this.orphanGone(progress.orphan);
    if (orphan) return orphan;
    await this.pruneVersions(event, progress.version);
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: event.PhysicalResourceId! }));
    return { IsComplete: true, Data: data(image, progress.version) };
  }

  private async buildTimedOut(event: CompleteEvent, version: string): Promise<Error> {
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: event.PhysicalResourceId! }));
    return this.buildFailure(event, image, version, 'timed out');
  }

  /** The error for a failed (or timed-out) build: the version, each build's reason, the build log, and what happens to the image. */
  private async buildFailure(event: CompleteEvent, image: GetMicrovmImageOutput, version: string, what: string): Promise<Error> {
    const imageArn = image.imageArn!;
    let versionReason: string | undefined;
    try {
      const v = await this.version(imageArn, version);
      versionReason = v.stateReason ?? undefined;
    } catch (err) {
      versionReason = `(could not read the version: ${errorMessage(err)})`;
    }
    const reasons = await buildReasons(this.client, imageArn, version, versionReason);
    const props = event.ResourceProperties;
    const logs = toBool(props.Logging?.Disabled)
      ? 'build logging is disabled'
      : `build log: CloudWatch log group ${props.Logging?.LogGroup || `/aws/lambda-microvms/${props.Name}`}`;
    // The framework reports this failure with the image ARN: CloudFormation's rollback deletes a
    // new image (a Delete for a create, the rollback Update for a rename); an image updated in
    // place keeps serving its latest active version.
    const next = event.Progress?.op === 'create'
      ? ' The rollback deletes the image this deploy created.'
      : ` The image keeps serving version ${image.latestActiveImageVersion ?? '(none)'}.`;
    return new ProvisioningError(`MicroVM image ${props.Name} version ${version} ${what} (image state ${image.state}). ${reasons}. ${logs}.${next}`);
  }

  private async isDeleted(progress: ProgressOf<ImageProgress, 'delete'>): Promise<StepResult> {
    if (!progress.imageArn) return { IsComplete: true };
    const poll = await this.deletePoll(progress.imageArn);
    return poll.gone ? { IsComplete: true } : { IsComplete: false, lastState: poll.lastState };
  }

  // ----------------------------------------------------------------------------------------------
  // helpers

  private deletePoll(imageArn: string) {
    return pollDelete({
      what: `MicroVM image ${imageArn}`,
      state: async () => (await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }))).state,
      send: () => this.client.send(new DeleteMicrovmImageCommand({ imageIdentifier: imageArn })),
      deletingStates: ['DELETING'],
      failedStates: ['DELETE_FAILED'],
      failedHint: 'Retry the stack delete, or delete the image by hand.',
      // MicroVMs still stopping when onEvent ran: ask again once they are gone.
      ready: async () => (await this.liveMicroVms(imageArn)).length === 0,
    });
  }

  /** DeleteMicrovmImage once: gone, requested, or refused for now (a build runs, MicroVMs still stop). */
  private requestImageDelete(imageArn: string) {
    return requestDelete(`MicroVM image ${imageArn}`, () => this.client.send(new DeleteMicrovmImageCommand({ imageIdentifier: imageArn })));
  }

  private fence(imageArn: string, fence: Fence): Promise<unknown> {
    return this.client.send(new TagResourceCommand({ Resource: imageArn, Tags: { [FENCE_TAG_KEY]: formatFence(fence) } }));
  }

  /** The ARN of the image named `name` when this stack resource created it (its owner tag); else undefined. */
  private async ownedImage(event: OnEventRequest<ImageWire>, name: string): Promise<string | undefined> {
    let nextToken: string | undefined;
    do {
      const page = await this.client.send(new ListMicrovmImagesCommand({ nameFilter: name, nextToken }));
      const match = (page.items ?? []).find((i) => i.name === name);
      if (match) {
        try {
          const tags = (await this.client.send(new ListTagsCommand({ Resource: match.imageArn }))).Tags ?? {};
          return tags[OWNER_TAG_KEY] === ownerOf(event.StackId, event.LogicalResourceId) ? match.imageArn : undefined;
        } catch (err) {
          if (isNotFound(err)) return undefined;
          throw err;
        }
      }
      nextToken = page.nextToken ?? undefined;
    } while (nextToken);
    return undefined;
  }

  private version(imageArn: string, version: string) {
    return this.client.send(new GetMicrovmImageVersionCommand({ imageIdentifier: imageArn, imageVersion: version }));
  }

  /** keepVersions: after a successful update, prune the oldest versions (never throws). */
  private async pruneVersions(event: CompleteEvent, version: string): Promise<void> {
    const keep = keepVersions(event.ResourceProperties);
    if (event.RequestType !== 'Update' || keep === undefined) return;
    await pruneImageVersions(this.client, event.PhysicalResourceId!, keep, [version]);
  }

  private async liveMicroVms(imageArn: string): Promise<string[]> {
    return (await listMicrovms(this.client, { imageArn })).map((vm) => vm.microvmId!);
  }

  private async terminate(ids: string[]): Promise<void> {
    for (const id of ids) {
      try {
        await this.client.send(new TerminateMicrovmCommand({ microvmIdentifier: id }));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }
}

function isImageArn(id: string): boolean {
  return id.includes(':microvm-image:');
}

/** The name in an image ARN (`arn:aws:lambda:<region>:<account>:microvm-image:<name>`). */
function imageName(arn: string): string | undefined {
  return isImageArn(arn) ? arn.slice(arn.lastIndexOf(':') + 1) : undefined;
}

function data(image: GetMicrovmImageOutput, version: string): Record<string, string> {
  return {
    [ImageAttr.IMAGE_ARN]: image.imageArn!,
    [ImageAttr.IMAGE_NAME]: image.name!,
    [ImageAttr.IMAGE_VERSION]: version,
    [ImageAttr.LATEST_ACTIVE_IMAGE_VERSION]: image.latestActiveImageVersion ?? '',
  };
}

function listIds(ids: string[]): string {
  const shown = ids.slice(0, MAX_IDS_IN_MESSAGE).join(', ');
  return ids.length > MAX_IDS_IN_MESSAGE ? `${shown} and ${ids.length - MAX_IDS_IN_MESSAGE} more` : shown;
}
