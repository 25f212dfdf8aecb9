import {
  CreateMicrovmImageCommand,
  DeleteMicrovmImageCommand,
  GetMicrovmImageCommand,
  GetMicrovmImageOutput,
  GetMicrovmImageVersionCommand,
  LambdaMicrovmsClient,
  ListMicrovmImageBuildsCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateMicrovmImageCommand,
  paginateListMicrovms,
  TerminateMicrovmCommand,
} from '@aws-sdk/client-lambda-microvms';
import { imageConfig, sameConfig } from './image-config';
import { ImageAttr, ImageProps, ImageVersionRetentionWire } from '../../src/private/wire';
import { pruneImageVersions } from '../image-version/prune';
import { errorMessage, errorName, isConflict, isNotFound } from '../shared/errors';
import { CustomResourceHandler, ProvisioningError } from '../shared/framework';
import type { CompleteStep, HandlerOptions, IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse, Progress } from '../shared/framework';
import { log } from '../shared/log';
import { canonical, diffTags, toBool, toInt } from '../shared/props';
import { clientToken } from '../shared/tokens';

type Event = OnEventRequest<ImageProps>;
type CompleteEvent = IsCompleteRequest<ImageProps>;

/** MicroVM states that hold memory and keep an image from being deleted. */
const LIVE_STATES = new Set(['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED', 'TERMINATING']);
/** How many MicroVM ids a failure message lists before it summarizes. */
const MAX_IDS_IN_MESSAGE = 20;

/**
 * Custom::LambdaMicroVmImage: CreateMicrovmImage / UpdateMicrovmImage and a poll until the build
 * settles; Delete waits until the image is gone. The physical id is the image ARN.
 */
export class ImageHandler extends CustomResourceHandler<ImageProps> {
  protected readonly steps: Record<string, CompleteStep<ImageProps>> = {
    create: this.isBuilt,
    update: this.isBuilt,
    done: this.isDone,
    delete: this.isDeleted,
  };

  constructor(private readonly client: LambdaMicrovmsClient, options: HandlerOptions = {}) {
    super(options);
  }

  /** Nothing to wait for (tags only, or the latest active version already has this configuration). */
  private async isDone(event: CompleteEvent, progress: Progress): Promise<IsCompleteResponse> {
    await this.pruneVersions(event, progress.version as string);
    return { IsComplete: true, Data: await this.attributes(event.PhysicalResourceId!, progress.version as string) };
  }

  private deadline(props: ImageProps): number {
    return this.now() + (toInt(props.BuildTimeoutSeconds, 'BuildTimeoutSeconds') ?? 3000) * 1000;
  }

