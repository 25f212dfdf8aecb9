/**
 * `cdk-lambda-microvms/testing`: deploy a stack's MicroVM custom resources to the emulator, offline,
 * in a unit test. No Docker, no AWS account, no CloudFormation: the kit plays CloudFormation and the
 * Provider framework with the lifecycle driver this library's own tests use, calls the real provider
 * handlers in-process, and the handlers call the emulator through the real SDK over HTTP.
 *
 *   const bed = await MicroVmTestbed.start();
 *   const result = await bed.deploy(stack);            // Create (first deploy) or Update, then cleanup
 *   expect(result.status).toBe('CREATE_COMPLETE');
 *   bed.emulator.snapshot().microvms;                  // what is live
 *   await bed.destroy();                               // Delete
 *   await bed.close();
 *
 * Only the four custom resource types of this library are deployed. Other resources (roles, VPCs,
 * secrets, asset buckets) are not: references to them resolve to stable made-up ids and ARNs in their
 * real formats. The values the constructs stage as asset objects (an image's literal environment, a
 * fleet's literal payload) are read from the deployed Stack's cloud assembly. Time is the emulator's
 * ManualClock: waiting costs no real time.
 */
import { randomUUID } from 'node:crypto';
import { createHandlers, CREDENTIALS, HandlerSet } from './handlers';
import { CfnTemplate, deployOrder, MICROVM_RESOURCE_TYPES, MicrovmResourceType, resolve } from './template';
import { stagedObjects } from '../../test/support/iam-s3';
import { LifecycleDriver, LifecycleResult } from '../../test/support/lifecycle-driver';
import { EmulatorOptions, ManualClock, RunningEmulator, startEmulator } from '../src/index';

export { MICROVM_RESOURCE_TYPES } from './template';
export type { MicrovmResourceType, CfnTemplate } from './template';
export { ManualClock, callMicrovmEndpoint } from '../src/index';
export type { EmulatorOptions, RunningEmulator, EmulatorSnapshot, EndpointAnswer, EndpointCallOptions } from '../src/index';

/** The stack's status after a deploy or destroy, with CloudFormation's names. */
export type StackStatus =
  | 'CREATE_COMPLETE' | 'ROLLBACK_COMPLETE' | 'ROLLBACK_FAILED'
  | 'UPDATE_COMPLETE' | 'UPDATE_ROLLBACK_COMPLETE' | 'UPDATE_ROLLBACK_FAILED'
  | 'DELETE_COMPLETE' | 'DELETE_FAILED';

/** One request the kit sent to a provider handler, and how it ended. */
export interface ResourceEvent {
  readonly logicalId: string;
  /** The construct's path in the stack (when a Stack was deployed). */
  readonly path?: string;
  readonly resourceType: MicrovmResourceType;
  readonly requestType: 'Create' | 'Update' | 'Delete';
  /** `deploy`: the change itself; `cleanup`: deleting replaced or removed resources; `rollback`: undoing a failed deploy. */
  readonly phase: 'deploy' | 'cleanup' | 'rollback' | 'destroy';
  readonly status: 'SUCCESS' | 'FAILED';
  readonly physicalResourceId?: string;
  /** The handler's failure reason, as CloudFormation would show it. */
  readonly reason?: string;
  /** isComplete calls made. */
  readonly polls: number;
}

/** One of the stack's MicroVM resources as deployed. */
export interface DeployedResource {
  readonly logicalId: string;
  /** The construct's path in the stack, e.g. `Image` or `Sandbox/Fleet` (when a Stack was deployed). */
  readonly path?: string;
  readonly resourceType: MicrovmResourceType;
  readonly physicalResourceId: string;
  /** What `Fn::GetAtt` reads (e.g. `ImageArn`, `ImageVersion`, `InstanceIds`). */
  readonly attributes: Readonly<Record<string, string>>;
  /**
   * The resolved properties CloudFormation sends (every intrinsic function evaluated). Values the
   * construct staged as an asset (a literal environment or payload) are under `StagedProperties`
   * (bucket and key); the handler gets them merged back in.
   */
  readonly properties: Readonly<Record<string, unknown>>;
}

export interface DeployResult {
  readonly status: StackStatus;
  /** `status` is CREATE_COMPLETE, UPDATE_COMPLETE or DELETE_COMPLETE. */
  readonly ok: boolean;
  /** The first failure: `<construct path or logical id>: <reason>`. */
  readonly reason?: string;
  readonly events: readonly ResourceEvent[];
  /** The stack's MicroVM resources after this deploy (after a rollback: as before it). */
  readonly resources: Readonly<Record<string, DeployedResource>>;
}

