/**
 * How long a local deploy waits for polls after a resource was really done (issue 13).
 *
 * Two records, both from outside the handlers:
 * - the Provider framework's waiter executions in ministack's Step Functions (ListStateMachines,
 *   ListExecutions, GetExecutionHistory): per custom resource request, when the waiter started,
 *   each isComplete call (a `TaskScheduled` event: one round), and when it ended (the framework
 *   answers CloudFormation from the last call);
 * - samples of our emulator's state taken every 100 ms during the deploy (`sampleState`): when the
 *   resource reached the state it ended in (the image's build settled, the version SUCCESSFUL with
 *   its status, the connector ACTIVE with its update applied, the fleet's live instances as they
 *   ended, or gone).
 *
 * Time past real completion = the waiter's end − max(the start of the last run of samples in the
 * final state, the waiter's start): an upper bound, it includes the last call's own latency and
 * the framework's answer to CloudFormation. Of it, waiting for a poll = the start of the call that
 * answered − that same completion time (zero when the call was already running: it saw the change
 * within its rounds). Precision: the sampling interval (100 ms).
 */
import type { LocalAws } from './aws';
import type { EmulatorState, StateSample } from './deploy';
import { ResourceType } from '../src/private/wire';

/** One custom resource request's waiter, as Step Functions recorded it. */
export interface WaiterRun {
  readonly logicalResourceId: string;
  readonly resourceType: string;
  readonly requestType: string;
  readonly physicalResourceId?: string;
  readonly properties: Record<string, any>;
  /** Epoch ms. */
  readonly started: number;
  readonly ended: number;
  /** Epoch ms at which each isComplete call was scheduled. */
  readonly calls: number[];
  /** isComplete calls. */
  readonly rounds: number;
  readonly succeeded: boolean;
}

/** Per resource request: rounds and time past real completion. */
export interface WaitRow {
  readonly resource: string;
  readonly requestType: string;
  readonly rounds: number;
  /** ms from the waiter's start to its end. */
  readonly waitMs: number;
  /** ms from real completion to the waiter's end; undefined when the emulator has no record of the resource. */
  readonly pastCompletionMs?: number;
  /** Of pastCompletionMs, ms until the call that answered started (waiting for a poll). */
  readonly pollWaitMs?: number;
}

export interface WaitReport {
  readonly rows: WaitRow[];
  readonly wallMs: number;
  readonly pastCompletionMs: number;
  /** pastCompletionMs / wallMs. */
  readonly fraction: number;
  readonly pollWaitMs: number;
  /** pollWaitMs / wallMs. */
  readonly pollWaitFraction: number;
}

const SFN = 'AWSStepFunctions';

/** The waiter executions that started at or after `sinceMs` (every state machine of the account). */
export async function waiterRuns(aws: LocalAws, sinceMs: number): Promise<WaiterRun[]> {
  const runs: WaiterRun[] = [];
  const machines = (await aws.json('states', `${SFN}.ListStateMachines`, '1.0', { maxResults: 1000 })).stateMachines ?? [];
  for (const sm of machines) {
    let nextToken: string | undefined;
    do {
      const page = await aws.json('states', `${SFN}.ListExecutions`, '1.0', { stateMachineArn: sm.stateMachineArn, maxResults: 1000, nextToken });
      for (const ex of page.executions ?? []) {
        if (toMs(ex.startDate) < sinceMs) continue;
        const history = await aws.json('states', `${SFN}.GetExecutionHistory`, '1.0', { executionArn: ex.executionArn, maxResults: 1000 });
        const run = parseRun(history.events ?? []);
        if (run) runs.push(run);
      }
      nextToken = page.nextToken ?? undefined;
    } while (nextToken);
  }
  return runs.sort((a, b) => a.started - b.started);
}

/** One execution's history (GetExecutionHistory events, oldest first) as a waiter run; undefined when it is not a custom resource's. */
export function parseRun(events: any[]): WaiterRun | undefined {
  const start = events.find((e) => e.type === 'ExecutionStarted');
  if (!start) return undefined;
  const input = JSON.parse(start.executionStartedEventDetails?.input ?? '{}');
  if (!input.LogicalResourceId) return undefined;
  const last = events[events.length - 1];
  return {
    logicalResourceId: input.LogicalResourceId,
    resourceType: input.ResourceType,
    requestType: input.RequestType,
    physicalResourceId: input.PhysicalResourceId,
    properties: input.ResourceProperties ?? {},
    started: toMs(start.timestamp),
    ended: toMs(last.timestamp),
    calls: events.filter((e) => e.type === 'TaskScheduled').map((e) => toMs(e.timestamp)),
    rounds: events.filter((e) => e.type === 'TaskScheduled').length,
    succeeded: events.some((e) => e.type === 'ExecutionSucceeded'),
  };
}

