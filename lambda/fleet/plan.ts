/**
 * The fleet's plan: a pure function from what the inventory holds (with the states last observed),
 * the target of the current CloudFormation request and the limits known, to what to do next.
 * No I/O and no clock: the handler (each isComplete round) and the reconciler run it on what they
 * observed, act on it, observe again and plan again until it reports `converged`.
 */

/** One inventory slot as the planner sees it. */
export interface PlanSlot {
  /** The slot's sort key (unique within the fleet). */
  readonly sk: string;
  /** Hash of the configuration the slot was launched with. */
  readonly configHash: string;
  /** LAUNCHING: RunMicrovm sent or about to be, outcome not yet recorded. */
  readonly phase: 'LAUNCHING' | 'LAUNCHED';
  /**
   * The MicroVM state last observed (PENDING, RUNNING, SUSPENDING, SUSPENDED, TERMINATING,
   * TERMINATED), or GONE when ListMicrovms no longer lists it past the grace period.
   */
  readonly state?: string;
}

export type UpdatePolicy = 'ROLLING' | 'REPLACE_ALL';

/** What the current request asks for. */
export interface PlanTarget {
  /** The generation the request opened. */
  readonly generation: number;
  /** Hash of the target configuration: instances with another hash are replaced. */
  readonly configHash: string;
  /** Instances wanted, 0 or more. */
  readonly desired: number;
  readonly updatePolicy: UpdatePolicy;
  /** ROLLING: replacements in flight at once. Undefined: sized from the launch rate (`autoBatchSize`). */
  readonly batchSize?: number;
  /** A warm pool: instances are kept SUSPENDED (true) or RUNNING (false), applied to running instances too. */
  readonly suspendAfterLaunch: boolean;
}

export interface PlanLimits {
  /** RunMicrovm calls per second this fleet may make. */
  readonly launchRate: number;
  /**
   * The most instances this fleet can hold at once under the account's memory quota, learned from
   * a ServiceQuotaExceededException (the instances it held when the service refused). Undefined:
   * no refusal seen, launches are not capped by memory.
   */
  readonly capacity?: number;
}

export interface PlanInput {
  readonly slots: readonly PlanSlot[];
  readonly target: PlanTarget;
  /** The generation the inventory's fence (meta item) holds now; undefined once a Delete removed it. */
  readonly fenceGeneration?: number;
  readonly limits: PlanLimits;
}

export interface Plan {
  /** A newer request owns the fleet: this plan acts on nothing and the caller stops. */
  readonly superseded: boolean;
  /** New instances of the target configuration to launch now. */
  readonly launches: number;
  /** Slots whose instances to terminate (sort keys). */
  readonly terminate: readonly string[];
  /** RUNNING instances to suspend (warm pool on). */
  readonly suspend: readonly string[];
  /** SUSPENDED instances to resume (warm pool off). */
  readonly resume: readonly string[];
  /** Slots whose instances have stopped on their own: removed from the inventory, not counted. */
  readonly drop: readonly string[];
  /** The target is live: desired count of the target configuration settled, nothing else left. */
  readonly converged: boolean;
  /** Launches are needed, but the memory quota leaves no room and nothing can be freed: fail with the quota. */
  readonly quotaBlocked: boolean;
  /** Why the plan departs from launch-first rolling replacement, for the CloudFormation event and the log. */
  readonly reasons: readonly string[];
  readonly counts: PlanCounts;
}

export interface PlanCounts {
  /** Target-configuration instances RUNNING, SUSPENDING or SUSPENDED (serving, or will on resume). */
  readonly serving: number;
  /** Target-configuration instances launching or PENDING. */
  readonly inFlight: number;
  /** Instances of other configurations, not yet stopping. */
  readonly old: number;
  /** Instances stopping (TERMINATING): they still hold memory. */
  readonly stopping: number;
}

/** States in which an instance serves or resumes on demand. */
const SERVING = new Set(['RUNNING', 'SUSPENDING', 'SUSPENDED']);
/** States after which an instance holds nothing and never comes back. */
const STOPPED = new Set(['TERMINATED', 'GONE']);

/**
 * The default ROLLING batch: replacements launched during this many seconds of the launch rate are
 * in flight at once, so that launches never wait for earlier replacements to come up (a MicroVM
 * takes seconds from RunMicrovm to RUNNING; the planner re-observes every 1-2 seconds).
 */
export const AUTO_BATCH_SECONDS = 10;

/** The default ROLLING batch for a launch rate and a desired count: at least 1, at most `desired`. */
export function autoBatchSize(launchRate: number, desired: number): number {
  return Math.max(1, Math.min(Math.max(desired, 1), Math.ceil(launchRate * AUTO_BATCH_SECONDS)));
}

