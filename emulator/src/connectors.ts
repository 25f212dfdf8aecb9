/**
 * Lambda Core network connectors: Create/Get/List/Update/DeleteNetworkConnector, and the connector checks of
 * image egress and RunMicrovm. Answers as recorded (recorded-facts.md, "Network connectors").
 */
import { randomUUID } from 'node:crypto';
import { coreErr, mvErr } from './errors';
import { hiddenByConsistency, takeConnectorFailure } from './faults';
import { Connector, ConnectorVersion, EGRESS_NAMES, GoneState, INGRESS_NAMES, MANAGED_CONNECTOR_NAMES } from './records';
import type { MicrovmsService } from './service';
import { Timeline } from './timeline';
import { Result, canonical, clone, iso, orNull, paginate } from './util';
import type { CreateNetworkConnectorInput, ListNetworkConnectorsInput, NetworkConnectorConfiguration, UpdateNetworkConnectorInput } from '../../lambda/shared/lambda-core-client';

export class ConnectorsApi {
  constructor(private readonly svc: MicrovmsService) {}

  /** Validates connector ARNs for image egress or RunMicrovm. */
  checkConnectors(arns: string[], kind: 'ingress' | 'egress', member: string): void {
    for (const arn of arns) {
      const managed = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):aws:network-connector:aws-network-connector:([A-Z_]+)$/.exec(arn);
      if (managed) {
        if (managed[1] !== this.svc.region || !MANAGED_CONNECTOR_NAMES.includes(managed[2])) {
          throw mvErr.validation(`Invalid network connector ARN in ${member}: ${arn}`);
        }
        const ok = kind === 'ingress' ? INGRESS_NAMES.has(managed[2]) : EGRESS_NAMES.has(managed[2]);
        if (!ok) throw mvErr.validation(`Network connector ${arn} cannot be used as an ${kind} network connector.`);
        continue;
      }
      const own = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):network-connector:([a-zA-Z0-9-_]+)$/.exec(arn);
      if (!own) throw mvErr.validation(`Invalid network connector ARN in ${member}: ${arn}`);
      if (kind === 'ingress') throw mvErr.validation(`Network connector ${arn} cannot be used as an ingress network connector.`);
      const c = own[1] === this.svc.region && own[2] === this.svc.account ? this.svc.connectors.get(own[3]) : undefined;
      if (!c) throw mvErr.notFound(`Network connector not found: ${arn}`, arn, 'NetworkConnector');
      const st = this.connectorState(c);
      if (st !== 'ACTIVE') throw mvErr.validation(`Network connector ${arn} is in state ${st}; it must be ACTIVE.`);
    }
  }

  connectorState(c: Connector, t = this.svc.now()): string {
    if (c.deleteTl) return 'DELETING';
    return c.tl.state(t);
  }

  /** Applies a finished successful update (new immutable version). */
  private settleConnector(c: Connector, t = this.svc.now()): void {
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

  findConnector(identifier: string): { c?: Connector; version?: number; arn: string } {
    const m = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}|aws):network-connector:([a-zA-Z0-9-_]+)(?::(\d+))?$/.exec(identifier);
    if (m) {
      const arn = `arn:aws:lambda:${m[1]}:${m[2]}:network-connector:${m[3]}`;
      if (m[1] !== this.svc.region || m[2] !== this.svc.account) return { arn: identifier };
      return { c: this.svc.connectors.get(m[3]), version: m[4] !== undefined ? Number(m[4]) : undefined, arn };
    }
    const byId = this.svc.connectors.get(identifier);
    if (byId) return { c: byId, arn: byId.arn };
    for (const c of this.svc.connectors.values()) if (c.name === identifier) return { c, arn: c.arn };
    return { arn: this.svc.connectorArn(identifier) };
  }

  private requireConnector(identifier: string, forGet = false): { c: Connector; version?: number } {
    const r = this.findConnector(identifier);
    if (!r.c || (forGet && hiddenByConsistency(this.svc.faults, this.svc.now(), 'connector', r.c.createdAt))) {
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

  connectorView(c: Connector, t = this.svc.now(), pinned?: number): Record<string, unknown> {
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

  createNetworkConnector(input: CreateNetworkConnectorInput): Result {
    const t = this.svc.now();
    requireConnectorMembers(input, true);
    const ctx = this.svc.idem('CreateNetworkConnector', input.ClientToken, input, 'ClientToken', 'core');
    if (ctx?.replay) return ctx.replay;
    const name: string = input.Name;
    if (name.startsWith('arn:')) throw coreErr.invalidParameter(`Invalid network connector name: ${name}. Specify a name, not an ARN, when creating a network connector.`);
    for (const c of this.svc.connectors.values()) {
      if (c.name === name) throw coreErr.conflict(`Network connector already exists with name: ${name}`);
    }
    if (this.svc.connectors.size >= this.svc.settings.connectorQuota) {
      throw coreErr.limit(`The account has reached the maximum number of network connectors (${this.svc.settings.connectorQuota}). Request a limit increase through Service Quotas.`);
    }
    const vpc = input.Configuration?.VpcEgressConfiguration;
    if (vpc && (!vpc.SubnetIds || vpc.SubnetIds.length === 0)) throw coreErr.invalidParameter('VpcEgressConfiguration.SubnetIds must contain at least one subnet.');
    const id = `nc-${randomUUID()}`; // recorded: nc-<uuid>
    const failure = takeConnectorFailure(this.svc.faults, 'create', [name]);
    const configuration = normalizeConnectorConfig(input.Configuration);
    const c: Connector = {
      id,
      name,
      arn: this.svc.connectorArn(id),
      createdAt: t,
      tags: { ...(input.Tags ?? {}) },
      versions: [{ version: 1, configuration, operatorRole: orNull(input.OperatorRole), lastModified: t }],
      tl: new Timeline({ state: 'PENDING', at: t }),
    };
    const doneAt = t + this.svc.delays.connectorCreate;
    c.tl.push(failure ? { state: 'FAILED', at: doneAt, reason: failure.reason, code: failure.code } : { state: 'ACTIVE', at: doneAt, reason: 'Initial creation' });
    this.svc.connectors.set(id, c);
    const body = { ...this.connectorBase(c, c.versions[0]), State: 'PENDING' };
    return this.svc.remember(ctx, { status: 202, body }, 202);
  }

  getNetworkConnector(input: { Identifier: string }): Result {
    const { c, version } = this.requireConnector(input.Identifier, true);
    if (version !== undefined && !c.versions.some((v) => v.version === version)) {
      throw coreErr.notFound(`Network connector not found for: ${input.Identifier}`);
    }
    return { body: this.connectorView(c, this.svc.now(), version) };
  }

  listNetworkConnectors(input: ListNetworkConnectorsInput): Result {
    const t = this.svc.now();
    let cs = [...this.svc.connectors.values()].sort((a, b) => a.createdAt - b.createdAt);
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

  updateNetworkConnector(input: UpdateNetworkConnectorInput): Result {
    const t = this.svc.now();
    requireConnectorMembers(input, false);
    const ctx = this.svc.idem('UpdateNetworkConnector', input.ClientToken, input, 'ClientToken', 'core');
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
      const failure = takeConnectorFailure(this.svc.faults, 'update', [c.name, c.id]);
      const tl = new Timeline<'InProgress' | 'Successful' | 'Failed'>({ state: 'InProgress', at: t });
      const doneAt = t + this.svc.delays.connectorUpdate;
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
    return this.svc.remember(ctx, { status: 202, body }, 202);
  }

  deleteNetworkConnector(input: { Identifier: string }): Result {
    const t = this.svc.now();
    const r = this.findConnector(input.Identifier);
    if (!r.c) {
      const tomb = [...this.svc.deletedConnectors.values()].find((d) => d.id === input.Identifier || d.name === input.Identifier || d.arn === r.arn);
      if (tomb) return { status: 202, body: { Arn: tomb.arn, Id: tomb.id, Name: tomb.name } }; // idempotent per model doc
      throw coreErr.notFound(`Network connector not found for: ${r.arn}`);
    }
    const c = r.c;
    this.settleConnector(c, t);
    const latest = c.versions[c.versions.length - 1];
    if (!c.deleteTl) {
      const st = this.connectorState(c, t);
      if (st !== 'ACTIVE' && st !== 'FAILED') throw coreErr.conflict(`Network connector ${c.id} is in state ${st}; only ACTIVE or FAILED connectors can be deleted.`);
      c.deleteTl = new Timeline<GoneState>({ state: 'DELETING', at: t }).push({ state: 'GONE', at: t + this.svc.delays.connectorDelete });
    }
    return { status: 202, body: { ...this.connectorBase(c, latest), State: 'DELETING' } };
  }
}


/**
 * Recorded (recorded-facts.md, Network connectors): ClientToken, OperatorRole, NetworkProtocol and
 * AssociatedComputeResourceTypes are enforced although the model marks them optional, with 400
 * InvalidParameterValueException and a prose message. Runs after the model's own checks.
 */
function requireConnectorMembers(input: CreateNetworkConnectorInput | UpdateNetworkConnectorInput, create: boolean): void {
  if (typeof input.ClientToken !== 'string' || input.ClientToken === '') throw coreErr.invalidParameter('ClientToken is a required field');
  if (typeof input.OperatorRole !== 'string' || input.OperatorRole === '') throw coreErr.invalidParameter('NetworkConnectorOperatorRole is required for VPC_EGRESS connector type');
  const vpc = input.Configuration?.VpcEgressConfiguration;
  if (!vpc && !create) return;
  if (!vpc?.NetworkProtocol) throw coreErr.invalidParameter('NetworkProtocol is required for VPC_EGRESS connector type');
  if (!vpc.AssociatedComputeResourceTypes?.length) throw coreErr.invalidParameter('AssociatedComputeResourceTypes is required for VPC_EGRESS connector type');
}

function normalizeConnectorConfig(cfg: NetworkConnectorConfiguration | undefined): NetworkConnectorConfiguration {
  const v = cfg?.VpcEgressConfiguration ?? {};
  const out: Record<string, unknown> = {
    AssociatedComputeResourceTypes: v.AssociatedComputeResourceTypes ?? ['MicroVm'],
    NetworkProtocol: v.NetworkProtocol ?? 'IPv4',
    SecurityGroupIds: v.SecurityGroupIds ?? [],
    SubnetIds: v.SubnetIds ?? [],
  };
  return { VpcEgressConfiguration: out };
}
