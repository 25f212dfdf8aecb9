import { MAX_HANDLER_WAIT_SECONDS, NetworkConnectorAttr, NetworkConnectorProps } from '../../src/private/wire';
import { pollDelete, requestDelete } from '../shared/deletion';
import { classifyError, errorMessage, errorName } from '../shared/errors';
import { CustomResourceHandler, ProvisioningError } from '../shared/framework';
import type { HandlerOptions, IsCompleteRequest, OnEventRequest, OnEventResponse, ProgressOf, StepResult, Steps } from '../shared/framework';
import type { LambdaCoreClient, NetworkConnector, NetworkConnectorConfiguration } from '../shared/lambda-core-client';
import { log } from '../shared/log';
import { FENCE_TAG_KEY, formatFence, OWNER_TAG_KEY, ownerOf, parseFence, requestHash, userTagChanges } from '../shared/ownership';
import { canonical, requireInt, requireOneOf, requireString, WireMismatchError } from '../shared/props';
import { clientToken } from '../shared/tokens';

type Event = OnEventRequest<NetworkConnectorProps>;
/** `orphan`: the connector a failed rename or compute-type change left, deleted by its rollback. */
type ConnectorProgress =
  | { readonly op: 'create'; readonly deadline: number }
  | { readonly op: 'done'; readonly deadline: number; readonly orphan?: string }
  | { readonly op: 'update'; readonly deadline: number; readonly requested: boolean; readonly token: string; readonly orphan?: string }
  | { readonly op: 'delete'; readonly deadline: number; readonly gone: boolean; readonly arn?: string };
type UpdateProgress = ProgressOf<ConnectorProgress, 'update'>;
type CompleteEvent = IsCompleteRequest<NetworkConnectorProps, ConnectorProgress>;

/** The Lambda Core client calls this handler makes. */
export type LambdaCoreApi = Pick<LambdaCoreClient,
'createNetworkConnector' | 'getNetworkConnector' | 'updateNetworkConnector' | 'deleteNetworkConnector' | 'tagResource' | 'untagResource'
| 'listTags' | 'listAllNetworkConnectors'>;

/** ClientToken: 1-64 characters. */
const CLIENT_TOKEN_LENGTH = 64;
const NETWORK_PROTOCOLS = ['IPv4', 'DualStack'] as const;
/**
 * How long a Create keeps retrying while IAM propagates a new operator role or its policy
 * (a fresh role is usually assumable within seconds, sometimes after a minute or two). It has to
 * fit in the onEvent function's 5-minute timeout.
 */
const ROLE_PROPAGATION_WINDOW_MS = 150_000;
const ROLE_PROPAGATION_MAX_WAIT_MS = 15_000;

/** What to do about a FAILED connector, per StateReasonCode. */
const REASON_HINTS: Record<string, string> = {
  InsufficientRolePermissions: 'the operator role may not create network interfaces in these subnets with these security groups: check its policy (and any permissions boundary or SCP)',
  InvalidSubnet: 'check that every subnet exists in this Region and that all subnets and security groups belong to one VPC',
  InvalidSecurityGroup: 'check that every security group exists and is in the same VPC as the subnets',
  SubnetOutOfIPAddresses: 'free IP addresses in the subnets or select subnets with more free addresses',
  Ec2RequestLimitExceeded: 'EC2 throttled the network interface calls: retry the deploy',
  DisallowedByVpcEncryptionControl: 'the VPC\'s encryption controls do not allow these network interfaces: adjust the VPC encryption control or use another VPC',
  InternalError: 'the service failed internally: retry the deploy',
};