export interface TestbedOptions {
  /** Emulator options (region, account, delays, quotas, backends, ...). The clock is always a ManualClock. */
  readonly emulator?: Omit<EmulatorOptions, 'clock' | 'clockSpeed'>;
  /** Values of the secrets a fleet reads (`runHookPayloadSecret`), by secret ARN or logical id. */
  readonly secrets?: Record<string, string>;
  /** The stack name in ARNs and `AWS::StackName` (default: the stack's own name, else `TestStack`). */
  readonly stackName?: string;
  /** Print the handlers' structured logs (what CloudWatch would show), default false. */
  readonly handlerLogs?: boolean;
}

interface Live {
  readonly driver: LifecycleDriver<Record<string, unknown>>;
  readonly resourceType: MicrovmResourceType;
  properties: Record<string, unknown>;
  data: Record<string, string>;
}

/** Settings for an SDK client that talks to the testbed's emulator. */
export interface ClientConfig {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/** Anything with what `Template.fromStack` needs: an aws-cdk-lib `Stack`. */
export interface StackLike {
  readonly stackName: string;
  readonly region: string;
  readonly account: string;
}

const isOurs = (type: string): type is MicrovmResourceType => (MICROVM_RESOURCE_TYPES as readonly string[]).includes(type);
const canonical = (v: unknown): string => JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));

/**
 * An emulator and the stack deployed to it. One testbed holds one stack: `deploy` it again with
 * changes to test updates, `destroy` it to test deletes.
 */
export class MicroVmTestbed {
  /** Starts an emulator (ManualClock, fault injection on) and returns a testbed with nothing deployed. */
  static async start(options: TestbedOptions = {}): Promise<MicroVmTestbed> {
    // The handlers read this switch at each log line (lambda/shared/log.ts).
    if (!options.handlerLogs) process.env.MICROVMS_HANDLER_QUIET = '1';
    const clock = new ManualClock();
    const emulator = await startEmulator({ faults: true, ...options.emulator, clock });
    return new MicroVmTestbed(emulator, clock, options);
  }

  /** The emulator: `faults`, `snapshot()`, `endpoints`, `advance(ms)`, `url`. */
  readonly emulator: RunningEmulator;
  /** SDK client settings for the emulator: `new LambdaMicrovmsClient(bed.clientConfig)`. */
  readonly clientConfig: ClientConfig;
  private readonly clock: ManualClock;
  private readonly set: HandlerSet;
  private readonly live = new Map<string, Live>();
  private order: string[] = [];
  private readonly stackId: string;
  private stackName?: string;
  private readonly secrets: Record<string, string>;
  /** The objects the deployed stacks staged as assets (what `cdk deploy` uploads), by S3 key. */
  private readonly staged = new Map<string, string>();
  /** Construct path by logical id, from the last Stack deployed. */
  private readonly paths = new Map<string, string>();

  private constructor(emulator: RunningEmulator, clock: ManualClock, options: TestbedOptions) {
    this.emulator = emulator;
    this.clock = clock;
    this.secrets = { ...options.secrets };
    this.stackName = options.stackName;
    this.clientConfig = { endpoint: emulator.url, region: emulator.region, credentials: { ...CREDENTIALS } };
    // A handler's own waits (retries, launch pacing) pass on the emulator's clock, after a real
    // moment for the requests in flight to land at the virtual time they were sent at.
    const handlerClock = {
      now: () => clock.now(),
      sleep: async (ms: number) => {
        await new Promise((r) => setTimeout(r, Math.min(20, Math.ceil(ms / 50))));
        clock.advance(ms);
      },
    };
    this.set = createHandlers(emulator.url, emulator.region, handlerClock, (arn) => this.secretValue(arn), (key) => this.staged.get(key));
    this.stackId = `arn:aws:cloudformation:${emulator.region}:${emulator.account}:stack/${this.stackName ?? 'TestStack'}/${randomUUID()}`;
  }

  /** The stack's MicroVM resources as deployed now. */
  resources(): Record<string, DeployedResource> {
    const out: Record<string, DeployedResource> = {};
    for (const [id, l] of this.live) {
      if (!l.driver.physicalResourceId) continue;
      out[id] = {
        logicalId: id,
        path: this.paths.get(id),
        resourceType: l.resourceType,
        physicalResourceId: l.driver.physicalResourceId,
        attributes: { ...l.data },
        properties: { ...l.properties },
      };
    }
    return out;
  }

