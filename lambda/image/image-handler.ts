import {
  CreateMicrovmImageCommand,
  DeleteMicrovmImageCommand,
  GetMicrovmImageCommand,
  GetMicrovmImageOutput,
  GetMicrovmImageVersionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateMicrovmImageCommand,
  TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';
import { imageConfig, sameConfig } from './image-config';
import { ImageAttr, ImageProps, ImageVersionRetentionWire } from '../../src/private/wire';
import { pruneImageVersions } from '../image-version/prune';
import { buildReasons } from '../shared/builds';
import { pollDelete, requestDelete } from '../shared/deletion';
import { classifyError, errorMessage, isNotFound } from '../shared/errors';
import { CustomResourceHandler, ProvisioningError } from '../shared/framework';
import type { HandlerOptions, IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse, ProgressOf, StepResult, Steps } from '../shared/framework';
import { log } from '../shared/log';
import { listMicrovms } from '../shared/microvm-states';
import type { MicrovmsApi } from '../shared/microvms-client';
import { canonical, diffTags, toBool, toInt } from '../shared/props';
import { clientToken } from '../shared/tokens';

type Event = OnEventRequest<ImageProps>;
/** What isComplete waits for: a build of `version`, nothing (`done`), or the image's deletion. */
type ImageProgress =
  | { readonly op: 'create' | 'update'; readonly deadline: number; readonly version: string }
  | { readonly op: 'done'; readonly deadline: number; readonly version: string }
  | { readonly op: 'delete'; readonly deadline: number; readonly gone?: boolean };
type BuildProgress = ProgressOf<ImageProgress, 'create'>;
type CompleteEvent = IsCompleteRequest<ImageProps, ImageProgress>;

/** How many MicroVM ids a failure message lists before it summarizes. */
const MAX_IDS_IN_MESSAGE = 20;

/**
 * Custom::LambdaMicroVmImage: CreateMicrovmImage / UpdateMicrovmImage and a poll until the build
 * settles; Delete waits until the image is gone. The physical id is the image ARN.
 */
export class ImageHandler extends CustomResourceHandler<ImageProps, ImageProgress> {
  protected readonly steps: Steps<ImageProps, ImageProgress> = {
    create: { check: (e, p) => this.isBuilt(e, p), timedOut: (e, p) => this.buildTimedOut(e, p) },
    update: { check: (e, p) => this.isBuilt(e, p), timedOut: (e, p) => this.buildTimedOut(e, p) },
    done: { check: (e, p) => this.isDone(e, p) },
    delete: {
      check: (e, p) => this.isDeleted(e, p),
      timedOut: (e, _p, last) => new ProvisioningError(`MicroVM image ${e.PhysicalResourceId} was not deleted in time (last state ${last}).`),
    },
  };

  constructor(private readonly client: MicrovmsApi, options: HandlerOptions = {}) {
    super(options);
  }

  /** Nothing to wait for (tags only, or the latest active version already has this configuration). */
  private async isDone(event: CompleteEvent, progress: { version: string }): Promise<IsCompleteResponse> {
    await this.pruneVersions(event, progress.version);
    return { IsComplete: true, Data: await this.attributes(event.PhysicalResourceId!, progress.version) };
  }

  private deadline(props: ImageProps): number {
    return this.now() + (toInt(props.BuildTimeoutSeconds, 'BuildTimeoutSeconds') ?? 3000) * 1000;
  }

  protected async onCreate(event: Event): Promise<OnEventResponse<ImageProgress>> {
    const props = event.ResourceProperties;
    let created;
    try {
      created = await this.client.send(new CreateMicrovmImageCommand({
        ...imageConfig(props),
        name: props.Name,
        tags: props.Tags && Object.keys(props.Tags).length ? props.Tags : undefined,
        clientToken: clientToken(128, event.StackId, event.LogicalResourceId, event.RequestId),
      }));
    } catch (err) {
      if (classifyError(err) === 'conflict') {
        throw new ProvisioningError(`a MicroVM image named '${props.Name}' already exists in this account and Region: ${errorMessage(err)}. ` +
          'Image names are unique and stay reserved while an image is deleted: choose another `name`, or import the existing image with MicroVmImage.fromImageName.');
      }
      throw err;
    }
    const imageArn = created.imageArn!;
    log('image creating', { imageArn, imageVersion: created.imageVersion });
    return {
      PhysicalResourceId: imageArn,
      Progress: { op: 'create', deadline: this.deadline(props), version: created.imageVersion! },
    };
  }

  protected async onUpdate(event: Event): Promise<OnEventResponse<ImageProgress>> {
    const props = event.ResourceProperties;
    const old = event.OldResourceProperties!;
    const imageArn = event.PhysicalResourceId!;
    // Names are fixed for an image's life: a new name is a new image, and CloudFormation
    // deletes the old one once the stack update has succeeded.
    if (props.Name !== old.Name) return this.onCreate(event);

    const { toSet, toRemove } = diffTags(old.Tags, props.Tags);
    if (Object.keys(toSet).length) await this.client.send(new TagResourceCommand({ Resource: imageArn, Tags: toSet }));
    if (toRemove.length) await this.client.send(new UntagResourceCommand({ Resource: imageArn, TagKeys: toRemove }));

    const config = imageConfig(props);
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    const configChanged = canonical(config) !== canonical(imageConfig(old)) || props.CodeObjectVersion !== old.CodeObjectVersion;
    if (!configChanged && image.latestActiveImageVersion) {
      log('tags only: no rebuild', { imageArn });
      return { PhysicalResourceId: imageArn, Progress: { op: 'done', deadline: 0, version: image.latestActiveImageVersion } };
    }
    // A rollback (or any update) back to what the latest active version was built from needs no build.
    if (image.latestActiveImageVersion) {
      const active = await this.client.send(new GetMicrovmImageVersionCommand({
        imageIdentifier: imageArn, imageVersion: image.latestActiveImageVersion,
      }));
      if (sameConfig(config, active)) {
        log('latest active version already has this configuration: no rebuild', { imageArn, imageVersion: active.imageVersion });
        return { PhysicalResourceId: imageArn, Progress: { op: 'done', deadline: 0, version: image.latestActiveImageVersion } };
      }
    }
    const updated = await this.client.send(new UpdateMicrovmImageCommand({
      ...config,
      imageIdentifier: imageArn,
      clientToken: clientToken(128, event.StackId, event.LogicalResourceId, event.RequestId),
    }));
    log('image updating', { imageArn, imageVersion: updated.imageVersion });
    return { PhysicalResourceId: imageArn, Progress: { op: 'update', deadline: this.deadline(props), version: updated.imageVersion! } };
  }

  protected async onDelete(event: Event): Promise<OnEventResponse<ImageProgress>> {
    const imageArn = event.PhysicalResourceId!;
    const props = event.ResourceProperties;
    const progress = { op: 'delete' as const, deadline: this.deadline(props) };
    if (!imageArn.includes(':microvm-image:')) return { PhysicalResourceId: imageArn, Progress: { ...progress, gone: true } };

    const live = await this.liveMicroVms(imageArn);
    if (live.length && !toBool(props.TerminateMicroVmsOnDelete)) {
      throw new ProvisioningError(`cannot delete MicroVM image ${imageArn}: ${live.length} MicroVM(s) still run from it: ${listIds(live)}. ` +
        'Terminate them (TerminateMicrovm) and retry the delete, or set `terminateMicroVmsOnDelete: true` on the MicroVmImage to let the stack terminate them.');
    }
    await this.terminate(live);
    if (!live.length) await this.requestImageDelete(imageArn);
    return { PhysicalResourceId: imageArn, Progress: progress };
  }

  private async isBuilt(event: CompleteEvent, progress: BuildProgress): Promise<StepResult> {
    const imageArn = event.PhysicalResourceId!;
    const version = progress.version;
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    const failed = image.state === 'CREATE_FAILED' || image.state === 'UPDATE_FAILED'
      || image.latestFailedImageVersion === version;
    if (failed) throw await this.buildFailure(event, image, version, 'failed');
    if ((image.state === 'CREATED' || image.state === 'UPDATED') && image.latestActiveImageVersion === version) {
      await this.pruneVersions(event, version);
      return { IsComplete: true, Data: this.data(image, version) };
    }
    log('waiting for build', { imageArn, state: image.state, imageVersion: version });
    return { IsComplete: false, lastState: image.state };
  }

  private async buildTimedOut(event: CompleteEvent, progress: BuildProgress): Promise<Error> {
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: event.PhysicalResourceId! }));
    return this.buildFailure(event, image, progress.version, 'timed out');
  }

  /**
   * The error for a failed (or timed-out) build: the version and each build's reason, and where
   * the build log is. A failed Create also deletes the image first: the framework sends no Delete
   * after a failed Create, so nothing else would.
   */
  private async buildFailure(event: CompleteEvent, image: GetMicrovmImageOutput, version: string, what: string): Promise<Error> {
    const imageArn = image.imageArn!;
    let versionReason: string | undefined;
    try {
      const v = await this.client.send(new GetMicrovmImageVersionCommand({ imageIdentifier: imageArn, imageVersion: version }));
      versionReason = v.stateReason ?? undefined;
    } catch (err) {
      versionReason = `(could not read the version: ${errorMessage(err)})`;
    }
    const reasons = await buildReasons(this.client, imageArn, version, versionReason);
    const props = event.ResourceProperties;
    const logs = toBool(props.Logging?.Disabled)
      ? 'build logging is disabled'
      : `build log: CloudWatch log group ${props.Logging?.LogGroup || `/aws/lambda-microvms/${props.Name}`}`;
    let cleanup = '';
    if (event.RequestType === 'Create' || (event.RequestType === 'Update' && event.OldResourceProperties?.Name !== props.Name)) {
      try {
        const outcome = await this.requestImageDelete(imageArn);
        cleanup = outcome.kind !== 'refused'
          ? ' The image this deploy created was deleted.'
          : ` The image this deploy created could not be deleted yet (${outcome.reason}): delete ${imageArn} once its build stopped.`;
      } catch (err) {
        cleanup = ` The image this deploy created could not be deleted (${errorMessage(err)}): delete ${imageArn} by hand.`;
      }
    }
    const state = `image state ${image.state}`;
    return new ProvisioningError(`MicroVM image ${props.Name} version ${version} ${what} (${state}). ${reasons}. ${logs}.${cleanup}`);
  }

  private async isDeleted(event: CompleteEvent, progress: { gone?: boolean }): Promise<StepResult> {
    if (progress.gone) return { IsComplete: true };
    const imageArn = event.PhysicalResourceId!;
    const poll = await pollDelete({
      what: `MicroVM image ${imageArn}`,
      state: async () => (await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }))).state,
      send: () => this.client.send(new DeleteMicrovmImageCommand({ imageIdentifier: imageArn })),
      deletingStates: ['DELETING'],
      failedStates: ['DELETE_FAILED'],
      failedHint: 'Retry the stack delete, or delete the image by hand.',
      // MicroVMs still stopping when onEvent ran: ask again once they are gone.
      ready: async () => (await this.liveMicroVms(imageArn)).length === 0,
    });
    return poll.gone ? { IsComplete: true } : { IsComplete: false, lastState: poll.lastState };
  }

  /** DeleteMicrovmImage once: gone, requested, or refused for now (a build runs, MicroVMs still stop). */
  private requestImageDelete(imageArn: string) {
    return requestDelete(`MicroVM image ${imageArn}`, () => this.client.send(new DeleteMicrovmImageCommand({ imageIdentifier: imageArn })));
  }

  /** keepVersions: after a successful update, prune the oldest versions (never throws). */
  private async pruneVersions(event: CompleteEvent, version: string): Promise<void> {
    const keep = toInt((event.ResourceProperties as ImageProps & ImageVersionRetentionWire).KeepVersions, 'KeepVersions');
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

  private async attributes(imageArn: string, version: string): Promise<Record<string, string>> {
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    return this.data(image, version);
  }

  private data(image: GetMicrovmImageOutput, version: string): Record<string, string> {
    return {
      [ImageAttr.IMAGE_ARN]: image.imageArn!,
      [ImageAttr.IMAGE_NAME]: image.name!,
      [ImageAttr.IMAGE_VERSION]: version,
      [ImageAttr.LATEST_ACTIVE_IMAGE_VERSION]: image.latestActiveImageVersion ?? '',
    };
  }
}

function listIds(ids: string[]): string {
  const shown = ids.slice(0, MAX_IDS_IN_MESSAGE).join(', ');
  return ids.length > MAX_IDS_IN_MESSAGE ? `${shown} and ${ids.length - MAX_IDS_IN_MESSAGE} more` : shown;
}