/**
 * Custom::LambdaNetworkConnector over the Lambda Core API. The physical id is the connector's
 * (unqualified) ARN.
 *
 * - Create: CreateNetworkConnector with a ClientToken derived from the CloudFormation request and
 *   owner and fence tags, then PENDING → ACTIVE; FAILED fails the deploy with the StateReasonCode
 *   and StateReason. It asks for the failed connector's deletion at once; the framework reports
 *   the failure with the connector ARN (isComplete failed), so the rollback's Delete also comes.
 * - Update: a name or compute type other than the physical id's connector has is a new connector,
 *   and CloudFormation deletes the old one. Otherwise in place: tags through TagResource /
 *   UntagResource on the ARN; a configuration or operator role that differs from what the
 *   connector has is an UpdateNetworkConnector, then LastUpdateStatus InProgress → Successful.
 *   The rollback of a failed rename or compute-type change is a no-op on the old connector and
 *   deletes the connector the failed update created, when this resource owns it.
 * - Delete: idempotent, and waits until GetNetworkConnector answers ResourceNotFound. A Delete
 *   with an id CloudFormation generated (a cancelled create) finds the connector by name and
 *   ownership.
 */
export class NetworkConnectorHandler extends CustomResourceHandler<NetworkConnectorProps, ConnectorProgress> {
  protected readonly steps: Steps<NetworkConnectorProps, ConnectorProgress> = {
    create: { check: (e) => this.isActive(e), timedOut: (e) => this.createTimedOut(e) },
    update: {
      check: (e, p) => this.isUpdated(e, p),
      timedOut: (e, p, last) => new ProvisioningError(p.requested
        ? `network connector ${e.ResourceProperties.Name} (${e.PhysicalResourceId}) update did not finish in ${e.ResourceProperties.TimeoutSeconds} seconds (${last}).`
        : `network connector ${e.ResourceProperties.Name} (${e.PhysicalResourceId}) could not be updated: it stayed busy (not ACTIVE, or applying another update) for ${e.ResourceProperties.TimeoutSeconds} seconds.`),
    },
    done: {
      check: (e, p) => this.isDone(e, p),
      timedOut: (e, p, last) => new ProvisioningError(`network connector ${p.orphan} that a failed replacement of ${e.ResourceProperties.Name} left was not deleted in time (${last}).`),
    },
    delete: {
      check: (e, p) => this.isDeleted(e, p),
      timedOut: (e, _p, last) => new ProvisioningError(`network connector ${e.PhysicalResourceId} was not deleted in time (last state ${last}).`),
    },
  };

  /** Update tokens the service accepted in this process: later rounds of the step do not send them again. */
  private readonly requested = new Set<string>();

  constructor(private readonly client: LambdaCoreApi, options: HandlerOptions = {}) {
    super(options);
  }

  private deadline(props: NetworkConnectorProps): number {
    return this.now() + timeoutSeconds(props) * 1000;
  }

  protected async onCreate(event: Event): Promise<OnEventResponse<ConnectorProgress>> {
    const props = event.ResourceProperties;
    const deadline = this.deadline(props);
    const input = {
      Name: requireString(props.Name, 'Name'),
      Configuration: configuration(props),
      OperatorRole: props.OperatorRoleArn || undefined,
      Tags: {
        ...props.Tags,
        [OWNER_TAG_KEY]: ownerOf(event.StackId, event.LogicalResourceId),
        [FENCE_TAG_KEY]: formatFence({ request: requestHash(event.RequestId) }),
      },
      ClientToken: clientToken(CLIENT_TOKEN_LENGTH, event.StackId, event.LogicalResourceId, event.RequestId),
    };
    const giveUpAt = this.now() + ROLE_PROPAGATION_WINDOW_MS;
    let created: NetworkConnector;
    for (let attempt = 1; ; attempt++) {
      try {
        created = await this.client.createNetworkConnector(input);
        break;
      } catch (err) {
        if (classifyError(err) === 'iamPropagation' && this.now() < giveUpAt) {
          const wait = Math.min(ROLE_PROPAGATION_MAX_WAIT_MS, 2000 * attempt);
          log('operator role not usable yet (IAM propagation), retrying', { attempt, waitMs: wait });
          await this.clock.sleep(wait);
          continue;
        }
        throw createError(props, err);
      }
    }
    log('connector creating', { arn: created.Arn, id: created.Id, state: created.State });
    return { PhysicalResourceId: created.Arn, Progress: { op: 'create', deadline } };
  }

