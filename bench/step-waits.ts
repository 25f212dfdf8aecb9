/**
 * `npx tsx bench/step-waits.ts`: how long the demo's image, image-version and network-connector
 * requests wait for a poll after the service was really done (issue 13), at the deployed query
 * interval (15 s), on the emulator's manual clock (every figure is emulator time; a run takes
 * seconds). The requests of the demo's two deploys, one after the other, through the lifecycle
 * driver (the Provider framework's waiter), with the emulator's default state delays:
 * connector create, image create, version create, image update (a new build), version update
 * (a new version: replaced, the old one deleted). `--delay-scale N` multiplies the delays (real
 * builds take minutes, the emulator's default one 3 s).
 *
 * Side by side: **one check per call** (each isComplete call checks once: the handlers before
 * issue 13; `stepBudgetMs: 0`) and **rounds within the call** (this tree: re-checks every
 * ROUND_MS for up to STEP_BUDGET_MS). Real completion is the emulator's own time of the final state
 * (the version's SUCCESSFUL, the connector's ACTIVE), or the request's start when it was already so.
 */
import { LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { argNumber, printTable } from './cli';
import { DEFAULT_DELAYS, ManualClock, startEmulator } from '../emulator/src/index';
import { ImageHandler } from '../lambda/image/image-handler';
import { ImageVersionHandler } from '../lambda/image-version/image-version-handler';
import { NetworkConnectorHandler } from '../lambda/network-connector/network-connector-handler';
import type { Clock } from '../lambda/shared/clock';
import { LambdaCoreClient } from '../lambda/shared/lambda-core-client';
import type { ImageProps, ImageVersionProps, NetworkConnectorProps } from '../src/private/wire';
import { ResourceType } from '../src/private/wire';
import { LifecycleDriver, LifecycleResult } from '../test/support/lifecycle-driver';

const CREDS = { accessKeyId: 'test', secretAccessKey: 'test' };
const ACCOUNT = '123456789012';
/** `--delay-scale N`: the emulator's default state delays times N (builds of 3 s × N). */
const DELAY_SCALE = argNumber('delay-scale', 1);

interface Row { readonly request: string; readonly polls: number; readonly tookMs: number; readonly pastMs: number }

async function run(stepBudgetMs: number | undefined): Promise<Row[]> {
  process.env.MICROVMS_HANDLER_QUIET = '1';
  const clock = new ManualClock();
  const delays = Object.fromEntries(Object.entries(DEFAULT_DELAYS).map(([k, v]) => [k, v * DELAY_SCALE]));
  const emu = await startEmulator({ clock, faults: true, rateLimits: false, delays });
  const handlerClock: Clock = { now: () => clock.now(), sleep: async (ms) => { clock.advance(ms); } };
  const microvms = new LambdaMicrovmsClient({ endpoint: emu.url, region: emu.region, credentials: CREDS, maxAttempts: 8 });
  const core = new LambdaCoreClient({ region: emu.region, endpoint: emu.url, credentials: CREDS, clock: handlerClock });
  const options = { clock: handlerClock, stepBudgetMs };
  const wait = (ms: number) => handlerClock.sleep(ms);
  const image = new LifecycleDriver<ImageProps>({ handler: new ImageHandler(microvms, options), resourceType: ResourceType.IMAGE, logicalResourceId: 'Image', wait });
  const version = new LifecycleDriver<ImageVersionProps>({
    handler: new ImageVersionHandler(microvms, options), resourceType: ResourceType.IMAGE_VERSION, logicalResourceId: 'Version', wait,
  });
  const connector = new LifecycleDriver<NetworkConnectorProps>({
    handler: new NetworkConnectorHandler(core, options), resourceType: ResourceType.NETWORK_CONNECTOR, logicalResourceId: 'Connector', wait,
  });
  const snapshot = () => emu.snapshot() as any;
  /** Emulator ms at which `versionId` of the image became SUCCESSFUL. */
  const built = (arn: string, versionId: string) => {
    const stored = snapshot().images.find((i: any) => i.imageArn === arn);
    return 1000 * stored.versions.find((v: any) => v.imageVersion === versionId).updatedAt;
  };
  const rows: Row[] = [];
  const measure = async (request: string, go: () => Promise<LifecycleResult>, doneAt: (r: LifecycleResult) => number) => {
    const started = clock.now();
    const r = await go();
    if (r.status !== 'SUCCESS') throw new Error(`${request} failed: ${r.reason}`);
    const ended = clock.now();
    rows.push({ request, polls: r.polls, tookMs: ended - started, pastMs: ended - Math.max(started, doneAt(r)) });
    return r;
  };
  const imageProps = (code: string): ImageProps => ({
    Name: 'bench-image',
    CodeUri: `s3://assets/${code}.zip`,
    BaseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
    BuildRoleArn: `arn:aws:iam::${ACCOUNT}:role/build`,
    MemoryMiB: '2048',
    Architecture: 'ARM_64',
    BuildTimeoutSeconds: '1800',
  } as ImageProps);
  const versionProps = (arn: string, v: string): ImageVersionProps => ({ ImageArn: arn, ImageVersion: v, Status: 'ACTIVE', RemovalPolicy: 'retain' });
  try {
    await measure('connector create', () => connector.create({
      Name: 'bench-connector',
      SubnetIds: ['subnet-0aaa', 'subnet-0bbb'],
      SecurityGroupIds: ['sg-0ccc'],
      NetworkProtocol: 'IPv4',
      ComputeType: 'MicroVm',
      OperatorRoleArn: `arn:aws:iam::${ACCOUNT}:role/connector-operator`,
      TimeoutSeconds: '1800',
    }), (r) => Date.parse(snapshot().connectors.find((c: any) => c.Arn === r.physicalResourceId).LastModified));
    const created = await measure('image create', () => image.create(imageProps('v1')), (r) => built(r.physicalResourceId!, '1.0'));
    const arn = created.physicalResourceId!;
    await measure('version create (1.0)', () => version.create(versionProps(arn, '1.0')), () => built(arn, '1.0'));
    await measure('image update (build 2.0)', () => image.update(imageProps('v2')), () => built(arn, '2.0'));
    await measure('version update (2.0, 1.0 deleted)', () => version.update(versionProps(arn, '2.0')), () => built(arn, '2.0'));
  } finally {
    await emu.close();
  }
  return rows;
}

async function main(): Promise<void> {
  const before = await run(0);
  const now = await run(undefined);
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const cells = before.map((b, i) => {
    const n = now[i];
    return [b.request, String(b.polls), s(b.tookMs), s(b.pastMs), String(n.polls), s(n.tookMs), s(n.pastMs)];
  });
  const total = (rows: Row[]) => ({ took: rows.reduce((a, r) => a + r.tookMs, 0), past: rows.reduce((a, r) => a + r.pastMs, 0) });
  const tb = total(before);
  const tn = total(now);
  cells.push(['all (one after the other)', '', s(tb.took), s(tb.past), '', s(tn.took), s(tn.past)]);
  cells.push(['past real completion / wall time', '', '', `${(100 * tb.past / tb.took).toFixed(1)} %`, '', '', `${(100 * tn.past / tn.took).toFixed(1)} %`]);
  console.log(`query interval 15 s, emulator default delays × ${DELAY_SCALE} (a build ${3 * DELAY_SCALE} s), emulator time\n`);
  printTable(['request', 'polls', 'took', 'past done', 'polls', 'took', 'past done'], cells);
  console.log('\ncolumns 2-4: one check per isComplete call (before issue 13); 5-7: rounds within the call (this tree)');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
