import { NetworkConnectorAttr, NetworkConnectorProps } from '../../src/private/wire';
import { errorMessage, errorName, isConflict, isNotFound } from '../shared/errors';
import { CustomResourceHandler, ProvisioningError } from '../shared/framework';
import type { CompleteStep, HandlerOptions, IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse, Progress } from '../shared/framework';
import type { LambdaCoreClient, NetworkConnector, NetworkConnectorConfiguration } from '../shared/lambda-core-client';
import { log } from '../shared/log';
import { canonical, diffTags, toInt } from '../shared/props';
import { realSleep } from '../shared/retry';
import { clientToken } from '../shared/tokens';

type Event = OnEventRequest<NetworkConnectorProps>;
type CompleteEvent = IsCompleteRequest<NetworkConnectorProps>;

/** The Lambda Core client calls this handler makes. */
export type LambdaCoreApi = Pick<LambdaCoreClient,
'createNetworkConnector' | 'getNetworkConnector' | 'updateNetworkConnector' | 'deleteNetworkConnector' | 'tagResource' | 'untagResource'>;

/** ClientToken: 1-64 characters. */
const CLIENT_TOKEN_LENGTH = 64;
const DEFAULT_TIMEOUT_SECONDS = 1800;
/**
 * How long a Create keeps retrying while IAM propagates a new operator role or its policy
 * (a fresh role is usually assumable within seconds, sometimes after a minute or two). It has to
 * fit in the onEvent function's 5-minute timeout.
 */
const ROLE_PROPAGATION_WINDOW_MS = 150_000;
const ROLE_PROPAGATION_MAX_WAIT_MS = 15_000;

/**
 * CreateNetworkConnector validates the operator role synchronously; these InvalidParameterValue
 * messages mean "not yet" while IAM propagates (the messages Terraform's provider retries on).
 */
const ROLE_PROPAGATION_MESSAGES = [
  /unable to assume the provided NetworkConnectorOperatorRole/i,
  /unauthorized operation while calling EC2 due to invalid ConnectorOperatorRole permissions/i,
];

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

export interface NetworkConnectorHandlerOptions extends HandlerOptions {
  /** How the operator-role propagation retries wait. Tests advance the emulator's clock. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Custom::LambdaNetworkConnector over the Lambda Core API. The physical id is the connector's
 * (unqualified) ARN.
 *
 * - Create: CreateNetworkConnector with a ClientToken derived from the CloudFormation request,
 *   then PENDING → ACTIVE; FAILED fails the deploy with the StateReasonCode and StateReason, after
 *   deleting the failed connector (no Delete follows a failed Create).
 * - Update: a new name (or compute type) is a new connector, and CloudFormation deletes the old
 *   one; tags go through TagResource / UntagResource on the ARN; a configuration or operator role
 *   change is an UpdateNetworkConnector in place, then LastUpdateStatus InProgress → Successful.
 * - Delete: idempotent, and waits until GetNetworkConnector answers ResourceNotFound.
 */
export class NetworkConnectorHandler extends CustomResourceHandler<NetworkConnectorProps> {
  private readonly sleep: (ms: number) => Promise<void>;

  protected readonly steps: Record<string, CompleteStep<NetworkConnectorProps>> = {
    create: this.isActive,
    update: this.isUpdated,
    done: this.isDone,
    delete: this.isDeleted,
  };

  constructor(private readonly client: LambdaCoreApi, options: NetworkConnectorHandlerOptions = {}) {
    super(options);
    this.sleep = options.sleep ?? realSleep;
  }