  protected async onUpdate(event: Event): Promise<OnEventResponse<ConnectorProgress>> {
    const props = event.ResourceProperties;
    const old = event.OldResourceProperties!;
    const arn = event.PhysicalResourceId!;
    const config = configuration(props);
    // Names are unique and fixed for a connector's life, and a connector serves one compute
    // type: a name or compute type other than the physical id's connector has is a new connector;
    // CloudFormation deletes the old one afterwards.
    const current = await this.connector(arn);
    if (!current || current.Name !== props.Name || !sameComputeType(current, config)) return this.onCreate(event);

    const actual = await this.client.listTags({ Resource: arn });
    const { toSet, toRemove } = userTagChanges(actual, old.Tags, props.Tags);
    if (Object.keys(toSet).length) await this.client.tagResource({ Resource: arn, Tags: toSet });
    if (toRemove.length) await this.client.untagResource({ Resource: arn, TagKeys: toRemove });

    // The rollback of a failed rename or compute-type change: the connector it created, if this
    // resource owns it, must go.
    const orphan = old.Name && (old.Name !== props.Name || old.ComputeType !== props.ComputeType)
      ? await this.ownedConnector(event, old.Name, arn) : undefined;
    // Compared with what the connector has, not with the old properties: a rollback to what it has
    // is no change. While another update applies, what it will have is unknown: send ours after it.
    const busy = current.State !== 'ACTIVE' || current.LastUpdateStatus === 'InProgress';
    const configChanged = busy || !sameConfiguration(current, config, props.OperatorRoleArn);
    // A waiter of an earlier request may still poll: fence it whenever this request decides.
    if (configChanged || orphan || busy) {
      await this.client.tagResource({ Resource: arn, Tags: { [FENCE_TAG_KEY]: formatFence({ request: requestHash(event.RequestId) }) } });
    }
    if (!configChanged) {
      log('no configuration change: connector untouched', { arn, tagsSet: Object.keys(toSet).length, tagsRemoved: toRemove.length });
      return { PhysicalResourceId: arn, Progress: { op: 'done', deadline: this.deadline(props), orphan } };
    }
    const token = clientToken(CLIENT_TOKEN_LENGTH, event.StackId, event.LogicalResourceId, event.RequestId);
    const requested = await this.requestUpdate(arn, props, token);
    return { PhysicalResourceId: arn, Progress: { op: 'update', deadline: this.deadline(props), requested, token, orphan } };
  }

  /** GetNetworkConnector, or undefined when `arn` is not a connector that exists. */
  private async connector(arn: string): Promise<NetworkConnector | undefined> {
    if (!isConnectorArn(arn)) return undefined;
    try {
      return await this.client.getNetworkConnector({ Identifier: arn });
    } catch (err) {
      if (classifyError(err) === 'notFound') return undefined;
      throw err;
    }
  }

  /** The ARN of the connector named `name` (other than `except`) when this stack resource created it; else undefined. */
  private async ownedConnector(event: Event, name: string, except?: string): Promise<string | undefined> {
    const match = (await this.client.listAllNetworkConnectors()).find((c) => c.Name === name && c.Arn !== except);
    if (!match) return undefined;
    try {
      const tags = await this.client.listTags({ Resource: match.Arn });
      return tags[OWNER_TAG_KEY] === ownerOf(event.StackId, event.LogicalResourceId) ? match.Arn : undefined;
    } catch (err) {
      if (classifyError(err) === 'notFound') return undefined;
      throw err;
    }
  }

