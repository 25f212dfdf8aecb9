import {
  DeleteMicrovmImageVersionCommand,
  GetMicrovmImageBuildCommand,
  GetMicrovmImageVersionCommand,
  GetMicrovmImageVersionOutput,
  ListTagsCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateMicrovmImageVersionCommand,
} from '@aws-sdk/client-lambda-microvms';
import { ImageVersionAttr, ImageVersionProps, MAX_HANDLER_WAIT_SECONDS } from '../../src/private/wire';
import { pinRequest, pinTagKey, pinTagValue } from '../image/pins';
import { buildReasons, listBuilds } from '../shared/builds';
import { pollDelete, requestDelete } from '../shared/deletion';
import { classifyError, errorMessage, isNotFound } from '../shared/errors';
import { CustomResourceHandler, ProvisioningError } from '../shared/framework';
import type { HandlerOptions, IsCompleteRequest, OnEventRequest, OnEventResponse, StepResult, Steps } from '../shared/framework';
import { log } from '../shared/log';
import { listMicrovms } from '../shared/microvm-states';
import type { MicrovmsApi } from '../shared/microvms-client';
import { requestHash } from '../shared/ownership';
import { requireOneOf, requireString } from '../shared/props';

type Event = OnEventRequest<ImageVersionProps>;
type VersionProgress = { readonly op: 'create' | 'update' | 'delete' | 'done'; readonly deadline: number };
type CompleteEvent = IsCompleteRequest<ImageVersionProps, VersionProgress>;

const STATUSES = ['ACTIVE', 'INACTIVE'] as const;
const REMOVAL_POLICIES = ['destroy', 'retain'] as const;
const MAX_IDS_IN_MESSAGE = 10;

/**
 * Custom::LambdaMicroVmImageVersion: adopts one version of an image. Create pins it (a tag on the
 * image that the image's pruning respects), waits until it is SUCCESSFUL and sets its status;
 * Update changes the status in place (a status change refused while the image rebuilds waits);
 * Delete releases the pin and, with RemovalPolicy DESTROY, deletes the version it had pinned. The
 * physical id is `<image arn>:<version>`. The pin tag's value ends with the request that wrote it
 * last: the fence that stops a stale waiter. A Delete with an id CloudFormation generated (a
 * cancelled create) releases the pin that create may have set; the rollback of a failed
 * replacement releases the replacement's pin.
 */
export class ImageVersionHandler extends CustomResourceHandler<ImageVersionProps, VersionProgress> {
  protected readonly steps: Steps<ImageVersionProps, VersionProgress> = {
    create: { check: (e, p) => this.isSettled(e, p), timedOut: (e, _p, last) => this.failure(e, `${describe(e.ResourceProperties)} was not built in time (state ${last}).`) },
    update: { check: (e, p) => this.isSettled(e, p), timedOut: (e, _p, last) => this.failure(e, `${describe(e.ResourceProperties)} was not built in time (state ${last}).`) },
    delete: { check: (e) => this.isDeleted(e), timedOut: (e) => new ProvisioningError(`${describe(e.ResourceProperties)} was not deleted in time.`) },
    done: { check: async () => ({ IsComplete: true }) },
  };

  constructor(private readonly client: MicrovmsApi, options: HandlerOptions = {}) {
    super(options);
  }

  protected async onCreate(event: Event): Promise<OnEventResponse<VersionProgress>> {
    const props = checked(event.ResourceProperties);
    // Pinned first, so that an image update running now cannot prune the version under us.
    await this.pin(event, props);
    return {
      PhysicalResourceId: physicalId(props),
      Progress: { op: 'create', deadline: this.waitDeadline() },
    };
  }

  /** The longest a request waits (a build, a busy image, a delete to drain): the framework's limit less a margin. */
  private waitDeadline(): number {
    return this.now() + MAX_HANDLER_WAIT_SECONDS * 1000;
  }