  private deadline(props: NetworkConnectorProps): number {
    return this.now() + (toInt(props.TimeoutSeconds, 'TimeoutSeconds') ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
  }

  protected async onCreate(event: Event): Promise<OnEventResponse> {
    const props = event.ResourceProperties;
    const input = {
      Name: props.Name,
      Configuration: configuration(props),
      OperatorRole: props.OperatorRoleArn || undefined,
      Tags: props.Tags && Object.keys(props.Tags).length ? props.Tags : undefined,
      ClientToken: clientToken(CLIENT_TOKEN_LENGTH, event.StackId, event.LogicalResourceId, event.RequestId),
    };
    const giveUpAt = this.now() + ROLE_PROPAGATION_WINDOW_MS;
    let created: NetworkConnector;
    for (let attempt = 1; ; attempt++) {
      try {
        created = await this.client.createNetworkConnector(input);
        break;
      } catch (err) {
        if (isRolePropagation(err) && this.now() < giveUpAt) {
          const wait = Math.min(ROLE_PROPAGATION_MAX_WAIT_MS, 2000 * attempt);
          log('operator role not usable yet (IAM propagation), retrying', { attempt, waitMs: wait });
          await this.sleep(wait);
          continue;
        }
        throw createError(props, err);
      }
    }
    log('connector creating', { arn: created.Arn, id: created.Id, state: created.State });
    return { PhysicalResourceId: created.Arn, Progress: { op: 'create', deadline: this.deadline(props) } };
  }

  protected async onUpdate(event: Event): Promise<OnEventResponse> {
    const props = event.ResourceProperties;
    const old = event.OldResourceProperties!;
    const arn = event.PhysicalResourceId!;
    // Names are unique and fixed for a connector's life, and a connector serves one compute
    // type: either change is a new connector; CloudFormation deletes the old one afterwards.
    if (props.Name !== old.Name || props.ComputeType !== old.ComputeType) return this.onCreate(event);

    const { toSet, toRemove } = diffTags(old.Tags, props.Tags);
    if (Object.keys(toSet).length) await this.client.tagResource({ Resource: arn, Tags: toSet });
    if (toRemove.length) await this.client.untagResource({ Resource: arn, TagKeys: toRemove });

    const configChanged = canonical(configuration(props)) !== canonical(configuration(old)) || (props.OperatorRoleArn ?? '') !== (old.OperatorRoleArn ?? '');
    if (!configChanged) {
      log('no configuration change: connector untouched', { arn, tagsSet: Object.keys(toSet).length, tagsRemoved: toRemove.length });
      return { PhysicalResourceId: arn, Progress: { op: 'done', deadline: 0 } };
    }
    const token = clientToken(CLIENT_TOKEN_LENGTH, event.StackId, event.LogicalResourceId, event.RequestId);
    const requested = await this.requestUpdate(arn, props, token);
    return { PhysicalResourceId: arn, Progress: { op: 'update', deadline: this.deadline(props), requested, token } };
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
      if (isConflict(err)) {
        log('update refused for now, will retry', { arn, reason: errorMessage(err) });
        return false;
      }
      throw new ProvisioningError(`updating network connector ${props.Name} (${arn}) was rejected: ${errorName(err)}: ${errorMessage(err)}`);
    }
  }

  protected async onDelete(event: Event): Promise<OnEventResponse> {
    const arn = event.PhysicalResourceId!;
    const progress: Progress = { op: 'delete', deadline: this.deadline(event.ResourceProperties) };
    // Not a connector ARN: nothing was ever created under this id.
    if (!arn.includes(':network-connector:')) return { PhysicalResourceId: arn, Progress: { ...progress, gone: true } };
    const gone = await this.requestDelete(arn);
    return { PhysicalResourceId: arn, Progress: { ...progress, gone } };
  }

  private async isActive(event: CompleteEvent, progress: Progress): Promise<IsCompleteResponse> {
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
    if (this.now() > progress.deadline) {
      const cleanup = await this.cleanUpAfterFailedCreate(arn);
      throw new ProvisioningError(`network connector ${props.Name} (${arn}) was still PENDING after ${props.TimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS} seconds.${cleanup}`);
    }
    log('waiting for connector', { arn, state: c.State });
    return { IsComplete: false };
  }

  /** A failed Create gets no Delete from the framework: remove what this deploy made. */
  private async cleanUpAfterFailedCreate(arn: string): Promise<string> {
    try {
      await this.requestDelete(arn);
      return ' The connector this deploy created is being deleted.';
    } catch (err) {
      return ` The connector this deploy created could not be deleted (${errorMessage(err)}): delete ${arn} by hand.`;
    }
  }