  /** A waiter whose request no longer holds the connector's fence tag stops without acting. */
  protected async isSuperseded(event: CompleteEvent, progress: ConnectorProgress): Promise<string | undefined> {
    if (progress.op !== 'create' && progress.op !== 'update') return undefined;
    let tags: Record<string, string>;
    try {
      tags = await this.client.listTags({ Resource: event.PhysicalResourceId! });
    } catch (err) {
      if (classifyError(err) === 'notFound') return `connector ${event.PhysicalResourceId} is gone`;
      throw err;
    }
    const fence = parseFence(tags[FENCE_TAG_KEY]);
    return fence && fence.request !== requestHash(event.RequestId) ? `the connector now follows request ${fence.request}` : undefined;
  }

  /**
   * UpdateNetworkConnector with the full configuration. A connector that is not ACTIVE yet, or
   * still applying an earlier update, answers ResourceConflict: isComplete asks again.
   */
  private async requestUpdate(arn: string, props: NetworkConnectorProps, token: string): Promise<boolean> {
    try {
      const r = await this.client.updateNetworkConnector({
        Identifier: arn,
        Configuration: configuration(props),
        OperatorRole: props.OperatorRoleArn || undefined,
        ClientToken: token,
      });
      log('connector updating', { arn, lastUpdateStatus: r.LastUpdateStatus });
      return true;
    } catch (err) {
      const c = classifyError(err);
      if (c === 'conflict' || c === 'busy') {
        log('update refused for now, will retry', { arn, reason: errorMessage(err) });
        return false;
      }
      throw new ProvisioningError(`updating network connector ${props.Name} (${arn}) was rejected: ${errorName(err)}: ${errorMessage(err)}`);
    }
  }

  protected async onDelete(event: Event): Promise<OnEventResponse<ConnectorProgress>> {
    const id = event.PhysicalResourceId!;
    const props = event.ResourceProperties;
    const deadline = this.deadline(props);
    // Not a connector ARN (an id CloudFormation generated after a cancelled create): the connector,
    // if the cancelled create made one, is found by name and ownership.
    const arn = isConnectorArn(id) ? id : props.Name ? await this.ownedConnector(event, props.Name) : undefined;
    if (!arn) return { PhysicalResourceId: id, Progress: { op: 'delete', deadline, gone: true } };
    const outcome = await this.requestConnectorDelete(arn);
    return { PhysicalResourceId: id, Progress: { op: 'delete', deadline, gone: outcome.kind === 'gone', arn } };
  }

  private async isActive(event: CompleteEvent): Promise<StepResult> {
    const arn = event.PhysicalResourceId!;
    const props = event.ResourceProperties;
    const c = await this.client.getNetworkConnector({ Identifier: arn });
    if (c.State === 'ACTIVE') return { IsComplete: true, Data: data(c) };
    if (c.State === 'FAILED') {
      const cleanup = await this.cleanUpAfterFailedCreate(arn);
      throw new ProvisioningError(`network connector ${props.Name} (${arn}) failed to create: ${failure(c.StateReasonCode, c.StateReason)}.${cleanup}`);
    }
    if (c.State !== 'PENDING') {
      throw new ProvisioningError(`network connector ${props.Name} (${arn}) is ${c.State} while being created${c.StateReason ? `: ${c.StateReason}` : ''}.`);
    }
    log('waiting for connector', { arn, state: c.State });
    return { IsComplete: false, lastState: c.State };
  }

  private async createTimedOut(event: CompleteEvent): Promise<Error> {
    const arn = event.PhysicalResourceId!;
    const props = event.ResourceProperties;
    const cleanup = await this.cleanUpAfterFailedCreate(arn);
    return new ProvisioningError(`network connector ${props.Name} (${arn}) was still PENDING after ${timeoutSeconds(props)} seconds.${cleanup}`);
  }

