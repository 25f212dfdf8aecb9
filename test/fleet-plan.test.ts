import { autoBatchSize, plan, Plan, PlanInput, PlanSlot, PlanTarget } from '../lambda/fleet/plan';

/** Slots written as `<config>:<state>`, e.g. `v1:RUNNING`; `v2:LAUNCHING` is a launch in flight. */
function slots(...specs: string[]): PlanSlot[] {
  return specs.map((spec, i) => {
    const [configHash, state] = spec.split(':');
    const sk = `slot#${String(i).padStart(3, '0')}`;
    return state === 'LAUNCHING' ? { sk, configHash, phase: 'LAUNCHING' } : { sk, configHash, phase: 'LAUNCHED', state };
  });
}

function target(over: Partial<PlanTarget> = {}): PlanTarget {
  return { generation: 2, configHash: 'v2', desired: 3, updatePolicy: 'ROLLING', batchSize: 1, suspendAfterLaunch: false, ...over };
}

function input(s: PlanSlot[], over: Partial<PlanTarget> = {}, extra: Partial<PlanInput> = {}): PlanInput {
  return { slots: s, target: target(over), fenceGeneration: 2, limits: { launchRate: 5 }, ...extra };
}

/** The plan in a compact form: what it does to which slot index. */
function summary(p: Plan, s: PlanSlot[]) {
  const idx = (sks: readonly string[]) => sks.map((sk) => s.findIndex((x) => x.sk === sk)).sort((a, b) => a - b);
  return {
    launches: p.launches,
    terminate: idx(p.terminate),
    suspend: idx(p.suspend),
    resume: idx(p.resume),
    drop: idx(p.drop),
    converged: p.converged,
  };
}

interface Case {
  readonly name: string;
  readonly slots: string[];
  readonly target?: Partial<PlanTarget>;
  readonly extra?: Partial<PlanInput>;
  readonly expected: Partial<ReturnType<typeof summary>>;
}

const NOTHING = { launches: 0, terminate: [], suspend: [], resume: [], drop: [] };

