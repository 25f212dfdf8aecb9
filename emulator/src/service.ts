/**
 * The emulated control plane: the state (images, versions, MicroVMs, connectors, idempotency records,
 * injected faults) and the operations, one module per resource family (images.ts, microvms.ts,
 * connectors.ts, tags.ts). All state transitions are lazy (see timeline.ts): mutations write the
 * planned future of a resource, reads resolve it against the clock.
 */
import { Clock } from './clock';
import { ConnectorsApi } from './connectors';
import { coreErr, mvErr } from './errors';
import { Faults } from './faults';
import { ImagesApi } from './images';
import { MicrovmsApi } from './microvms';
import { OPERATION_NAMES } from './model';
import { Connector, Delays, Image, MANAGED_IMAGE_NAME, Microvm, ServiceSettings } from './records';
import { TagsApi } from './tags';
import { Timeline } from './timeline';
import { Result, clone, hashParams, iso } from './util';

/** One operation: its input as the server parsed it from the request (shape-checked against the model). */
export type Operation = (input: Record<string, unknown>) => Result;

export class MicrovmsService {
  images = new Map<string, Image>(); // by name
  microvms = new Map<string, Microvm>(); // by id
  connectors = new Map<string, Connector>(); // by id
  deletedConnectors = new Map<string, { id: string; name: string; arn: string }>();
  idempotency = new Map<string, { hash: string; status: number; body: unknown }>();
  faults: Faults = { buildFailures: [], connectorFailures: [], operations: [] };
  /** Called after each accepted RunMicrovm (the endpoint uses it for the `/run` hook). */
  onLaunch?: (vm: Microvm) => void;
  /** The operations, one module per resource family. */
  readonly imagesApi = new ImagesApi(this);
  readonly microvmsApi = new MicrovmsApi(this);
  readonly connectorsApi = new ConnectorsApi(this);
  readonly tagsApi = new TagsApi(this);

  /** Route table: each operation of the models to the family method named after it (CreateMicrovmImage → createMicrovmImage). */
  readonly operations: ReadonlyMap<string, Operation>;

  constructor(public readonly settings: ServiceSettings) {
    const families = [this.imagesApi, this.microvmsApi, this.connectorsApi, this.tagsApi];
    const table = new Map<string, Operation>();
    for (const name of OPERATION_NAMES) {
      const method = `${name[0].toLowerCase()}${name.slice(1)}`;
      const family = families.find((f) => typeof (f as unknown as Record<string, unknown>)[method] === 'function');
      if (!family) throw new Error(`no family answers ${name} (a method ${method})`);
      const fn = (family as unknown as Record<string, Operation>)[method];
      table.set(name, (input) => fn.call(family, input));
    }
    this.operations = table;
  }

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
          if (img.lastOp.version === v) img.frozenOpState = this.imagesApi.imageOpState(img, t, ver);
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

  idem(op: string, token: unknown, input: object, tokenMember: string, service: 'microvms' | 'core'): { key: string; hash: string; replay?: Result } | undefined {
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
  remember(ctx: { key: string; hash: string } | undefined, res: Result, status: number): Result {
    if (ctx) this.idempotency.set(ctx.key, { hash: ctx.hash, status, body: clone(res.body) });
    return res;
  }

  // ================================================================================================
  // Admin: holds and snapshot

  /** Timelines of a resource named by id, ARN or name (image name/ARN, MicroVM id, connector id/name/ARN). */
  private timelinesOf(ref: string): Timeline<string>[] | undefined {
    const img = this.imagesApi.findImage(ref);
    if (img) {
      const tls: Timeline<string>[] = [];
      const v = img.versions.get(img.lastOp.version);
      if (v) tls.push(v.tl);
      if (img.deleteTl) tls.push(img.deleteTl);
      for (const ver of img.versions.values()) if (ver.deleteTl) tls.push(ver.deleteTl);
      return tls;
    }
    const vm = this.microvmsApi.findMicrovm(ref);
    if (vm) return [vm.tl];
    const { c } = this.connectorsApi.findConnector(ref);
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
        ...this.imagesApi.imageView(img, t),
        versions: this.imagesApi.liveVersions(img).map((v) => ({
          ...this.imagesApi.versionView(img, v, t),
          builds: v.builds.map((b) => this.imagesApi.buildView(img, v, b, t, true)),
        })),
      })),
      microvms: [...this.microvms.values()].map((vm) => ({ ...this.microvmsApi.microvmView(vm, t), memoryMiB: vm.memoryMiB })),
      connectors: [...this.connectors.values()].map((c) => ({ ...this.connectorsApi.connectorView(c, t), Tags: { ...c.tags } })),
      tags: Object.fromEntries([
        ...[...this.images.values()].map((i) => [i.arn, { ...i.tags }]),
        ...[...this.connectors.values()].map((c) => [c.arn, { ...c.tags }]),
      ]),
      memoryInUseMiB: this.microvmsApi.memoryInUse(t),
      memoryQuotaMiB: this.settings.memoryQuotaMiB,
    };
  }
}

// What other modules (index.ts, server.ts, endpoint.ts) import from here.
export { DEFAULT_DELAYS, BUILD_FAILURE_MESSAGES, CONNECTOR_REASON_CODES, MANAGED_CONNECTOR_NAMES } from './records';
export type { Delays, Microvm, TokenClaims, EndpointAccess, ServiceSettings } from './records';
export type { BuildFailureFault, ConnectorFailureFault, OperationFault, EventualConsistencyFault } from './faults';
export type { Result } from './util';
export { paginate } from './util';
export type { Segment } from './timeline';