  /** Asks for the failed connector's deletion at once (the rollback's Delete then waits until it is gone). */
  private async cleanUpAfterFailedCreate(arn: string): Promise<string> {
    try {
      await this.requestConnectorDelete(arn);
      return ' The connector this deploy created is being deleted.';
    } catch (err) {
      return ` The connector this deploy created could not be deleted (${errorMessage(err)}): delete ${arn} by hand.`;
    }
  }

  private async isUpdated(event: CompleteEvent, progress: UpdateProgress): Promise<StepResult> {
    const arn = event.PhysicalResourceId!;
    const props = event.ResourceProperties;
    const orphan = await this.orphanGone(progress.orphan);
    if (orphan) return orphan;
    if (!progress.requested && !this.requested.has(progress.token)) {
      const requested = await this.requestUpdate(arn, props, progress.token);
      // The framework hands isComplete the same event every time: the next poll re-sends the
      // update with the same ClientToken, which the service answers without applying it twice.
      // Within one call (the rounds of one step) it is sent once.
      if (!requested) return { IsComplete: false, lastState: 'busy' };
      this.requested.add(progress.token);
    }
    const c = await this.client.getNetworkConnector({ Identifier: arn });
    if (c.LastUpdateStatus === 'Failed') {
      throw new ProvisioningError(`network connector ${props.Name} (${arn}) failed to update: ${failure(c.LastUpdateStatusReasonCode, c.LastUpdateStatusReason)}. ` +
        'The connector keeps its previous configuration.');
    }
    if (c.LastUpdateStatus === 'Successful' && c.State === 'ACTIVE') return { IsComplete: true, Data: data(c) };
    log('waiting for connector update', { arn, state: c.State, lastUpdateStatus: c.LastUpdateStatus });
    return { IsComplete: false, lastState: `state ${c.State}, last update ${c.LastUpdateStatus}` };
  }

  private async isDone(event: CompleteEvent, progress: ProgressOf<ConnectorProgress, 'done'>): Promise<StepResult> {
    const orphan = await this.orphanGone(progress.orphan);
    if (orphan) return orphan;
    const c = await this.client.getNetworkConnector({ Identifier: event.PhysicalResourceId! });
    return { IsComplete: true, Data: data(c) };
  }

  /** Undefined once the connector a failed replacement left is gone; else the not-yet answer. */
  private async orphanGone(orphan: string | undefined): Promise<StepResult | undefined> {
    if (!orphan) return undefined;
    const poll = await this.deletePoll(orphan);
    return poll.gone ? undefined : { IsComplete: false, lastState: `connector ${orphan} is ${poll.lastState}` };
  }

  private async isDeleted(event: CompleteEvent, progress: ProgressOf<ConnectorProgress, 'delete'>): Promise<StepResult> {
    if (progress.gone) return { IsComplete: true };
    const poll = await this.deletePoll(progress.arn ?? event.PhysicalResourceId!);
    return poll.gone ? { IsComplete: true } : { IsComplete: false, lastState: poll.lastState };
  }

  /** One "delete until not found" poll; PENDING, or an update still applying, refused the delete: it asks again. */
  private deletePoll(arn: string) {
    return pollDelete({
      what: `network connector ${arn}`,
      state: async () => (await this.client.getNetworkConnector({ Identifier: arn })).State,
      send: () => this.client.deleteNetworkConnector({ Identifier: arn }),
      deletingStates: ['DELETING'],
      failedStates: ['DELETE_FAILED'],
      failedHint: 'Retry the stack delete, or delete the connector by hand.',
    });
  }

  /** DeleteNetworkConnector once: gone, requested, or refused for now (isComplete asks again). */
  private requestConnectorDelete(arn: string) {
    return requestDelete(`network connector ${arn}`, () => this.client.deleteNetworkConnector({ Identifier: arn }));
  }
}