const cases: Case[] = [
  // Create and scale.
  { name: 'create: launches the desired count at once (the launcher paces them)', slots: [], target: { desired: 4 }, expected: { ...NOTHING, launches: 4, converged: false } },
  { name: 'create in progress: launches in flight are counted, nothing more launched', slots: ['v2:LAUNCHING', 'v2:PENDING', 'v2:RUNNING'], expected: { ...NOTHING, converged: false } },
  { name: 'converged: desired count RUNNING, nothing else', slots: ['v2:RUNNING', 'v2:RUNNING', 'v2:RUNNING'], expected: { ...NOTHING, converged: true } },
  { name: 'scale out launches the difference', slots: ['v2:RUNNING', 'v2:RUNNING'], target: { desired: 5 }, expected: { ...NOTHING, launches: 3, converged: false } },
  { name: 'scale in terminates the newest ready instances', slots: ['v2:RUNNING', 'v2:RUNNING', 'v2:RUNNING'], target: { desired: 1 }, expected: { ...NOTHING, terminate: [1, 2], converged: false } },
  { name: 'scale in terminates not-ready instances before ready ones', slots: ['v2:RUNNING', 'v2:PENDING', 'v2:RUNNING'], target: { desired: 2 }, expected: { ...NOTHING, terminate: [1] } },
  { name: 'scale to zero terminates everything', slots: ['v2:RUNNING', 'v1:RUNNING'], target: { desired: 0 }, expected: { ...NOTHING, terminate: [0, 1] } },
  { name: 'zero desired and nothing left: converged', slots: [], target: { desired: 0 }, expected: { ...NOTHING, converged: true } },
  { name: 'stopping instances (TERMINATING) are waited for, not counted or terminated again', slots: ['v2:RUNNING', 'v2:RUNNING', 'v2:RUNNING', 'v2:TERMINATING'], expected: { ...NOTHING, converged: false } },

  // TERMINATED instances are replaced.
  { name: 'an instance found TERMINATED is dropped and replaced', slots: ['v2:RUNNING', 'v2:TERMINATED', 'v2:RUNNING'], expected: { ...NOTHING, launches: 1, drop: [1], converged: false } },
  { name: 'an instance no longer listed (GONE) is dropped and replaced', slots: ['v2:RUNNING', 'v2:RUNNING', 'v2:GONE'], expected: { ...NOTHING, launches: 1, drop: [2] } },

  // Rolling replacement.
  { name: 'rolling, batch 1: one replacement at a time, no old terminated before it serves', slots: ['v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING'], expected: { ...NOTHING, launches: 1 } },
  { name: 'rolling, batch 1: the batch is full while a replacement is PENDING', slots: ['v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING', 'v2:PENDING'], expected: { ...NOTHING } },
  { name: 'rolling: a replacement serving retires one old instance and the next launches', slots: ['v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING', 'v2:RUNNING'], expected: { ...NOTHING, launches: 1, terminate: [2] } },
  { name: 'rolling, batch 2: two in flight at once (pipelined)', slots: ['v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING', 'v2:RUNNING', 'v2:PENDING'], target: { batchSize: 2 }, expected: { ...NOTHING, launches: 1, terminate: [2] } },
  { name: 'rolling: the last old instance goes once every replacement serves', slots: ['v1:RUNNING', 'v2:RUNNING', 'v2:RUNNING', 'v2:RUNNING'], expected: { ...NOTHING, terminate: [0] } },
  { name: 'rolling, default batch: sized from the launch rate, capped at the desired count', slots: ['v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING'], target: { batchSize: undefined }, expected: { ...NOTHING, launches: 3 } },
  { name: 'replace all: every replacement at once, old ones kept until they serve', slots: ['v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING'], target: { updatePolicy: 'REPLACE_ALL', batchSize: undefined }, expected: { ...NOTHING, launches: 3 } },
  { name: 'an old instance not serving goes first', slots: ['v1:RUNNING', 'v1:PENDING', 'v1:RUNNING', 'v2:RUNNING'], expected: { terminate: [1] } },
  { name: 'rollback midway: 2 target and 2 other instances serve; one other retires, one target launches', slots: ['v2:RUNNING', 'v2:RUNNING', 'v1:RUNNING', 'v1:RUNNING'], expected: { ...NOTHING, launches: 1, terminate: [3] } },

  // Warm pool toggle.
  { name: 'warm pool on: RUNNING instances are suspended, also those launched before the change', slots: ['v2:RUNNING', 'v2:SUSPENDED', 'v2:RUNNING'], target: { suspendAfterLaunch: true }, expected: { ...NOTHING, suspend: [0, 2], converged: false } },
  { name: 'warm pool on: converged once every instance is SUSPENDED', slots: ['v2:SUSPENDED', 'v2:SUSPENDED', 'v2:SUSPENDED'], target: { suspendAfterLaunch: true }, expected: { ...NOTHING, converged: true } },
  { name: 'warm pool on: SUSPENDING is waited for', slots: ['v2:SUSPENDED', 'v2:SUSPENDING', 'v2:SUSPENDED'], target: { suspendAfterLaunch: true }, expected: { ...NOTHING, converged: false } },
  { name: 'warm pool off: SUSPENDED instances are resumed', slots: ['v2:SUSPENDED', 'v2:RUNNING', 'v2:SUSPENDED'], expected: { ...NOTHING, resume: [0, 2], converged: false } },
  { name: 'warm pool off: a SUSPENDED old instance still counts as serving during a replacement', slots: ['v1:SUSPENDED', 'v1:SUSPENDED', 'v1:SUSPENDED', 'v2:RUNNING'], expected: { ...NOTHING, launches: 1, terminate: [2] } },
];