export function plan(input: PlanInput): Plan {
  const { target, limits } = input;
  const empty = { launches: 0, terminate: [], suspend: [], resume: [], drop: [], quotaBlocked: false, reasons: [] };
  const noCounts = { serving: 0, inFlight: 0, old: 0, stopping: 0 };
  if (input.fenceGeneration !== target.generation) {
    return { ...empty, superseded: true, converged: false, counts: noCounts };
  }

  const drop = input.slots.filter((s) => STOPPED.has(s.state ?? '')).map((s) => s.sk);
  const live = input.slots.filter((s) => !STOPPED.has(s.state ?? ''));
  const stopping = live.filter((s) => s.state === 'TERMINATING');
  const active = live.filter((s) => s.state !== 'TERMINATING');
  const current = active.filter((s) => s.configHash === target.configHash);
  const old = active.filter((s) => s.configHash !== target.configHash);
  const isServing = (s: PlanSlot) => s.phase === 'LAUNCHED' && SERVING.has(s.state ?? '');

  const terminate = new Set<string>();
  const reasons: string[] = [];

  // Scale in: the least useful target instances go first.
  if (current.length > target.desired) {
    for (const s of byExpendability(current, isServing).slice(0, current.length - target.desired)) terminate.add(s.sk);
  }
  const kept = current.filter((s) => !terminate.has(s.sk));
  const serving = kept.filter(isServing).length;
  const inFlight = kept.length - serving;

  // Old instances stay only while the target's serving ones are fewer than desired.
  const keepOld = Math.min(old.length, Math.max(0, target.desired - serving));
  const oldByExpendability = byExpendability(old, isServing);
  for (const s of oldByExpendability.slice(0, old.length - keepOld)) terminate.add(s.sk);

  // Launches: what is missing; a rolling replacement keeps at most a batch in flight.
  const missing = Math.max(0, target.desired - kept.length);
  const replacing = old.length > 0;
  const batch = target.batchSize ?? autoBatchSize(limits.launchRate, target.desired);
  let launches = replacing && target.updatePolicy === 'ROLLING' ? Math.min(missing, Math.max(0, batch - inFlight)) : missing;

  // Memory: never launch past the capacity learned from a quota refusal.
  let quotaBlocked = false;
  if (limits.capacity !== undefined && launches > 0) {
    const room = Math.max(0, limits.capacity - live.length);
    if (room < launches) {
      const wanted = launches;
      launches = room;
      // Nothing launching, nothing stopping: memory frees only if we free it. Replace terminate-first.
      const freeing = stopping.length > 0 || inFlight > 0 || terminate.size > 0;
      if (launches === 0 && !freeing) {
        const candidates = oldByExpendability.filter((s) => !terminate.has(s.sk));
        const n = Math.min(wanted, candidates.length, target.updatePolicy === 'ROLLING' ? batch : wanted);
        if (n > 0) {
          for (const s of candidates.slice(0, n)) terminate.add(s.sk);
          reasons.push(`launching first would exceed the account's memory quota (this fleet can hold ${limits.capacity} instances): ` +
            `replacing terminate-first, ${n} old instance(s) at a time, so fewer than ${target.desired} are ready until the replacements are`);
        } else {
          quotaBlocked = true;
        }
      }
    }
  }

  // Warm pool on or off applies to the target instances already serving.
  const suspend: string[] = [];
  const resume: string[] = [];
  for (const s of kept) {
    if (s.phase !== 'LAUNCHED') continue;
    if (target.suspendAfterLaunch && s.state === 'RUNNING') suspend.push(s.sk);
    if (!target.suspendAfterLaunch && s.state === 'SUSPENDED') resume.push(s.sk);
  }

  const settledState = target.suspendAfterLaunch ? 'SUSPENDED' : 'RUNNING';
  const converged = launches === 0 && terminate.size === 0 && suspend.length === 0 && resume.length === 0 && !quotaBlocked
    && stopping.length === 0 && old.length === 0 && kept.length === target.desired
    && kept.every((s) => s.phase === 'LAUNCHED' && s.state === settledState);

  return {
    superseded: false,
    launches,
    terminate: [...terminate],
    suspend,
    resume,
    drop,
    converged,
    quotaBlocked,
    reasons,
    counts: { serving, inFlight, old: old.length, stopping: stopping.length },
  };
}

/** Least useful first: not serving, then the newest slots. */
function byExpendability(slots: readonly PlanSlot[], isServing: (s: PlanSlot) => boolean): PlanSlot[] {
  return [...slots].sort((a, b) => Number(isServing(a)) - Number(isServing(b)) || b.sk.localeCompare(a.sk));
}
