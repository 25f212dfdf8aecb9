import { CaseResult, compareWithFixture, loadCases, normalize, runConformance, summarize, summaryLine } from '../../emulator/src/conformance';
import { ManualClock, RunningEmulator, startEmulator } from '../../emulator/src/index';

/**
 * Every step of every recorded scenario (aws-recorded/, data plane included) must match: there is no
 * allow-list of deviations. The runner's summary is printed.
 */
const RECORDED_STEPS = 101;

let emu: RunningEmulator;
let results: CaseResult[];
beforeAll(async () => {
  emu = await startEmulator({ clock: new ManualClock(), region: 'us-east-2' });
  results = await runConformance({ url: emu.url, region: emu.region, account: emu.account });
  // eslint-disable-next-line no-console
  console.log([summaryLine(results), ...summarize(results)].join('\n'));
});
afterAll(async () => { await emu.close(); });

test('every recorded scenario ran', () => {
  expect(results.map((r) => r.caseId).sort()).toEqual(loadCases().map((c) => c.id).sort());
  expect(results.reduce((n, r) => n + r.steps.length, 0)).toBe(RECORDED_STEPS);
  expect(summaryLine(results)).toBe(`conformance: 11 scenarios (11 passed), ${RECORDED_STEPS} steps: ${RECORDED_STEPS} passed, 0 failed, 0 skipped`);
});

test.each(loadCases().map((c) => c.id))('case %s matches the recording, every step', (id) => {
  const r = results.find((x) => x.caseId === id)!;
  expect(r.steps.filter((s) => !s.ok).map((s) => `${s.step}: ${s.problems.join('; ')}`)).toEqual([]);
});

test('the comparison catches differences after normalization', () => {
  expect(normalize({ createdAt: 1785000000.5, arn: 'arn:aws:lambda:us-west-2:210987654321:microvm-image:x', id: '0f8fad5b-d9cb-469f-a165-70867728950e' }))
    .toEqual({ arn: 'arn:aws:lambda:REGION:ACCOUNT:microvm-image:x', createdAt: 'TIMESTAMP', id: 'UUID' });
  expect(compareWithFixture({ state: 'CREATED', tags: {} }, { state: 'CREATED', tags: {} })).toEqual([]);
  expect(compareWithFixture({ state: 'CREATED' }, { state: 'CREATING' })).toEqual(['state: expected "CREATED", got "CREATING"']);
  expect(compareWithFixture({ a: null }, {})).toEqual(['a: missing (recorded null)']);
  expect(compareWithFixture({}, { extra: 1 })).toEqual(['extra: not in the recording (1)']);
  expect(compareWithFixture({}, { __type: 'X' }, ['__type'])).toEqual([]);
});