/** The API's configuration union from the wire properties (checked: a malformed one is a construct/handler version mismatch). */
export function configuration(props: NetworkConnectorProps): NetworkConnectorConfiguration {
  if (!Array.isArray(props.SubnetIds) || props.SubnetIds.length === 0) throw new WireMismatchError('SubnetIds', props.SubnetIds, 'a list of 1 to 16 subnet ids');
  return {
    VpcEgressConfiguration: {
      SubnetIds: [...props.SubnetIds],
      SecurityGroupIds: [...(props.SecurityGroupIds ?? [])],
      NetworkProtocol: requireOneOf(props.NetworkProtocol, 'NetworkProtocol', NETWORK_PROTOCOLS),
      AssociatedComputeResourceTypes: [requireString(props.ComputeType, 'ComputeType')],
    },
  };
}

function timeoutSeconds(props: NetworkConnectorProps): number {
  return requireInt(props.TimeoutSeconds, 'TimeoutSeconds', 1, MAX_HANDLER_WAIT_SECONDS);
}

function isConnectorArn(id: string): boolean {
  return id.includes(':network-connector:');
}

/** The connector serves the compute type `config` asks for. */
function sameComputeType(c: NetworkConnector, config: NetworkConnectorConfiguration): boolean {
  const have = c.Configuration?.VpcEgressConfiguration?.AssociatedComputeResourceTypes ?? [];
  return canonical([...have].sort()) === canonical([...config.VpcEgressConfiguration!.AssociatedComputeResourceTypes!].sort());
}

/** The connector has `config` and the operator role (lists compared as sets). */
function sameConfiguration(c: NetworkConnector, config: NetworkConnectorConfiguration, operatorRole: string | undefined): boolean {
  const norm = (v: NetworkConnectorConfiguration['VpcEgressConfiguration']) => ({
    SubnetIds: [...(v?.SubnetIds ?? [])].sort(),
    SecurityGroupIds: [...(v?.SecurityGroupIds ?? [])].sort(),
    NetworkProtocol: v?.NetworkProtocol,
    AssociatedComputeResourceTypes: [...(v?.AssociatedComputeResourceTypes ?? [])].sort(),
  });
  return canonical(norm(c.Configuration?.VpcEgressConfiguration)) === canonical(norm(config.VpcEgressConfiguration))
    && (c.OperatorRole ?? '') === (operatorRole ?? '');
}

function createError(props: NetworkConnectorProps, err: unknown): Error {
  const c = classifyError(err);
  if (c === 'conflict') {
    return new ProvisioningError(`a network connector named '${props.Name}' already exists in this account and Region: ${errorMessage(err)}. ` +
      'Names are unique: choose another `networkConnectorName`, or import the existing connector with NetworkConnector.fromNetworkConnectorArn.');
  }
  if (c === 'iamPropagation') {
    return new ProvisioningError(`network connector ${props.Name}: the service could not use the operator role ${props.OperatorRoleArn} ` +
      `for ${ROLE_PROPAGATION_WINDOW_MS / 1000} seconds: ${errorMessage(err)}. Check that the role trusts lambda.amazonaws.com and may create network interfaces.`);
  }
  if (c === 'quota') {
    return new ProvisioningError(`network connector ${props.Name}: ${errorMessage(err)} Delete unused connectors or request a quota increase through Service Quotas.`);
  }
  if (c === 'fatal') {
    return new ProvisioningError(`network connector ${props.Name} was rejected: ${errorName(err)}: ${errorMessage(err)}`);
  }
  return err as Error;
}

function failure(code: string | undefined, reason: string | undefined): string {
  const hint = code ? REASON_HINTS[code] : undefined;
  return `${code ?? 'no reason code'}: ${reason ?? 'the service gave no reason'}${hint ? ` (${hint})` : ''}`;
}

function data(c: NetworkConnector): Record<string, string> {
  return {
    [NetworkConnectorAttr.NETWORK_CONNECTOR_ARN]: c.Arn,
    [NetworkConnectorAttr.NETWORK_CONNECTOR_ID]: c.Id,
    [NetworkConnectorAttr.NETWORK_CONNECTOR_NAME]: c.Name,
  };
}