  protected async onCreate(event: Event): Promise<OnEventResponse> {
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
      if (isConflict(err)) {
        throw new ProvisioningError(`a MicroVM image named '${props.Name}' already exists in this account and Region: ${errorMessage(err)}. ` +
          'Image names are unique and stay reserved while an image is deleted: choose another `name`, or import the existing image with MicroVmImage.fromImageName.');
      }
      throw err;
    }
    const imageArn = created.imageArn!;
    log('image creating', { imageArn, imageVersion: created.imageVersion });
    return {
      PhysicalResourceId: imageArn,
      Progress: { op: 'create', deadline: this.deadline(props), version: created.imageVersion },
    };
  }

  protected async onUpdate(event: Event): Promise<OnEventResponse> {
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
    return { PhysicalResourceId: imageArn, Progress: { op: 'update', deadline: this.deadline(props), version: updated.imageVersion } };
  }

  protected async onDelete(event: Event): Promise<OnEventResponse> {
    const imageArn = event.PhysicalResourceId!;
    const props = event.ResourceProperties;
    const progress: Progress = { op: 'delete', deadline: this.deadline(props) };
    if (!imageArn.includes(':microvm-image:')) return { PhysicalResourceId: imageArn, Progress: { ...progress, gone: true } };

    const live = await this.liveMicroVms(imageArn);
    if (live.length && !toBool(props.TerminateMicroVmsOnDelete)) {
      throw new ProvisioningError(`cannot delete MicroVM image ${imageArn}: ${live.length} MicroVM(s) still run from it: ${listIds(live)}. ` +
        'Terminate them (TerminateMicrovm) and retry the delete, or set `terminateMicroVmsOnDelete: true` on the MicroVmImage to let the stack terminate them.');
    }
    await this.terminate(live);
    if (!live.length) await this.requestDelete(imageArn);
    return { PhysicalResourceId: imageArn, Progress: progress };
  }

  private async isBuilt(event: CompleteEvent, progress: Progress): Promise<IsCompleteResponse> {
    const imageArn = event.PhysicalResourceId!;
    const version = progress.version as string;
    const image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    const failed = image.state === 'CREATE_FAILED' || image.state === 'UPDATE_FAILED'
      || image.latestFailedImageVersion === version;
    if (failed) throw await this.buildFailure(event, image, version, 'failed');
    if ((image.state === 'CREATED' || image.state === 'UPDATED') && image.latestActiveImageVersion === version) {
      await this.pruneVersions(event, version);
      return { IsComplete: true, Data: this.data(image, version) };
    }
    if (this.now() > progress.deadline) throw await this.buildFailure(event, image, version, 'timed out');
    log('waiting for build', { imageArn, state: image.state, imageVersion: version });
    return { IsComplete: false };
  }

  /**
   * The error for a failed (or timed-out) build: the version and each build's reason, and where
   * the build log is. A failed Create also deletes the image first: the framework sends no Delete
   * after a failed Create, so nothing else would.
   */
  private async buildFailure(event: CompleteEvent, image: GetMicrovmImageOutput, version: string, what: string): Promise<Error> {
    const imageArn = image.imageArn!;
    const reasons: string[] = [];
    try {
      const v = await this.client.send(new GetMicrovmImageVersionCommand({ imageIdentifier: imageArn, imageVersion: version }));
      if (v.stateReason) reasons.push(`version ${version}: ${v.stateReason}`);
      const builds = await this.client.send(new ListMicrovmImageBuildsCommand({ imageIdentifier: imageArn, imageVersion: version }));
      for (const b of builds.items ?? []) {
        reasons.push(`build ${b.buildId} (${b.architecture}) ${b.buildState}${b.stateReason ? `: ${b.stateReason}` : ''}`);
      }
    } catch (err) {
      reasons.push(`(could not read the build details: ${errorMessage(err)})`);
    }
    const props = event.ResourceProperties;
    const logs = toBool(props.Logging?.Disabled)
      ? 'build logging is disabled'
      : `build log: CloudWatch log group ${props.Logging?.LogGroup || `/aws/lambda-microvms/${props.Name}`}`;
    let cleanup = '';
    if (event.RequestType === 'Create' || (event.RequestType === 'Update' && event.OldResourceProperties?.Name !== props.Name)) {
      try {
        const refusal = await this.requestDelete(imageArn);
        cleanup = refusal === undefined
          ? ' The image this deploy created was deleted.'
          : ` The image this deploy created could not be deleted yet (${refusal}): delete ${imageArn} once its build stopped.`;
      } catch (err) {
        cleanup = ` The image this deploy created could not be deleted (${errorMessage(err)}): delete ${imageArn} by hand.`;
      }
    }
    const state = `image state ${image.state}`;
    return new ProvisioningError(`MicroVM image ${props.Name} version ${version} ${what} (${state}). ${reasons.join('; ') || 'the service gave no reason'}. ${logs}.${cleanup}`);
  }

  private async isDeleted(event: CompleteEvent, progress: Progress): Promise<IsCompleteResponse> {
    if (progress.gone) return { IsComplete: true };
    const imageArn = event.PhysicalResourceId!;
    let image: GetMicrovmImageOutput;
    try {
      image = await this.client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    } catch (err) {
      if (isNotFound(err)) return { IsComplete: true };
      throw err;
    }
    if (image.state === 'DELETE_FAILED') {
      throw new ProvisioningError(`deleting MicroVM image ${imageArn} failed (state DELETE_FAILED). Retry the stack delete, or delete the image by hand.`);
    }
    if (image.state !== 'DELETING') {
      // Still building, or MicroVMs were still stopping when onEvent ran: ask again.
      const live = await this.liveMicroVms(imageArn);
      if (!live.length) await this.requestDelete(imageArn);
    }
    if (this.now() > progress.deadline) {
      throw new ProvisioningError(`MicroVM image ${imageArn} was not deleted in time (last state ${image.state}).`);
    }
    return { IsComplete: false };
  }

  /**
   * DeleteMicrovmImage. Already gone counts as deleted. Returns the service's reason when it
   * refuses for now (a build still runs, MicroVMs still stop): isComplete asks again.
   */
  private async requestDelete(imageArn: string): Promise<string | undefined> {
    try {
      await this.client.send(new DeleteMicrovmImageCommand({ imageIdentifier: imageArn }));
      return undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      if (isConflict(err) || (errorName(err) === 'ValidationException' && /while|buil[dt]|in progress/i.test(errorMessage(err)))) {
        log('delete refused for now, will retry', { imageArn, reason: errorMessage(err) });
        return errorMessage(err);
      }
      throw err;
    }
  }

  /** keepVersions: after a successful update, prune the oldest versions (never throws). */
  private async pruneVersions(event: CompleteEvent, version: string): Promise<void> {
    const keep = toInt((event.ResourceProperties as ImageProps & ImageVersionRetentionWire).KeepVersions, 'KeepVersions');
    if (event.RequestType !== 'Update' || keep === undefined) return;
    await pruneImageVersions(this.client, event.PhysicalResourceId!, keep, [version]);
  }

  private async liveMicroVms(imageArn: string): Promise<string[]> {
    const ids: string[] = [];
    for await (const page of paginateListMicrovms({ client: this.client }, { imageIdentifier: imageArn })) {
      for (const vm of page.items ?? []) if (vm.imageArn === imageArn && LIVE_STATES.has(vm.state!)) ids.push(vm.microvmId!);
    }
    return ids;
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