  protected async onUpdate(event: Event): Promise<OnEventResponse<VersionProgress>> {
    const props = checked(event.ResourceProperties);
    const old = event.OldResourceProperties!;
    // Another image or version than the physical id's is another resource: CloudFormation deletes
    // the old one (and so releases its pin) once the stack update has succeeded.
    if (event.PhysicalResourceId !== physicalId(props)) return this.onCreate(event);
    // Idempotent: restores the pin if someone removed the tag by hand.
    await this.pin(event, props);
    if (old.ImageArn !== props.ImageArn || old.ImageVersion !== props.ImageVersion) {
      // The rollback of a failed replacement: the pin the replacement set (if it got that far)
      // must go, or it would keep that version from being pruned forever.
      await this.unpin(event, old);
    }
    return { PhysicalResourceId: event.PhysicalResourceId!, Progress: { op: 'update', deadline: this.waitDeadline() } };
  }

  protected async onDelete(event: Event): Promise<OnEventResponse<VersionProgress>> {
    const props = event.ResourceProperties;
    const id = event.PhysicalResourceId!;
    const done: VersionProgress = { op: 'done', deadline: 0 };
    // An id CloudFormation generated (a create cancelled before it answered): the cancelled
    // create may have pinned the version already; nothing else was made.
    if (id !== physicalId(props)) {
      await this.unpin(event, props);
      return { PhysicalResourceId: id, Progress: done };
    }
    const pinned = await this.isPinned(event, props);
    await this.unpin(event, props);
    if (!pinned) {
      // Never adopted (its create failed and released the pin), or released already: not ours to delete.
      log('version not pinned by this resource: left in place', { imageArn: props.ImageArn, imageVersion: props.ImageVersion });
      return { PhysicalResourceId: id, Progress: done };
    }
    if (requireOneOf(props.RemovalPolicy, 'RemovalPolicy', REMOVAL_POLICIES) !== 'destroy') {
      log('version retained (RemovalPolicy RETAIN); pin released', { imageArn: props.ImageArn, imageVersion: props.ImageVersion });
      return { PhysicalResourceId: id, Progress: done };
    }
    const outcome = await requestDelete(describe(props), () => this.deleteVersion(props));
    if (outcome.kind === 'gone') return { PhysicalResourceId: id, Progress: done };
    if (outcome.kind === 'refused') {
      // Decided behaviour: a version the service refuses to delete (MicroVMs still run from it,
      // it is the image's last version, or the image is being deleted; 409, or the recorded 400
      // refusals, classified alike) is left in place and the Delete succeeds, so that neither a
      // stack delete nor an update's cleanup is wedged. Its pin is released, so the image's
      // keepVersions prunes it once it is free.
      log('WARNING: image version not deleted, left in place', {
        imageArn: props.ImageArn,
        imageVersion: props.ImageVersion,
        reason: outcome.reason,
        liveMicroVms: await this.liveMicroVms(props).catch(() => []),
      });
      return { PhysicalResourceId: id, Progress: done };
    }
    return { PhysicalResourceId: id, Progress: { op: 'delete', deadline: this.waitDeadline() } };
  }

  /**
   * The pin tag is the fence: a waiter whose pin is gone (a later Delete released it) or was
   * written by a later request (a rollback of this update) stops without acting.
   */
  protected async isSuperseded(event: CompleteEvent, progress: VersionProgress): Promise<string | undefined> {
    if (progress.op !== 'create' && progress.op !== 'update') return undefined;
    const pin = await this.pinValue(event, event.ResourceProperties);
    if (pin === undefined) return 'its pin tag was released by a later request';
    const owner = pinRequest(pin);
    return owner !== requestHash(event.RequestId) ? `its pin tag now belongs to request ${owner}` : undefined;
  }

  private async isPinned(event: Event, props: ImageVersionProps): Promise<boolean> {
    return (await this.pinValue(event, props)) !== undefined;
  }