describe('fleet plan (pure)', () => {
  test.each(cases)('$name', (c) => {
    const s = slots(...c.slots);
    const p = plan(input(s, c.target, c.extra));
    expect(p.superseded).toBe(false);
    expect(summary(p, s)).toMatchObject(c.expected);
  });

  test('superseded generation: a stale request\'s plan acts on nothing', () => {
    const s = slots('v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING', 'v2:RUNNING');
    for (const fenceGeneration of [3, undefined]) {
      const p = plan(input(s, {}, { fenceGeneration }));
      expect(p.superseded).toBe(true);
      expect(summary(p, s)).toEqual({ ...NOTHING, converged: false });
    }
  });

  test('quota-bound rollback: when launching first would exceed the memory quota, replace terminate-first and say why', () => {
    // The fleet learned from a refusal that it can hold 4 instances; 4 old ones run.
    const s = slots('v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING');
    const p = plan(input(s, { desired: 4 }, { limits: { launchRate: 5, capacity: 4 } }));
    expect(summary(p, s)).toMatchObject({ launches: 0, terminate: [3] });
    expect(p.reasons.join()).toMatch(/launching first would exceed the account's memory quota.*terminate-first/);
    expect(p.quotaBlocked).toBe(false);

    // The old one is stopping: wait for its memory, launch nothing yet, terminate nothing more.
    const stopping = slots('v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING', 'v1:TERMINATING');
    expect(summary(plan(input(stopping, { desired: 4 }, { limits: { launchRate: 5, capacity: 4 } })), stopping)).toMatchObject({ ...NOTHING });
    // It stopped: room for one launch.
    const freed = slots('v1:RUNNING', 'v1:RUNNING', 'v1:RUNNING', 'v1:TERMINATED');
    const afterFree = plan(input(freed, { desired: 4 }, { limits: { launchRate: 5, capacity: 4 } }));
    expect(summary(afterFree, freed)).toMatchObject({ launches: 1, terminate: [], drop: [3] });
    // With room for one more (quota fits 4 plus one), launch-first as usual.
    const p5 = plan(input(s, { desired: 4 }, { limits: { launchRate: 5, capacity: 5 } }));
    expect(summary(p5, s)).toMatchObject({ launches: 1, terminate: [] });
    expect(p5.reasons).toEqual([]);
  });

  test('quota-bound with nothing to replace: the plan reports the quota as blocking', () => {
    const s = slots('v2:RUNNING', 'v2:RUNNING');
    const p = plan(input(s, { desired: 4 }, { limits: { launchRate: 5, capacity: 2 } }));
    expect(p.launches).toBe(0);
    expect(p.quotaBlocked).toBe(true);
    expect(p.converged).toBe(false);
  });

  test('the learned capacity caps the launches of a create', () => {
    const p = plan(input([], { desired: 10 }, { limits: { launchRate: 5, capacity: 6 } }));
    expect(p.launches).toBe(6);
  });

  test('rolling batches pipeline to the end, never fewer than desired serving', () => {
    // Simulate: each round, in-flight replacements come up, the plan is applied.
    let s: PlanSlot[] = Array.from({ length: 10 }, (_, i) => ({ sk: `a${String(i).padStart(3, '0')}`, configHash: 'v1', phase: 'LAUNCHED', state: 'RUNNING' }));
    let next = 0;
    let rounds = 0;
    for (; rounds < 50; rounds++) {
      // What was launched last round is RUNNING now.
      s = s.map((x) => (x.state === 'PENDING' ? { ...x, state: 'RUNNING' } : x));
      const p = plan(input(s, { desired: 10, batchSize: 3 }));
      if (p.converged) break;
      s = s.filter((x) => !p.terminate.includes(x.sk));
      expect(s.filter((x) => x.state === 'RUNNING').length).toBeGreaterThanOrEqual(10);
      s = s.concat(Array.from({ length: p.launches }, () => ({ sk: `b${String(next++).padStart(3, '0')}`, configHash: 'v2', phase: 'LAUNCHED' as const, state: 'PENDING' })));
    }
    expect(s.every((x) => x.configHash === 'v2' && x.state === 'RUNNING')).toBe(true);
    expect(s).toHaveLength(10);
    expect(rounds).toBe(5); // 10 replacements, 3 at a time: 4 launch rounds, then the last retirements
  });

  test('autoBatchSize: ten seconds of the launch rate, at least 1, at most desired', () => {
    expect(autoBatchSize(5, 1000)).toBe(50);
    expect(autoBatchSize(5, 3)).toBe(3);
    expect(autoBatchSize(0.05, 1000)).toBe(1);
    expect(autoBatchSize(5, 0)).toBe(1);
  });
});