  /**
   * One deployed resource, by logical id or construct path (`Image`, `Sandbox/Fleet`: the path of the
   * construct you created, below the stack). Throws naming the deployed ones when none matches.
   */
  resource(idOrPath: string): DeployedResource {
    const all = Object.values(this.resources());
    const found = all.find((r) => r.logicalId === idOrPath) ?? all.find((r) => r.path === idOrPath);
    if (!found) throw new Error(`no deployed resource ${idOrPath}; deployed: ${all.map((r) => r.path ?? r.logicalId).join(', ') || 'none'}`);
    return found;
  }

  /**
   * Deploys `stack` (an aws-cdk-lib Stack, or a synthesized template): the first call creates, later
   * calls update, as `cdk deploy` does. Resources are created and updated in dependency order; then
   * replaced and removed resources are deleted. When a request fails, the deploy rolls back as
   * CloudFormation does (created resources deleted, updated ones updated back) and the result says so.
   */
  async deploy(stack: StackLike | CfnTemplate): Promise<DeployResult> {
    const template = this.templateOf(stack);
    const order = deployOrder(template, isOurs);
    const first = this.live.size === 0;
    const events: ResourceEvent[] = [];
    const touched: { id: string; created: boolean }[] = [];
    const replaced: string[] = [];
    let failure: string | undefined;

    for (const id of order) {
      const type = template.Resources![id].Type as MicrovmResourceType;
      let props: Record<string, unknown>;
      try {
        props = resolve(template, template.Resources![id].Properties ?? {}, this.context()) as Record<string, unknown>;
      } catch (e) {
        failure = `${this.paths.get(id) ?? id}: ${(e as Error).message}`;
        break;
      }
      const existing = this.live.get(id);
      if (existing && existing.resourceType !== type) throw new Error(`${id} changed type from ${existing.resourceType} to ${type}: give the new resource another id`);
      if (!existing) {
        const driver = this.driver(id, type);
        const live: Live = { driver, resourceType: type, properties: props, data: {} };
        this.live.set(id, live);
        touched.push({ id, created: true });
        const r = await driver.create(props);
        events.push(this.event(id, type, 'Create', 'deploy', r));
        if (r.status === 'FAILED') {
          failure = `${this.paths.get(id) ?? id}: ${r.reason}`;
          break;
        }
        live.data = r.data;
      } else if (canonical(props) !== canonical(existing.properties)) {
        const oldId = existing.driver.physicalResourceId!;
        touched.push({ id, created: false });
        const r = await existing.driver.update(props, { deferCleanup: true });
        events.push(this.event(id, type, 'Update', 'deploy', r));
        if (r.status === 'FAILED') {
          failure = `${this.paths.get(id) ?? id}: ${r.reason}`;
          break;
        }
        existing.properties = props;
        existing.data = r.data;
        if (r.physicalResourceId !== oldId) replaced.push(id);
      }
    }

    if (failure !== undefined) {
      let rollbackFailed = false;
      for (const { id, created } of [...touched].reverse()) {
        const l = this.live.get(id)!;
        const r = created ? await l.driver.delete() : await l.driver.rollback();
        events.push(this.event(id, l.resourceType, created ? 'Delete' : 'Update', 'rollback', r));
        if (r.status === 'FAILED') rollbackFailed = true;
        if (created) {this.live.delete(id);} else if (r.status === 'SUCCESS') {
          l.properties = l.driver.properties!;
          l.data = { ...l.data, ...r.data };
        }
      }
      const status: StackStatus = first ? (rollbackFailed ? 'ROLLBACK_FAILED' : 'ROLLBACK_COMPLETE') : (rollbackFailed ? 'UPDATE_ROLLBACK_FAILED' : 'UPDATE_ROLLBACK_COMPLETE');
      return { status, ok: false, reason: failure, events, resources: this.resources() };
    }

    // Cleanup: old physical ids of replaced resources, then resources the template no longer has
    // (dependents first). CloudFormation does not fail the stack for these; the events show them.
    for (const id of replaced) {
      const l = this.live.get(id)!;
      events.push(this.event(id, l.resourceType, 'Delete', 'cleanup', await l.driver.runCleanup()));
    }
    for (const id of [...this.order].reverse()) {
      if (order.includes(id)) continue;
      const l = this.live.get(id);
      if (!l) continue;
      events.push(this.event(id, l.resourceType, 'Delete', 'cleanup', await l.driver.delete()));
      this.live.delete(id);
    }
    this.order = order;
    return { status: first ? 'CREATE_COMPLETE' : 'UPDATE_COMPLETE', ok: true, events, resources: this.resources() };
  }

