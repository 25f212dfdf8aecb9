/**
 * Issue 13: the image, image-version and network-connector isComplete steps keep checking within
 * one call (every ROUND_MS, fenced each round) until done or the call's budget is used, so a change
 * that lands mid-call is answered in that call, about one round after it, not a query interval
 * later. Time is the emulator's manual clock: the handler's sleeps advance it, nothing sleeps.
 */
import { TagResourceCommand } from '@aws-sdk/client-lambda-microvms';
import { handlerEnv, HandlerEnv } from './support/handler-env';
import { imageProps, ImageWire } from './support/image-props';
import { LifecycleDriver, Waiter } from './support/lifecycle-driver';
import { ManualClock, RunningEmulator, startEmulator } from '../emulator/src';
import { ImageHandler } from '../lambda/image/image-handler';
import { ImageVersionHandler } from '../lambda/image-version/image-version-handler';
import { NetworkConnectorHandler } from '../lambda/network-connector/network-connector-handler';
import type { Clock } from '../lambda/shared/clock';
import { ROUND_MS, STEP_BUDGET_MS } from '../lambda/shared/framework';
import { LambdaCoreClient } from '../lambda/shared/lambda-core-client';
import { FENCE_TAG_KEY, formatFence, requestHash } from '../lambda/shared/ownership';
import { ImageVersionProps, IS_COMPLETE_TIMEOUT_SECONDS, NetworkConnectorProps, ResourceType } from '../src/private/wire';

const CREDS = { accessKeyId: 'test', secretAccessKey: 'test' };
/** The emulator's build: PENDING then IN_PROGRESS, 9 s in all: it ends mid-interval (15 s). */
const BUILD_MS = 9_000;
const QUERY_INTERVAL_MS = 15_000;

/** A handler clock over the emulator's manual clock that runs `onSleep` after each of its sleeps. */
function hookedClock(clock: ManualClock, onSleep: (n: number) => Promise<void>): Clock {
  let n = 0;
  return { now: () => clock.now(), sleep: async (ms) => { clock.advance(ms); await onSleep(++n); } };
}