  private async isUpdated(event: CompleteEvent, progress: Progress): Promise<IsCompleteResponse> {
    const arn = event.PhysicalResourceId!;
    const props = event.ResourceProperties;
    if (!progress.requested) {
      if (this.now() > progress.deadline) {
        throw new ProvisioningError(`network connector ${props.Name} (${arn}) could not be updated: it stayed busy (not ACTIVE, or applying another update) for ${props.TimeoutSeconds} seconds.`);
      }
      const requested = await this.requestUpdate(arn, props, progress.token as string);
      // The framework hands isComplete the same event every time: the next poll re-sends the
      // update with the same ClientToken, which the service answers without applying it twice.
      if (!requested) return { IsComplete: false };
    }
    const c = await this.client.getNetworkConnector({ Identifier: arn });
    if (c.LastUpdateStatus === 'Failed') {
      throw new ProvisioningError(`network connector ${props.Name} (${arn}) failed to update: ${failure(c.LastUpdateStatusReasonCode, c.LastUpdateStatusReason)}. ` +
        'The connector keeps its previous configuration.');
    }
    if (c.LastUpdateStatus === 'Successful' && c.State === 'ACTIVE') return { IsComplete: true, Data: data(c) };
    if (this.now() > progress.deadline) {
      throw new ProvisioningError(`network connector ${props.Name} (${arn}) update did not finish in ${props.TimeoutSeconds} seconds (state ${c.State}, last update ${c.LastUpdateStatus}).`);
    }
    log('waiting for connector update', { arn, state: c.State, lastUpdateStatus: c.LastUpdateStatus });
    return { IsComplete: false };
  }

  private async isDone(event: CompleteEvent): Promise<IsCompleteResponse> {
    const c = await this.client.getNetworkConnector({ Identifier: event.PhysicalResourceId! });
    return { IsComplete: true, Data: data(c) };
  }

  private async isDeleted(event: CompleteEvent, progress: Progress): Promise<IsCompleteResponse> {
    if (progress.gone) return { IsComplete: true };
    const arn = event.PhysicalResourceId!;
    let c: NetworkConnector;
    try {
      c = await this.client.getNetworkConnector({ Identifier: arn });
    } catch (err) {
      if (isNotFound(err)) return { IsComplete: true };
      throw err;
    }
    if (c.State === 'DELETE_FAILED') {
      throw new ProvisioningError(`deleting network connector ${arn} failed (DELETE_FAILED${c.StateReason ? `: ${c.StateReason}` : ''}). ` +
        'Retry the stack delete, or delete the connector by hand.');
    }
    // PENDING, or an update still applying, refused the delete: ask again now it may be settled.
    if (c.State !== 'DELETING' && await this.requestDelete(arn)) return { IsComplete: true };
    if (this.now() > progress.deadline) {
      throw new ProvisioningError(`network connector ${arn} was not deleted in time (last state ${c.State}).`);
    }
    return { IsComplete: false };
  }

  /** DeleteNetworkConnector. True when the connector is already gone; a refusal is retried by isComplete. */
  private async requestDelete(arn: string): Promise<boolean> {
    try {
      await this.client.deleteNetworkConnector({ Identifier: arn });
      return false;
    } catch (err) {
      if (isNotFound(err)) return true;
      if (isConflict(err)) {
        log('delete refused for now, will retry', { arn, reason: errorMessage(err) });
        return false;
      }
      throw err;
    }
  }
}

/** The API's configuration union from the wire properties. */
export function configuration(props: NetworkConnectorProps): NetworkConnectorConfiguration {
  return {
    VpcEgressConfiguration: {
      SubnetIds: [...(props.SubnetIds ?? [])],
      SecurityGroupIds: [...(props.SecurityGroupIds ?? [])],
      NetworkProtocol: props.NetworkProtocol,
      AssociatedComputeResourceTypes: [props.ComputeType],
    },
  };
}

function isRolePropagation(err: unknown): boolean {
  return errorName(err) === 'InvalidParameterValueException' && ROLE_PROPAGATION_MESSAGES.some((re) => re.test(errorMessage(err)));
}

function createError(props: NetworkConnectorProps, err: unknown): Error {
  const name = errorName(err);
  if (isConflict(err)) {
    return new ProvisioningError(`a network connector named '${props.Name}' already exists in this account and Region: ${errorMessage(err)}. ` +
      'Names are unique: choose another `networkConnectorName`, or import the existing connector with NetworkConnector.fromNetworkConnectorArn.');
  }
  if (isRolePropagation(err)) {
    return new ProvisioningError(`network connector ${props.Name}: the service could not use the operator role ${props.OperatorRoleArn} ` +
      `for ${ROLE_PROPAGATION_WINDOW_MS / 1000} seconds: ${errorMessage(err)}. Check that the role trusts lambda.amazonaws.com and may create network interfaces.`);
  }
  if (name === 'NetworkConnectorLimitExceededException') {
    return new ProvisioningError(`network connector ${props.Name}: ${errorMessage(err)} Delete unused connectors or request a quota increase through Service Quotas.`);
  }
  if (name === 'InvalidParameterValueException') {
    return new ProvisioningError(`network connector ${props.Name} was rejected: ${errorMessage(err)}`);
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
