import { LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { ManualClock, RunningEmulator, startEmulator } from '../../emulator/src';
import type { Clock } from '../../lambda/shared/clock';
import { LambdaCoreClient } from '../../lambda/shared/lambda-core-client';
import { CREDENTIALS, manualHandlerClock } from '../support/handler-env';
import { Handler, LifecycleDriver, LifecycleResult, Waiter } from '../support/lifecycle-driver';

/**
 * A seeded chaos run over the custom resource handlers: random sequences of create, update,
 * rename, rollback, cancel and delete, played by the lifecycle driver (CloudFormation and the
 * Provider framework as they really behave), against the emulator with injected throttling, 5xx,
 * build and connector failures, quota refusals, eventual consistency and crashes.
 *
 * After every operation that succeeded, what is live must equal what the stack last asked for;
 * every rollback and every stack delete must succeed (faults are injected only into the forward
 * operations); every waiter must end (the framework's total timeout bounds it); and once the
 * sequence's final stack delete has run, nothing the sequence made may be left.
 *
 * A resource type plugs in with one ChaosAdapter (the fleet's goes next to these).
 */

/* eslint-disable no-bitwise -- a seeded PRNG is 32-bit integer arithmetic */
/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  public next(): number {
    this.s = (this.s + 0x6D2B79F5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  public int(n: number): number {
    return Math.floor(this.next() * n);
  }
  public chance(p: number): boolean {
    return this.next() < p;
  }
  public pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}
/* eslint-enable no-bitwise */

/** What an adapter gets: the emulator, clients that retry at once (no real sleeping), the clock. */
export interface ChaosContext {
  readonly emu: RunningEmulator;
  readonly clock: ManualClock;
  readonly handlerClock: Clock;
  /**
   * Work per isComplete call for the handlers whose steps re-check within a call (all but the
   * fleet's): shorter than the deployed STEP_BUDGET_MS so that a build (60 s here) still spans
   * several calls and CloudFormation can move on between them, as it does with longer builds on AWS.
   */
  readonly stepBudgetMs: number;
  readonly microvms: LambdaMicrovmsClient;
  readonly lambdaCore: LambdaCoreClient;
  readonly rng: Rng;
  /** Faults injected so far in this run, by kind. */
  readonly faults: Record<string, number>;
}

export type PropsKind = 'create' | 'update' | 'rename';

export interface ChaosAdapter<P extends object = any> {
  readonly name: string;
  readonly resourceType: string;
  /** Fixtures the resource needs (made outside the stack under test), once per sequence. */
  setup?(ctx: ChaosContext): Promise<void>;
  handler(ctx: ChaosContext): Handler;
  /** Properties for a create, an in-place update, or a replacement (rename), from the previous ones. */
  props(ctx: ChaosContext, kind: PropsKind, previous?: P): P;
  /** Injects one fault of this resource's own kinds (build or connector failures...); returns its name. */
  injectFault?(ctx: ChaosContext, next: P): string | undefined;
  /** Throws when what is live for `physicalId` is not what `asked` says. */
  checkLive(ctx: ChaosContext, physicalId: string, asked: P): Promise<void>;
  /** Throws when anything the sequence made is left (after the stack delete and a drain). */
  checkNothingLeft(ctx: ChaosContext): Promise<void>;
}

export interface SequenceResult {
  readonly seed: number;
  readonly adapter: string;
  readonly ops: string[];
  readonly error?: string;
}

/** A retry strategy for the SDK client that retries what the standard one retries, without waiting. */
function instantRetries(maxAttempts: number) {
  const token = (count: number) => ({ getRetryCount: () => count, getRetryDelay: () => 0 });
  return {
    mode: 'standard',
    acquireInitialRetryToken: async () => token(0),
    refreshRetryTokenForRetry: async (t: { getRetryCount(): number }, info: { errorType: string }) => {
      if (t.getRetryCount() + 1 >= maxAttempts || info.errorType === 'CLIENT_ERROR') throw new Error('no more retries');
      return token(t.getRetryCount() + 1);
    },
    recordSuccess: () => undefined,
  };
}

/** See ChaosContext.stepBudgetMs. */
const CHAOS_STEP_BUDGET_MS = 20_000;

const FORWARD_OPS = ['update', 'rename', 'updateThenRollback', 'cancelUpdate', 'deleteAndRecreate'] as const;

/** One sequence for one adapter and seed. Throws (with the op log) on the first broken invariant. */
export async function runSequence(
  emu: RunningEmulator, clock: ManualClock, adapter: ChaosAdapter, seed: number, faults: Record<string, number>,
): Promise<SequenceResult> {
  emu.reset();
  const rng = new Rng(seed);
  const handlerClock = manualHandlerClock(clock);
  const ctx: ChaosContext = {
    emu,
    clock,
    handlerClock,
    stepBudgetMs: CHAOS_STEP_BUDGET_MS,
    rng,
    faults,
    microvms: new LambdaMicrovmsClient({
      endpoint: emu.url, region: emu.region, credentials: CREDENTIALS, maxAttempts: 6, retryStrategy: instantRetries(6) as any,
    }),
    lambdaCore: new LambdaCoreClient({
      region: emu.region, endpoint: emu.url, credentials: CREDENTIALS, clock: { now: () => clock.now(), sleep: async () => undefined },
    }),
  };
  const ops: string[] = [];
  const fail = (what: string) => {
    throw new Error(`${what} [ops: ${ops.join(' → ')}]`);
  };
  try {
    await adapter.setup?.(ctx);
    const handler = adapter.handler(ctx);
    const driver = new LifecycleDriver<any>({
      handler, resourceType: adapter.resourceType, logicalResourceId: 'Chaos', wait: (ms) => handlerClock.sleep(ms), queryIntervalMs: 15_000,
    });
    /** What the stack last asked for and that exists, or undefined when nothing is deployed. */
    let asked: object | undefined;
    const expectLive = async () => {
      if (!asked || !driver.physicalResourceId) return;
      await adapter.checkLive(ctx, driver.physicalResourceId, asked).catch((e) => fail(`live differs from what the stack asked: ${(e as Error).message}`));
    };
    const mustSucceed = (r: LifecycleResult, what: string) => {
      if (r.status !== 'SUCCESS') fail(`${what} did not converge: ${r.reason}`);
    };
    const withFaults = (next: object) => {
      injectFaults(ctx, adapter, next);
    };
    const clearFaults = () => emu.faults.clear();

    // Create (possibly cancelled, possibly failing: then CloudFormation deletes what it reported).
    const create = async () => {
      const props = adapter.props(ctx, 'create');
      withFaults(props);
      if (rng.chance(0.2)) {
        ops.push('cancelCreate');
        const started = await driver.startCreate(props, crashOptions(rng));
        clearFaults();
        if (started instanceof Waiter) {
          for (let i = rng.int(3); i > 0; i--) await started.poll();
          const id = rng.chance(0.5) ? 'generated' : 'real';
          mustSucceed(await driver.delete({ physicalResourceId: id }), `delete (${id} id) of a cancelled create`);
          await started.run(); // the stale waiter runs to its end, whatever it answers
        } else {
          mustSucceed(await driver.delete(), 'delete after a failed create');
        }
        asked = undefined;
        return;
      }
      ops.push('create');
      const r = await driver.create(props, crashOptions(rng));
      clearFaults();
      if (r.status === 'SUCCESS') {
        asked = props;
        await expectLive();
      } else {
        ops.push('rollbackCreate');
        mustSucceed(await driver.delete(), 'the rollback (Delete) of a failed create');
        asked = undefined;
      }
    };

    await create();
    const steps = 1 + rng.int(4);
    for (let i = 0; i < steps; i++) {
      clock.advance(rng.int(4) * 60_000);
      if (!asked) {
        await create();
        continue;
      }
      const op = rng.pick(FORWARD_OPS);
      ops.push(op);
      if (op === 'deleteAndRecreate') {
        mustSucceed(await driver.delete(), 'delete');
        asked = undefined;
        drain(clock);
        await create();
        continue;
      }
      const kind: PropsKind = op === 'rename' ? 'rename' : 'update';
      const next = adapter.props(ctx, kind, asked as any);
      withFaults(next);
      if (op === 'cancelUpdate') {
        const started = await driver.startUpdate(next, crashOptions(rng));
        clearFaults();
        if (started instanceof Waiter) {
          for (let j = rng.int(3); j > 0; j--) await started.poll();
          mustSucceed(await driver.rollback(), 'rollback of a cancelled update');
          await started.run(); // stale
        } else {
          mustSucceed(await driver.rollback(), 'rollback of an update whose onEvent failed');
        }
        await expectLive();
        continue;
      }
      // The cleanup phase (the Delete of a replaced resource) runs after the faults of the update:
      // CloudFormation never rolls back because of it.
      const r = await driver.update(next, { ...crashOptions(rng), deferCleanup: true });
      clearFaults();
      if (r.status !== 'SUCCESS' || op === 'updateThenRollback') {
        ops.push('rollback');
        mustSucceed(await driver.rollback(), r.status === 'SUCCESS' ? 'rollback of a successful update' : 'rollback of a failed update');
      } else {
        mustSucceed(await driver.runCleanup(), 'the cleanup of a replacement');
        asked = next;
      }
      await expectLive();
    }
    // The stack delete, then time for every delete and build to drain.
    ops.push('stackDelete');
    clearFaults();
    mustSucceed(await driver.delete(), 'stack delete');
    drain(clock);
    await adapter.checkNothingLeft(ctx).catch((e) => fail(`left behind: ${(e as Error).message}`));
    return { seed, adapter: adapter.name, ops };
  } catch (err) {
    return { seed, adapter: adapter.name, ops, error: (err as Error).message };
  } finally {
    emu.faults.clear();
  }
}

function drain(clock: ManualClock): void {
  clock.advance(3 * 3600_000);
}

function crashOptions(rng: Rng) {
  if (!rng.chance(0.15)) return {};
  return rng.chance(0.5) ? { crash: 'afterService' as const } : { crashIsCompleteOnPoll: 1 + rng.int(3) };
}

const GENERIC_FAULTS = [
  { kind: 'throttle', mode: 'throttle' as const },
  { kind: '5xx', mode: 'error' as const, errorType: 'InternalServerException', status: 500, message: 'injected 5xx' },
  { kind: 'quota', mode: 'error' as const, errorType: 'ServiceQuotaExceededException', status: 402, message: 'The base maximum allocated memory limit has been reached for this account.' },
];
const FAULTED_OPERATIONS = [
  'GetMicrovmImage', 'CreateMicrovmImage', 'UpdateMicrovmImage', 'DeleteMicrovmImage', 'ListTags', 'TagResource', 'GetMicrovmImageVersion',
  'UpdateMicrovmImageVersion', 'GetNetworkConnector', 'CreateNetworkConnector', 'UpdateNetworkConnector', 'DeleteNetworkConnector',
];

/** Zero to two faults for the next forward operation. */
function injectFaults(ctx: ChaosContext, adapter: ChaosAdapter, next: object): void {
  const { rng, emu, faults } = ctx;
  const count = rng.int(3);
  for (let i = 0; i < count; i++) {
    const roll = rng.next();
    let kind: string | undefined;
    if (roll < 0.5) {
      const f = rng.pick(GENERIC_FAULTS);
      // Throttling and 5xx are retried by the clients (up to 6 attempts): 1-3 in a row pass, more fail the request.
      const n = f.kind === 'quota' ? 1 : 1 + rng.int(7);
      const { kind: _kind, ...fault } = f;
      emu.faults.operation({ ...fault, operation: rng.pick(FAULTED_OPERATIONS), count: n });
      kind = f.kind;
    } else if (roll < 0.65) {
      emu.faults.eventualConsistency({ ms: 1000 + rng.int(20_000) });
      kind = 'eventualConsistency';
    } else {
      kind = adapter.injectFault?.(ctx, next);
    }
    if (kind) faults[kind] = (faults[kind] ?? 0) + 1;
  }
}

/** Runs `sequences` sequences from `seed`, round-robin over the adapters. */
export async function runChaos(adapters: ChaosAdapter[], opts: {
  sequences: number; seed: number; onProgress?: (done: number, failures: number) => void;
}) {
  const clock = new ManualClock();
  const emu = await startEmulator({
    clock,
    faults: true,
    rateLimits: false,
    // Builds outlast a few polls, so that CloudFormation can move on while one runs.
    delays: { imageBuildInProgress: 60_000, connectorCreate: 30_000, connectorUpdate: 20_000 },
  });
  process.env.MICROVMS_HANDLER_QUIET = '1';
  const faults: Record<string, number> = {};
  const failures: SequenceResult[] = [];
  try {
    for (let i = 0; i < opts.sequences; i++) {
      const seed = (opts.seed + i) % 4294967296;
      const r = await runSequence(emu, clock, adapters[i % adapters.length], seed, faults);
      if (r.error) failures.push(r);
      opts.onProgress?.(i + 1, failures.length);
    }
  } finally {
    await emu.close();
  }
  return { sequences: opts.sequences, faults, failures };
}
