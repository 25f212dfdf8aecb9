import { CaseResult, compareWithFixture, loadCases, normalize, runConformance } from '../../emulator/src/conformance';
import { ManualClock, RunningEmulator, startEmulator } from '../../emulator/src/index';

/**
 * Known deviations from the recorded AWS behaviour, `caseId/stepName` → reason. Keep in sync with
 * emulator/README.md ("Conformance"). Empty: every recorded step currently matches.
 */
const ALLOWED_DEVIATIONS: Record<string, string> = {};

let emu: RunningEmulator;
let results: CaseResult[];
beforeAll(async () => {
  emu = await startEmulator({ clock: new ManualClock(), region: 'us-east-2' });
  results = await runConformance({ url: emu.url, region: emu.region, account: emu.account });
});
afterAll(async () => { await emu.close(); });

test('every recorded scenario ran', () => {
  expect(results.map((r) => r.caseId).sort()).toEqual(loadCases().map((c) => c.id).sort());
  expect(results.reduce((n, r) => n + r.steps.length, 0)).toBeGreaterThan(90);
});

test.each(loadCases().map((c) => c.id))('case %s matches the recording (or is an allowed deviation)', (id) => {
  const r = results.find((x) => x.caseId === id)!;
  const unexpected = r.steps.filter((s) => !s.ok && !(`${s.caseId}/${s.step}` in ALLOWED_DEVIATIONS)).map((s) => `${s.step}: ${s.problems.join('; ')}`);
  expect(unexpected).toEqual([]);
  // A stale allow-list entry (the step now passes) must be removed.
  const stale = r.steps.filter((s) => s.ok && `${s.caseId}/${s.step}` in ALLOWED_DEVIATIONS).map((s) => s.step);
  expect(stale).toEqual([]);
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