describe('image and image-version steps work on within one isComplete call', () => {
  let env: HandlerEnv;
  const imageDriver = (handler: ImageHandler) => new LifecycleDriver<ImageWire>({
    handler, resourceType: ResourceType.IMAGE, logicalResourceId: 'Image', wait: env.wait, queryIntervalMs: QUERY_INTERVAL_MS,
  });

  beforeEach(async () => {
    env = await handlerEnv({ delays: { imageBuildPending: 1_000, imageBuildInProgress: BUILD_MS - 1_000 } });
  });
  afterEach(async () => env.emu.close());

  test('a build that ends mid-interval is answered in the first call, within one round of its end', async () => {
    const started = env.clock.now();
    const r = await imageDriver(new ImageHandler(env.client, { clock: env.handlerClock })).create(imageProps('cont-create'));
    expect(r.status).toBe('SUCCESS');
    expect(r.polls).toBe(1);
    const answeredAfter = env.clock.now() - started;
    expect(answeredAfter).toBeGreaterThanOrEqual(BUILD_MS);
    expect(answeredAfter).toBeLessThanOrEqual(BUILD_MS + ROUND_MS); // polled once per interval, it would be 15 s
  });

  test('an update\'s build is answered the same way, and a version resource waiting on it too', async () => {
    const images = new ImageHandler(env.client, { clock: env.handlerClock });
    const d = imageDriver(images);
    const arn = (await d.create(imageProps('cont-update'))).physicalResourceId!;
    const update = await d.startUpdate(imageProps('cont-update', { CodeUri: 's3://assets/code-v2.zip' }));
    if (!(update instanceof Waiter)) throw new Error(update.reason);
    // The version resource starts waiting on 2.0 while it builds (a dependent resource deployed in parallel).
    const versions = new LifecycleDriver<ImageVersionProps>({
      handler: new ImageVersionHandler(env.client, { clock: env.handlerClock }),
      resourceType: ResourceType.IMAGE_VERSION,
      logicalResourceId: 'Version',
      wait: env.wait,
      queryIntervalMs: QUERY_INTERVAL_MS,
    });
    const started = env.clock.now();
    const version = await versions.create({ ImageArn: arn, ImageVersion: '2.0', Status: 'ACTIVE', RemovalPolicy: 'retain' });
    expect(version).toMatchObject({ status: 'SUCCESS', polls: 1 });
    expect(env.clock.now() - started).toBeLessThanOrEqual(BUILD_MS + ROUND_MS);
    // The image's own waiter, polled now, finds the build done in its first round.
    const r = await update.run();
    expect(r).toMatchObject({ status: 'SUCCESS', polls: 1 });
    expect(r.data.ImageVersion).toBe('2.0');
  });

  test('a call answers "not yet" once its budget is used, well inside the function\'s 2 minutes', async () => {
    const d = imageDriver(new ImageHandler(env.client, { clock: env.handlerClock }));
    const waiter = await d.startCreate(imageProps('cont-budget'));
    if (!(waiter instanceof Waiter)) throw new Error(waiter.reason);
    env.emu.faults.hold(waiter.physicalResourceId); // the build does not move
    const started = env.clock.now();
    expect(await waiter.poll()).toBeUndefined();
    const spent = env.clock.now() - started;
    expect(spent).toBeLessThanOrEqual(STEP_BUDGET_MS);
    expect(spent).toBeGreaterThanOrEqual(STEP_BUDGET_MS - 2 * ROUND_MS);
    expect(STEP_BUDGET_MS).toBeLessThanOrEqual(IS_COMPLETE_TIMEOUT_SECONDS * 1000 - 30_000); // room for the round in flight and the answer
    env.emu.faults.release(waiter.physicalResourceId);
    const r = await waiter.run();
    expect(r).toMatchObject({ status: 'SUCCESS', polls: 2 });
  });

  test('the fence is checked every round: a waiter superseded mid-call stops in that call without acting', async () => {
    let arn = '';
    const clock = hookedClock(env.clock, async (n) => {
      // Two rounds into the call, a later request takes the image (CloudFormation moved on).
      if (n === 2) await env.client.send(new TagResourceCommand({ Resource: arn, Tags: { [FENCE_TAG_KEY]: formatFence({ request: requestHash('a-later-request') }) } }));
    });
    const d = imageDriver(new ImageHandler(env.client, { clock }));
    const waiter = await d.startCreate(imageProps('cont-fence'));
    if (!(waiter instanceof Waiter)) throw new Error(waiter.reason);
    arn = waiter.physicalResourceId;
    const started = env.clock.now();
    const r = await waiter.run();
    expect(r.status).toBe('FAILED');
    expect(r.polls).toBe(1);
    expect(r.reason).toMatch(/superseded \(the image now follows request .*\): stopped without acting/);
    expect(env.clock.now() - started).toBe(2 * ROUND_MS); // the third round saw the new fence
  });
});

describe('network-connector steps work on within one isComplete call', () => {
  let clock: ManualClock;
  let emu: RunningEmulator;
  beforeAll(async () => {
    clock = new ManualClock();
    emu = await startEmulator({ clock, faults: true, rateLimits: false, delays: { connectorCreate: 7_000 } });
  });
  afterAll(() => emu.close());

  test('a connector that turns ACTIVE mid-interval is answered in the first call, within one round', async () => {
    const handlerClock: Clock = { now: () => clock.now(), sleep: async (ms) => { clock.advance(ms); } };
    const client = new LambdaCoreClient({ region: 'us-east-1', endpoint: emu.url, credentials: CREDS, clock: handlerClock });
    const d = new LifecycleDriver<NetworkConnectorProps>({
      handler: new NetworkConnectorHandler(client, { clock: handlerClock }),
      resourceType: ResourceType.NETWORK_CONNECTOR,
      wait: (ms) => handlerClock.sleep(ms),
      queryIntervalMs: QUERY_INTERVAL_MS,
    });
    const started = clock.now();
    const r = await d.create({
      Name: 'cont-connector',
      SubnetIds: ['subnet-0aaa'],
      SecurityGroupIds: ['sg-0ccc'],
      NetworkProtocol: 'IPv4',
      ComputeType: 'MicroVm',
      OperatorRoleArn: 'arn:aws:iam::123456789012:role/connector-operator',
      TimeoutSeconds: '1800',
    });
    expect(r).toMatchObject({ status: 'SUCCESS', polls: 1 });
    expect(clock.now() - started).toBeGreaterThanOrEqual(7_000);
    expect(clock.now() - started).toBeLessThanOrEqual(7_000 + ROUND_MS);
  });
});