  /** Deletes the stack's MicroVM resources, dependents first, as `cdk destroy` does. */
  async destroy(): Promise<DeployResult> {
    const events: ResourceEvent[] = [];
    let failure: string | undefined;
    for (const id of [...this.order].reverse()) {
      const l = this.live.get(id);
      if (!l) continue;
      const r = await l.driver.delete();
      events.push(this.event(id, l.resourceType, 'Delete', 'destroy', r));
      if (r.status === 'FAILED') failure ??= `${this.paths.get(id) ?? id}: ${r.reason}`;
      else this.live.delete(id);
    }
    if (failure === undefined) this.order = [];
    return { status: failure === undefined ? 'DELETE_COMPLETE' : 'DELETE_FAILED', ok: failure === undefined, reason: failure, events, resources: this.resources() };
  }

  /** Stops the emulator. */
  async close(): Promise<void> {
    await this.emulator.close();
  }

  private event(logicalId: string, resourceType: MicrovmResourceType, requestType: ResourceEvent['requestType'], phase: Phase, r: LifecycleResult): ResourceEvent {
    const { status, physicalResourceId, reason, polls } = r;
    return { logicalId, path: this.paths.get(logicalId), resourceType, requestType, phase, status, physicalResourceId, reason, polls };
  }

  private driver(id: string, type: MicrovmResourceType): LifecycleDriver<Record<string, unknown>> {
    return new LifecycleDriver<Record<string, unknown>>({
      handler: this.set.handlers[type],
      resourceType: type,
      logicalResourceId: id,
      stackId: this.stackId,
      wait: async (ms) => { this.clock.advance(ms); },
    });
  }

  private context() {
    return {
      region: this.emulator.region,
      account: this.emulator.account,
      stackName: this.stackName ?? 'TestStack',
      stackId: this.stackId,
      deployed: (id: string) => {
        const l = this.live.get(id);
        return l?.driver.physicalResourceId ? { physicalResourceId: l.driver.physicalResourceId, data: l.data } : undefined;
      },
    };
  }

  private secretValue(arn: string): string | undefined {
    if (arn in this.secrets) return this.secrets[arn];
    // A made-up secret ARN ends in `:secret:<logicalId>-xxxxxx`: its logical id names it too.
    const m = /:secret:(.+)-[0-9a-f]{6}$/.exec(arn);
    return m ? this.secrets[m[1]] : undefined;
  }

  private templateOf(stack: StackLike | CfnTemplate): CfnTemplate {
    if ('Resources' in stack || !('stackName' in stack)) return stack as CfnTemplate;
    // aws-cdk-lib is the user's (a peer dependency): loaded only when a Stack is passed.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cdk = require('aws-cdk-lib') as typeof import('aws-cdk-lib');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Template } = require('aws-cdk-lib/assertions') as typeof import('aws-cdk-lib/assertions');
    for (const [what, value, ours] of [['region', stack.region, this.emulator.region], ['account', stack.account, this.emulator.account]] as const) {
      if (!cdk.Token.isUnresolved(value) && value !== ours) {
        throw new Error(`the stack's ${what} is ${value} but the testbed's emulator uses ${ours}: start it with MicroVmTestbed.start({ emulator: { ${what}: '${value}' } })`);
      }
    }
    this.stackName ??= stack.stackName;
    const cdkStack = stack as unknown as import('aws-cdk-lib').Stack;
    this.paths.clear();
    for (const c of cdkStack.node.findAll()) {
      if (!cdk.CfnResource.isCfnResource(c) || !isOurs(c.cfnResourceType)) continue;
      const id = cdkStack.resolve(cdkStack.getLogicalId(c)) as string;
      // `<Stack>/<construct>/Resource/Default` → `<construct>`: the path the user wrote.
      this.paths.set(id, c.node.path.split('/').slice(1).join('/').replace(/(\/Resource)?(\/Default)?$/, ''));
    }
    const template = Template.fromStack(cdkStack).toJSON() as CfnTemplate;
    // The literal values the constructs staged as assets (an image's environment, a fleet's payload).
    const outdir = cdk.Stage.of(cdkStack)?.outdir;
    if (outdir) stagedObjects(outdir, this.staged);
    return template;
  }
}

type Phase = ResourceEvent['phase'];