  /** This resource's pin tag value on the image, or undefined (no pin, or no image). */
  private async pinValue(event: Event, props: ImageVersionProps): Promise<string | undefined> {
    try {
      const tags = (await this.client.send(new ListTagsCommand({ Resource: props.ImageArn }))).Tags ?? {};
      return tags[pinTagKey(props.ImageVersion, event.StackId, event.LogicalResourceId)];
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async isSettled(event: CompleteEvent, progress: VersionProgress): Promise<StepResult> {
    const props = event.ResourceProperties;
    const creating = progress.op === 'create';
    let version: GetMicrovmImageVersionOutput;
    try {
      version = await this.client.send(new GetMicrovmImageVersionCommand({ imageIdentifier: props.ImageArn, imageVersion: props.ImageVersion }));
    } catch (err) {
      if (isNotFound(err)) {
        throw await this.failure(event, `MicroVM image version ${props.ImageVersion} of ${props.ImageArn} does not exist (${errorMessage(err)}). ` +
          'Pass an `imageVersion` the image has (ListMicrovmImageVersions), or leave it unset to use the version the image\'s deploy produced.');
      }
      throw err;
    }
    switch (version.state) {
      case 'PENDING':
      case 'IN_PROGRESS':
        log('waiting for version', { imageArn: props.ImageArn, imageVersion: props.ImageVersion, state: version.state });
        return { IsComplete: false, lastState: version.state };
      case 'SUCCESSFUL':
        break;
      case 'FAILED':
        throw await this.failure(event, `MicroVM image version ${props.ImageVersion} of ${props.ImageArn} FAILED: ${await buildReasons(this.client, props.ImageArn, props.ImageVersion, version.stateReason)}. ` +
          'Fix the image (its build log has the details) and deploy again; a failed version cannot be made SUCCESSFUL.');
      default:
        throw await this.failure(event, `MicroVM image version ${props.ImageVersion} of ${props.ImageArn} is ${version.state} and cannot be ${creating ? 'adopted' : 'updated'}.`);
    }
    if (version.status !== props.Status) {
      log('setting version status', { imageArn: props.ImageArn, imageVersion: props.ImageVersion, from: version.status, to: props.Status });
      try {
        version = await this.client.send(new UpdateMicrovmImageVersionCommand({
          imageIdentifier: props.ImageArn,
          imageVersion: props.ImageVersion,
          status: props.Status as 'ACTIVE' | 'INACTIVE',
        }));
      } catch (err) {
        // The image rebuilds (recorded: 409 "MicroVM Image is already in state: UPDATING"): not yet.
        const c = classifyError(err);
        if (c === 'busy' || c === 'conflict') return { IsComplete: false, lastState: `status change refused for now: ${errorMessage(err)}` };
        throw err;
      }
    }
    return { IsComplete: true, Data: await this.data(props, version) };
  }

  private async isDeleted(event: CompleteEvent): Promise<StepResult> {
    const props = event.ResourceProperties;
    const poll = await pollDelete({
      what: describe(props),
      state: async () => (await this.client.send(new GetMicrovmImageVersionCommand({
        imageIdentifier: props.ImageArn, imageVersion: props.ImageVersion,
      }))).state,
      send: () => this.deleteVersion(props),
      deletingStates: ['DELETING'],
      goneStates: ['DELETED'],
      failedStates: ['DELETE_FAILED'],
      failedHint: 'Retry the stack operation, or delete the version by hand (DeleteMicrovmImageVersion).',
    });
    return poll.gone ? { IsComplete: true } : { IsComplete: false, lastState: poll.lastState };
  }

  private deleteVersion(props: ImageVersionProps) {
    return this.client.send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: props.ImageArn, imageVersion: props.ImageVersion }));
  }

  /**
   * The error for a Create or Update that cannot finish. A failed Create releases its pin first,
   * so that the Delete the rollback sends (with the real id: isComplete failed) finds the version
   * not adopted and leaves it in place whatever the RemovalPolicy; when isComplete crashed instead,
   * that Delete releases the pin.
   */
  private async failure(event: CompleteEvent, message: string): Promise<Error> {
    let cleanup = '';
    if (event.Progress?.op === 'create') {
      try {
        await this.unpin(event, event.ResourceProperties);
      } catch (err) {
        cleanup = ` The pin tag could not be removed (${errorMessage(err)}): remove tag ${pinTagKey(event.ResourceProperties.ImageVersion, event.StackId, event.LogicalResourceId)} from the image by hand.`;
      }
    }
    return new ProvisioningError(`${message}${cleanup}`);
  }

  private async data(props: ImageVersionProps, version: GetMicrovmImageVersionOutput): Promise<Record<string, string>> {
    const builds = await listBuilds(this.client, props.ImageArn, props.ImageVersion);
    let memory = 0;
    let disk = 0;
    let code = 0;
    for (const b of builds) {
      const detail = await this.client.send(new GetMicrovmImageBuildCommand({
        imageIdentifier: props.ImageArn, imageVersion: props.ImageVersion, buildId: b.buildId,
      }));
      memory = Math.max(memory, detail.snapshotBuild?.memorySnapshotSizeInBytes ?? 0);
      disk = Math.max(disk, detail.snapshotBuild?.diskSnapshotSizeInBytes ?? 0);
      code = Math.max(code, detail.snapshotBuild?.codeInstallSizeInBytes ?? 0);
    }
    return {
      [ImageVersionAttr.IMAGE_ARN]: props.ImageArn,
      [ImageVersionAttr.IMAGE_VERSION]: props.ImageVersion,
      [ImageVersionAttr.IMAGE_VERSION_ARN]: physicalId(props),
      [ImageVersionAttr.VERSION_STATE]: version.state ?? '',
      [ImageVersionAttr.VERSION_STATUS]: version.status ?? '',
      [ImageVersionAttr.BUILD_IDS]: builds.map((b) => b.buildId).join(','),
      [ImageVersionAttr.MEMORY_SNAPSHOT_SIZE_BYTES]: String(memory),
      [ImageVersionAttr.DISK_SNAPSHOT_SIZE_BYTES]: String(disk),
      [ImageVersionAttr.CODE_INSTALL_SIZE_BYTES]: String(code),
    };
  }

  private async pin(event: Event, props: ImageVersionProps): Promise<void> {
    try {
      await this.client.send(new TagResourceCommand({
        Resource: props.ImageArn,
        Tags: {
          [pinTagKey(props.ImageVersion, event.StackId, event.LogicalResourceId)]:
            pinTagValue(event.StackId, event.LogicalResourceId, requestHash(event.RequestId)),
        },
      }));
    } catch (err) {
      if (isNotFound(err)) {
        throw new ProvisioningError(`MicroVM image ${props.ImageArn} does not exist (${errorMessage(err)}): check the image passed to MicroVmImageVersion.`);
      }
      throw err;
    }
  }

  /** Removes this resource's pin; an image that is already gone has no pin to remove. */
  private async unpin(event: Event, props: ImageVersionProps): Promise<void> {
    try {
      await this.client.send(new UntagResourceCommand({
        Resource: props.ImageArn,
        TagKeys: [pinTagKey(props.ImageVersion, event.StackId, event.LogicalResourceId)],
      }));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async liveMicroVms(props: ImageVersionProps): Promise<string> {
    const ids = (await listMicrovms(this.client, { imageArn: props.ImageArn, imageVersion: props.ImageVersion })).map((vm) => vm.microvmId!);
    const shown = ids.slice(0, MAX_IDS_IN_MESSAGE).join(', ');
    return ids.length > MAX_IDS_IN_MESSAGE ? `${shown} and ${ids.length - MAX_IDS_IN_MESSAGE} more` : shown;
  }
}

function describe(props: ImageVersionProps): string {
  return `MicroVM image version ${props.ImageVersion} of ${props.ImageArn}`;
}

function physicalId(props: ImageVersionProps): string {
  return `${props.ImageArn}:${props.ImageVersion}`;
}

/** The properties, checked: a missing or malformed one means construct and handler versions differ. */
function checked(props: ImageVersionProps): ImageVersionProps {
  requireString(props.ImageArn, 'ImageArn');
  requireString(props.ImageVersion, 'ImageVersion');
  requireOneOf(props.Status, 'Status', STATUSES);
  requireOneOf(props.RemovalPolicy, 'RemovalPolicy', REMOVAL_POLICIES);
  return props;
}
