/**
 * MicroVMs: RunMicrovm, Get/List, Suspend/Resume/Terminate, the auth tokens, and the endpoint's checks
 * (endpoint.ts serves the requests). Answers as recorded (recorded-facts.md, "MicroVMs", "The MicroVM endpoint").
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { CreateMicrovmAuthTokenCommandInput, CreateMicrovmShellAuthTokenCommandInput, GetMicrovmCommandInput, ListMicrovmsCommandInput, ResumeMicrovmCommandInput, RunMicrovmCommandInput, SuspendMicrovmCommandInput, TerminateMicrovmCommandInput, IdlePolicy, PortSpecification } from '@aws-sdk/client-lambda-microvms';
import { ApiError, mvErr } from './errors';
import { hiddenByConsistency } from './faults';
import { DEFAULT_MEMORY_MIB, EndpointAccess, ImageVersion, MAX_DURATION_SECONDS, Microvm, TokenClaims, VmState } from './records';
import type { MicrovmsService } from './service';
import { Timeline } from './timeline';
import type { Checked } from './util';
import { Result, b64url, clone, orNull, paginate, sec } from './util';

export class MicrovmsApi {
  /** Signs tokens so that a token edited by hand, or one from another emulator, fails like a forged one. */
  private readonly tokenKey = randomBytes(32);

  constructor(private readonly svc: MicrovmsService) {}

  vmState(vm: Microvm, t = this.svc.now()): VmState {
    return vm.tl.state(t);
  }

  /** Plans RUNNING from `at`: the idle policy suspends after maxIdleDurationSeconds (no traffic reaches the emulator). */
  private planRunning(vm: Microvm, at: number): void {
    if (!vm.idlePolicy) return;
    const suspendingAt = at + vm.idlePolicy.maxIdleDurationSeconds * 1000;
    vm.tl.push({ state: 'SUSPENDING', at: suspendingAt });
    this.planSuspended(vm, suspendingAt + this.svc.delays.vmSuspend);
  }

  private planSuspended(vm: Microvm, suspendedAt: number): void {
    vm.tl.push({ state: 'SUSPENDED', at: suspendedAt });
    if (!vm.idlePolicy) return;
    const termAt = suspendedAt + vm.idlePolicy.suspendedDurationSeconds * 1000;
    const reason = `The MicroVM was terminated after remaining SUSPENDED for ${vm.idlePolicy.suspendedDurationSeconds} seconds (idlePolicy.suspendedDurationSeconds).`;
    vm.tl.push({ state: 'TERMINATING', at: termAt, reason });
    vm.tl.push({ state: 'TERMINATED', at: termAt + this.svc.delays.vmTerminate, reason });
  }

  /** The maximumDurationInSeconds cap (running + suspended time) ends every plan in TERMINATED. */
  private applyCap(vm: Microvm): void {
    const capAt = vm.startedAt + vm.maximumDurationInSeconds * 1000;
    const firstTerm = vm.tl.segs.find((s) => s.state === 'TERMINATING' || s.state === 'TERMINATED');
    if (firstTerm && firstTerm.at <= capAt) return;
    vm.tl.segs = vm.tl.segs.filter((s, i) => i === 0 || s.at < capAt);
    const reason = `The MicroVM reached its maximum duration of ${vm.maximumDurationInSeconds} seconds.`;
    vm.tl.push({ state: 'TERMINATING', at: capAt, reason });
    vm.tl.push({ state: 'TERMINATED', at: capAt + this.svc.delays.vmTerminate, reason });
  }

  microvmView(vm: Microvm, t = this.svc.now()): Record<string, unknown> {
    const seg = vm.tl.at(t);
    const terminated = seg.state === 'TERMINATED';
    return {
      egressNetworkConnectors: [...vm.egress],
      endpoint: this.endpointOf(vm),
      executionRoleArn: vm.executionRoleArn,
      idlePolicy: vm.idlePolicy ? { ...vm.idlePolicy } : null,
      imageArn: vm.imageArn,
      imageVersion: vm.imageVersion,
      ingressNetworkConnectors: [...vm.ingress],
      maximumDurationInSeconds: vm.maximumDurationInSeconds,
      microvmId: vm.id,
      startedAt: sec(vm.startedAt),
      state: seg.state,
      stateReason: seg.state === 'TERMINATING' || terminated ? (seg.reason ?? null) : null,
      terminatedAt: terminated ? sec(seg.at) : null,
      terminationReasonCode: null,
    };
  }

  /** Recorded endpoints are `<uuid>.lambda-microvm.<region>.on.aws` (no `microvm-` prefix). */
  endpointOf(vm: Microvm): string {
    return `${vm.uuid}.lambda-microvm.${this.svc.region}.on.aws`;
  }

  findMicrovm(identifier: string): Microvm | undefined {
    const direct = this.svc.microvms.get(identifier);
    if (direct) return direct;
    const m = /:microvm:(microvm-[0-9a-f-]+)$/.exec(identifier);
    return m ? this.svc.microvms.get(m[1]) : undefined;
  }

  private requireMicrovm(identifier: string, forGet = false): Microvm {
    const vm = this.findMicrovm(identifier);
    if (!vm || (forGet && hiddenByConsistency(this.svc.faults, this.svc.now(), 'microvm', vm.startedAt))) throw mvErr.notFound(`MicroVM not found: ${identifier}`);
    return vm;
  }

  private terminatedError(vm: Microvm): ApiError {
    return mvErr.validation(`The MicroVM ${vm.id} has been terminated and its state cannot be changed.`);
  }

  memoryInUse(t = this.svc.now()): number {
    let sum = 0;
    for (const vm of this.svc.microvms.values()) {
      const s = this.vmState(vm, t);
      if (s === 'PENDING' || s === 'RUNNING' || s === 'SUSPENDING' || s === 'SUSPENDED') sum += vm.memoryMiB;
    }
    return sum;
  }

  runMicrovm(input: Checked<RunMicrovmCommandInput, 'imageIdentifier'>): Result {
    const t = this.svc.now();
    const ctx = this.svc.idem('RunMicrovm', input.clientToken, input, 'clientToken', 'microvms');
    if (ctx?.replay) return ctx.replay;
    const id: string = input.imageIdentifier;
    if (!/^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:(\d{12}|aws):microvm-image:[a-zA-Z0-9-_]+$/.test(id)) {
      // The AWS skill and Dev Guide: RunMicrovm's imageIdentifier must be the image ARN (bare name rejected).
      throw mvErr.validation(`Invalid imageIdentifier '${id}': specify the ARN of the MicroVM image.`);
    }
    const img = this.svc.imagesApi.findImage(id);
    if (!img || img.deleteTl) throw mvErr.notFound(`No active version found for MicroVM image ${id}`);
    let ver: ImageVersion | undefined;
    if (input.imageVersion !== undefined) {
      ver = img.versions.get(input.imageVersion);
      if (!ver || ver.deleteTl) throw mvErr.notFound(`MicroVMImage not found for MicroVMImage: ${img.arn}, Version: ${input.imageVersion}`);
      const vs = ver.tl.state(t);
      if (vs !== 'SUCCESSFUL') {
        throw mvErr.validation(`MicroVM image version ${ver.version} of ${img.arn} is in state ${vs}; only SUCCESSFUL versions can run MicroVMs.`);
      }
      if (ver.status !== 'ACTIVE') {
        throw mvErr.validation(`MicroVM image version ${ver.version} of ${img.arn} is INACTIVE and cannot launch new MicroVMs.`);
      }
    } else {
      const latest = this.svc.imagesApi.latestActive(img, t);
      if (!latest) throw mvErr.notFound(`No active version found for MicroVM image ${img.arn}`);
      ver = img.versions.get(latest)!;
    }
    // The model requires all three members of idlePolicy: the server checked them.
    const idle = input.idlePolicy as Checked<IdlePolicy, 'maxIdleDurationSeconds' | 'suspendedDurationSeconds' | 'autoResumeEnabled'> | undefined;
    if (idle && idle.maxIdleDurationSeconds > MAX_DURATION_SECONDS) {
      throw mvErr.validation(`Value '${idle.maxIdleDurationSeconds}' at 'idlePolicy.maxIdleDurationSeconds' failed to satisfy constraint: Member must have value less than or equal to ${MAX_DURATION_SECONDS}`);
    }
    const ingress: string[] = input.ingressNetworkConnectors?.length ? [...input.ingressNetworkConnectors] : [this.svc.managedConnectorArn('HTTP_INGRESS')];
    const egress: string[] = input.egressNetworkConnectors?.length ? [...input.egressNetworkConnectors] : [this.svc.managedConnectorArn('INTERNET_EGRESS')];
    this.svc.connectorsApi.checkConnectors(ingress, 'ingress', 'ingressNetworkConnectors');
    this.svc.connectorsApi.checkConnectors(egress, 'egress', 'egressNetworkConnectors');
    const memoryMiB = ver.config.resources[0]?.minimumMemoryInMiB ?? DEFAULT_MEMORY_MIB;
    if (this.memoryInUse(t) + memoryMiB > this.svc.settings.memoryQuotaMiB) {
      // Recorded (throttle/run-burst): 402 with this message and null quotaCode/serviceCode/resource fields.
      throw mvErr.quota('The base maximum allocated memory limit has been reached for this account.');
    }
    const uuid = randomUUID();
    const vm: Microvm = {
      id: `microvm-${uuid}`,
      uuid,
      imageArn: img.arn,
      imageName: img.name,
      imageVersion: ver.version,
      memoryMiB,
      startedAt: t,
      executionRoleArn: orNull(input.executionRoleArn),
      idlePolicy: idle
        ? {
          autoResumeEnabled: idle.autoResumeEnabled,
          maxIdleDurationSeconds: idle.maxIdleDurationSeconds,
          suspendedDurationSeconds: idle.suspendedDurationSeconds,
        }
        : null,
      logging: orNull(clone(input.logging)),
      runHookPayload: orNull(input.runHookPayload),
      maximumDurationInSeconds: input.maximumDurationInSeconds ?? MAX_DURATION_SECONDS,
      ingress,
      egress,
      tl: new Timeline<VmState>({ state: 'PENDING', at: t }),
    };
    vm.tl.push({ state: 'RUNNING', at: t + this.svc.delays.vmStart });
    this.planRunning(vm, t + this.svc.delays.vmStart);
    this.applyCap(vm);
    this.svc.microvms.set(vm.id, vm);
    this.svc.onLaunch?.(vm);
    return this.svc.remember(ctx, { status: 200, body: this.microvmView(vm, t) }, 200);
  }

  getMicrovm(input: Checked<GetMicrovmCommandInput, 'microvmIdentifier'>): Result {
    return { body: this.microvmView(this.requireMicrovm(input.microvmIdentifier, true)) };
  }

  listMicrovms(input: ListMicrovmsCommandInput): Result {
    const t = this.svc.now();
    let vms = [...this.svc.microvms.values()].sort((a, b) => b.startedAt - a.startedAt);
    if (input.imageIdentifier) {
      const img = this.svc.imagesApi.findImage(input.imageIdentifier);
      const arn = img?.arn ?? input.imageIdentifier;
      vms = vms.filter((v) => v.imageArn === arn || v.imageName === input.imageIdentifier);
    }
    if (input.imageVersion) vms = vms.filter((v) => v.imageVersion === input.imageVersion);
    const { page, next } = paginate(vms, input.maxResults, input.nextToken, 50, mvErr.validation);
    return {
      body: {
        items: page.map((vm) => ({
          imageArn: vm.imageArn,
          imageVersion: vm.imageVersion,
          microvmId: vm.id,
          startedAt: sec(vm.startedAt),
          state: this.vmState(vm, t),
        })),
        nextToken: next,
      },
    };
  }

  suspendMicrovm(input: Checked<SuspendMicrovmCommandInput, 'microvmIdentifier'>): Result {
    const t = this.svc.now();
    const vm = this.requireMicrovm(input.microvmIdentifier);
    const st = this.vmState(vm, t);
    if (st === 'TERMINATED' || st === 'TERMINATING') throw this.terminatedError(vm);
    if (st !== 'RUNNING') throw mvErr.conflict(`The MicroVM ${vm.id} is in state ${st}; only a RUNNING MicroVM can be suspended.`, vm.id, 'Microvm');
    vm.tl.truncate(t).push({ state: 'SUSPENDING', at: t });
    this.planSuspended(vm, t + this.svc.delays.vmSuspend);
    this.applyCap(vm);
    return { body: {} };
  }

  resumeMicrovm(input: Checked<ResumeMicrovmCommandInput, 'microvmIdentifier'>): Result {
    const t = this.svc.now();
    const vm = this.requireMicrovm(input.microvmIdentifier);
    const st = this.vmState(vm, t);
    if (st === 'TERMINATED' || st === 'TERMINATING') throw this.terminatedError(vm);
    if (st !== 'SUSPENDED') throw mvErr.conflict(`The MicroVM ${vm.id} is in state ${st}; only a SUSPENDED MicroVM can be resumed.`, vm.id, 'Microvm');
    this.resumeAt(vm, t);
    return { body: {} };
  }

  private resumeAt(vm: Microvm, t: number): void {
    // Recorded: resume goes straight SUSPENDED → RUNNING (the /resume hook runs while still SUSPENDED).
    vm.tl.truncate(t).push({ state: 'RUNNING', at: t + this.svc.delays.vmResume });
    this.planRunning(vm, t + this.svc.delays.vmResume);
    this.applyCap(vm);
  }

  terminateMicrovm(input: Checked<TerminateMicrovmCommandInput, 'microvmIdentifier'>): Result {
    const t = this.svc.now();
    const vm = this.requireMicrovm(input.microvmIdentifier);
    const st = this.vmState(vm, t);
    if (st === 'TERMINATED' || st === 'TERMINATING') return { body: {} }; // idempotent (recorded)
    vm.tl.truncate(t).push({ state: 'TERMINATING', at: t, reason: null }).push({ state: 'TERMINATED', at: t + this.svc.delays.vmTerminate, reason: 'Success.' });
    return { body: {} };
  }

  /**
   * The MicroVM endpoint's checks for one inbound request, as recorded (recorded-facts.md, "The MicroVM
   * endpoint"): no token or one that cannot be parsed → 403 "Request missing authentication"; a token for
   * another MicroVM, a forged or expired one, or a host that names no MicroVM → 403 "Token authentication
   * failed"; `allowedPorts` is not enforced here (it is checked when the token is issued); TERMINATED (or
   * TERMINATING, PENDING) or SUSPENDED without auto-resume → 502 with an empty body. A RUNNING MicroVM's idle
   * timer restarts; a SUSPENDED (or SUSPENDING) one with auto-resume wakes at once (GetMicrovm reads RUNNING
   * right after). `host` is the endpoint host name (`<uuid>.lambda-microvm.<region>.on.aws`), a MicroVM id or ARN.
   */
  endpointAccess(host: string, token: string | undefined): EndpointAccess {
    const t = this.svc.now();
    if (!token) return { status: 403, body: 'Request missing authentication' };
    const claims = this.decodeToken(token);
    if (claims === undefined) return { status: 403, body: 'Request missing authentication' };
    const vm = this.findMicrovm(host) ?? [...this.svc.microvms.values()].find((v) => this.endpointOf(v) === host.toLowerCase());
    if (!vm || claims === null || claims.mvm !== vm.id || claims.exp * 1000 < t) return { status: 403, body: 'Token authentication failed' };
    const st = this.vmState(vm, t);
    if (st === 'RUNNING') {
      vm.tl.truncate(t);
      this.planRunning(vm, t);
      this.applyCap(vm);
      return { status: 200, body: '', state: st, vm };
    }
    if ((st === 'SUSPENDED' || st === 'SUSPENDING') && vm.idlePolicy?.autoResumeEnabled) {
      vm.tl.truncate(t).push({ state: 'RUNNING', at: t });
      this.planRunning(vm, t);
      this.applyCap(vm);
      return { status: 200, body: '', state: 'RUNNING', vm };
    }
    return { status: 502, body: '', state: st };
  }

  /** The admin traffic route's view of {@link endpointAccess} (kept for scripts written against it). */
  traffic(identifier: string, token?: string): { status: number; body: string; state?: string } {
    const { status, body, state } = this.endpointAccess(identifier, token);
    return state === undefined ? { status, body } : { status, body, state };
  }

  // ----- auth tokens

  private tokenTag(signed: string): Buffer {
    return createHmac('sha256', this.tokenKey).update(signed).digest().subarray(0, 16);
  }

  private makeToken(vm: Microvm, minutes: number, ports: PortSpecification[] | 'shell'): string {
    const header = b64url(JSON.stringify({ kid: randomUUID(), alg: 'dir', enc: 'A256GCM' }));
    const all = ports === 'shell' || ports.some((p) => p.allPorts !== undefined);
    // A PortSpecification is a union (port | range | allPorts); the model checked its members.
    const range = (p: PortSpecification): [number, number] =>
      (p.port !== undefined ? [p.port, p.port] : [p.range?.startPort ?? 0, p.range?.endPort ?? 0]);
    const ranges: [number, number][] = ports === 'shell' ? [[8022, 8022]] : ports.filter((p) => p.allPorts === undefined).map(range);
    const claims = { mvm: vm.id, exp: Math.floor(this.svc.now() / 1000) + minutes * 60, all: ports === 'shell' ? false : all, ports: ranges, shell: ports === 'shell' };
    // Shaped like a JWE compact serialization (header..iv.payload.tag); the payload is NOT encrypted (it is an
    // emulator), the tag is an HMAC under a key of this emulator instance.
    const signed = `${header}..${b64url(randomBytes(12))}.${b64url(JSON.stringify(claims))}`;
    return `${signed}.${b64url(this.tokenTag(signed))}`;
  }

  /** The token's claims; `undefined` when it cannot be parsed, `null` when it parses but was not issued here. */
  decodeToken(token: string): TokenClaims | null | undefined {
    const parts = token.split('.');
    if (parts.length !== 5) return undefined;
    let claims: TokenClaims;
    try {
      claims = JSON.parse(Buffer.from(parts[3], 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof claims !== 'object' || claims === null || typeof claims.mvm !== 'string') return undefined;
    const tag = Buffer.from(parts[4], 'base64url');
    const expected = this.tokenTag(parts.slice(0, 4).join('.'));
    return tag.length === expected.length && timingSafeEqual(tag, expected) ? claims : null;
  }

  private tokenTarget(identifier: string, minutes: number): Microvm {
    const vm = this.requireMicrovm(identifier);
    if (minutes > 60) {
      throw mvErr.validation(`Value '${minutes}' at 'expirationInMinutes' failed to satisfy constraint: Member must have value less than or equal to 60`);
    }
    const st = this.vmState(vm);
    if (st === 'TERMINATED' || st === 'TERMINATING') throw this.terminatedError(vm);
    if (st !== 'RUNNING' && st !== 'SUSPENDED') {
      throw mvErr.conflict(`The MicroVM ${vm.id} is in state ${st}; auth tokens can only be created for RUNNING or SUSPENDED MicroVMs.`, vm.id, 'Microvm');
    }
    return vm;
  }

  createMicrovmAuthToken(input: Checked<CreateMicrovmAuthTokenCommandInput, 'microvmIdentifier' | 'expirationInMinutes' | 'allowedPorts'>): Result {
    const vm = this.tokenTarget(input.microvmIdentifier, input.expirationInMinutes);
    return { body: { authToken: { 'X-aws-proxy-auth': this.makeToken(vm, input.expirationInMinutes, input.allowedPorts) } } };
  }

  createMicrovmShellAuthToken(input: Checked<CreateMicrovmShellAuthTokenCommandInput, 'microvmIdentifier' | 'expirationInMinutes'>): Result {
    const vm = this.tokenTarget(input.microvmIdentifier, input.expirationInMinutes);
    if (!vm.ingress.includes(this.svc.managedConnectorArn('SHELL_INGRESS'))) {
      // Recorded message (tokens/shell-auth-token-without-ingress).
      throw mvErr.validation('Shell access requires SHELL_INGRESS network connector to be configured on the MicroVM.');
    }
    return { body: { authToken: { 'X-aws-proxy-auth': this.makeToken(vm, input.expirationInMinutes, 'shell') } } };
  }
}
