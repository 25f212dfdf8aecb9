/**
 * local/waits.ts: how the demo's report reads a waiter's Step Functions history and the emulator's
 * state samples (issue 13). Pure functions: no servers.
 */
import type { EmulatorState, StateSample } from '../local/deploy';
import { formatWaitReport, parseRun, waitReport } from '../local/waits';
import { ResourceType } from '../src/private/wire';

const ARN = 'arn:aws:lambda:us-east-1:000000000000:microvm-image:Demo-Image';
const T0 = Date.parse('2026-11-30T09:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();

/** A waiter's history: started at 0, one TaskScheduled per isComplete call, ended at `end`. */
function history(calls: number[], end: number): any[] {
  const input = { LogicalResourceId: 'Image9D742C96', ResourceType: ResourceType.IMAGE, RequestType: 'Create', PhysicalResourceId: ARN, ResourceProperties: {} };
  return [
    { type: 'ExecutionStarted', timestamp: at(0), executionStartedEventDetails: { input: JSON.stringify(input) } },
    ...calls.flatMap((c, i) => [
      { type: 'TaskScheduled', timestamp: at(c) },
      { type: i === calls.length - 1 ? 'TaskSucceeded' : 'TaskFailed', timestamp: at(c + 50) },
    ]),
    { type: 'ExecutionSucceeded', timestamp: at(end) },
  ];
}

/** Samples every 100 ms: the image builds until `builtAt`, then is CREATED with version 1.0. */
function samples(builtAt: number): StateSample[] {
  const out: StateSample[] = [];
  for (let t = 0; t <= 1200; t += 100) {
    const image = t < builtAt
      ? { name: 'Demo-Image', imageArn: ARN, state: 'CREATING', latestActiveImageVersion: null, versions: [] }
      : { name: 'Demo-Image', imageArn: ARN, state: 'CREATED', latestActiveImageVersion: '1.0', versions: [] };
    out.push({ at: T0 + t, state: { images: [image], microvms: [], connectors: [] } as EmulatorState });
  }
  return out;
}

test('one check per call: the time from the build\'s end to the call that saw it is waiting for a poll', () => {
  const run = parseRun(history([0, 300, 600, 900], 1000))!;
  expect(run).toMatchObject({ logicalResourceId: 'Image9D742C96', requestType: 'Create', rounds: 4, started: T0, ended: T0 + 1000 });
  const report = waitReport([run], samples(700), 2000);
  expect(report.rows).toEqual([{ resource: 'Image (Image)', requestType: 'Create', rounds: 4, waitMs: 1000, pastCompletionMs: 300, pollWaitMs: 200 }]);
  expect(report.fraction).toBeCloseTo(0.15);
  expect(report.pollWaitFraction).toBeCloseTo(0.1);
  expect(formatWaitReport(report).pop()).toBe('total past real completion 0.30 s of 2.0 s wall time: 15.0 %; of it waiting for a poll 0.20 s: 10.0 %');
});

test('rounds within the call: the call that answered was running when the build ended, so nothing waited for a poll', () => {
  const report = waitReport([parseRun(history([0], 750))!], samples(700), 2000);
  expect(report.rows[0]).toMatchObject({ rounds: 1, pastCompletionMs: 50, pollWaitMs: 0 });
});

test('a resource already in its final state when the waiter started counts from the start', () => {
  const report = waitReport([parseRun(history([0], 200))!], samples(0), 2000);
  expect(report.rows[0]).toMatchObject({ pastCompletionMs: 200, pollWaitMs: 0 });
});

test('an execution that is not a custom resource\'s waiter is skipped', () => {
  expect(parseRun([{ type: 'ExecutionStarted', timestamp: at(0), executionStartedEventDetails: { input: '{}' } }])).toBeUndefined();
});