function toMs(t: string | number): number {
  return typeof t === 'number' ? t * 1000 : Date.parse(t);
}

/**
 * What of the emulator's state a resource's completion is judged by; undefined when the resource
 * is not one of ours.
 */
function signature(run: WaiterRun, state: EmulatorState): string | undefined {
  const id = run.physicalResourceId ?? '';
  switch (run.resourceType) {
    case ResourceType.IMAGE: {
      const image = state.images.find((i) => i.imageArn === id);
      return image ? `${image.state} ${image.latestActiveImageVersion}` : 'gone';
    }
    case ResourceType.IMAGE_VERSION: {
      const image = state.images.find((i) => i.imageArn === run.properties.ImageArn);
      const version = image?.versions.find((v) => v.imageVersion === String(run.properties.ImageVersion));
      return version ? `${version.state} ${version.status}` : 'gone';
    }
    case ResourceType.NETWORK_CONNECTOR: {
      const c = state.connectors.find((x) => x.Arn === id);
      return c ? `${c.State} ${c.LastUpdateStatus ?? ''}` : 'gone';
    }
    case ResourceType.FLEET:
      // The demo's one fleet: its live instances and their states.
      return state.microvms.filter((vm) => vm.state !== 'TERMINATED').map((vm) => `${vm.microvmId}:${vm.state}`).sort().join(',') || 'none';
    default:
      return undefined;
  }
}

/** When the resource entered the state it ended in (the first of the last run of equal samples up to the waiter's end). */
function realCompletion(run: WaiterRun, samples: StateSample[]): number | undefined {
  const before = samples.filter((s) => s.at <= run.ended);
  if (!before.length) return undefined;
  const final = signature(run, before[before.length - 1].state);
  if (final === undefined) return undefined;
  let at = before[before.length - 1].at;
  for (let i = before.length - 1; i >= 0 && signature(run, before[i].state) === final; i--) at = before[i].at;
  return at;
}

/** Rows per waiter, and their time past real completion as a fraction of the deploy's wall time. */
export function waitReport(runs: WaiterRun[], samples: StateSample[], wallMs: number): WaitReport {
  const rows = runs.map((run): WaitRow => {
    const done = realCompletion(run, samples);
    const from = done === undefined ? undefined : Math.max(done, run.started);
    const answering = run.calls[run.calls.length - 1];
    return {
      resource: `${run.logicalResourceId.replace(/[0-9A-F]{8}$/, '')} (${run.resourceType.replace(/^Custom::Lambda(MicroVm)?/, '')})`,
      requestType: run.requestType,
      rounds: run.rounds,
      waitMs: run.ended - run.started,
      pastCompletionMs: from === undefined ? undefined : Math.max(0, run.ended - from),
      pollWaitMs: from === undefined || answering === undefined ? undefined : Math.max(0, answering - from),
    };
  });
  const pastCompletionMs = rows.reduce((sum, r) => sum + (r.pastCompletionMs ?? 0), 0);
  const pollWaitMs = rows.reduce((sum, r) => sum + (r.pollWaitMs ?? 0), 0);
  const share = (ms: number) => (wallMs > 0 ? ms / wallMs : 0);
  return { rows, wallMs, pastCompletionMs, fraction: share(pastCompletionMs), pollWaitMs, pollWaitFraction: share(pollWaitMs) };
}

/** The report as text lines. */
export function formatWaitReport(report: WaitReport): string[] {
  const s = (ms: number | undefined) => (ms === undefined ? 'n/a' : `${(ms / 1000).toFixed(2)} s`);
  const lines = [`${'resource'.padEnd(40)} ${'request'.padEnd(8)} ${'rounds'.padStart(6)} ${'waited'.padStart(8)} ${'past done'.padStart(10)} ${'for a poll'.padStart(10)}`];
  for (const r of report.rows) {
    lines.push(`${r.resource.padEnd(40)} ${r.requestType.padEnd(8)} ${String(r.rounds).padStart(6)} ${s(r.waitMs).padStart(8)} ${s(r.pastCompletionMs).padStart(10)} ${s(r.pollWaitMs).padStart(10)}`);
  }
  lines.push(`total past real completion ${s(report.pastCompletionMs)} of ${(report.wallMs / 1000).toFixed(1)} s wall time: ${(report.fraction * 100).toFixed(1)} %; ` +
    `of it waiting for a poll ${s(report.pollWaitMs)}: ${(report.pollWaitFraction * 100).toFixed(1)} %`);
  return lines;
}
