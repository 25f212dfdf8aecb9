/**
 * The network connector provider against the local emulator, through the real Lambda Core client
 * over HTTP, with CloudFormation and the Provider framework played by the LifecycleDriver. Time
 * is the emulator's manual clock: polls and retries advance it instead of sleeping.
 */
import { ManualClock, RunningEmulator, startEmulator } from '../emulator/src';
import { manualHandlerClock } from './support/handler-env';
import { LifecycleDriver, Waiter } from './support/lifecycle-driver';
import { NetworkConnectorHandler } from '../lambda/network-connector/network-connector-handler';
import { LambdaCoreClient } from '../lambda/shared/lambda-core-client';
import { HANDLER_TAG_PREFIX } from '../lambda/shared/ownership';
import { NetworkConnectorProps, ResourceType } from '../src/private/wire';

process.env.MICROVMS_HANDLER_QUIET = '1';

const OPERATOR_ROLE = 'arn:aws:iam::123456789012:role/connector-operator';
const CREDS = { accessKeyId: 'test', secretAccessKey: 'test' };

let clock: ManualClock;
let emu: RunningEmulator;
let client: LambdaCoreClient;

beforeAll(async () => {
  clock = new ManualClock();
  emu = await startEmulator({ clock, faults: true, rateLimits: false });
});
afterAll(() => emu.close());
beforeEach(() => {
  emu.reset();
  client = new LambdaCoreClient({ region: 'us-east-1', endpoint: emu.url, credentials: CREDS, clock: manualHandlerClock(clock) });
});

/** The user's tags, without the handler's owner and fence tags. */
const userTags = (tags: Record<string, string>) => Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith(HANDLER_TAG_PREFIX)));

function props(overrides: Partial<NetworkConnectorProps> = {}): NetworkConnectorProps {
  return {
    Name: 'db-access',
    SubnetIds: ['subnet-0aaa', 'subnet-0bbb'],
    SecurityGroupIds: ['sg-0ccc'],
    NetworkProtocol: 'IPv4',
    ComputeType: 'MicroVm',
    OperatorRoleArn: OPERATOR_ROLE,
    Tags: { team: 'data' },
    TimeoutSeconds: '1800',
    ...overrides,
  };
}

function driver(): LifecycleDriver<NetworkConnectorProps> {
  const handlerClock = manualHandlerClock(clock);
  const handler = new NetworkConnectorHandler(client, { clock: handlerClock });
  return new LifecycleDriver<NetworkConnectorProps>({
    handler, resourceType: ResourceType.NETWORK_CONNECTOR, wait: (ms) => handlerClock.sleep(ms), queryIntervalMs: 15_000,
  });
}

function connectors(): any[] {
  return (emu.snapshot() as any).connectors;
}

describe('NetworkConnector provider (emulator)', () => {
  test('create: PENDING → ACTIVE, attributes, tags and configuration as asked', async () => {
    const d = driver();
    const r = await d.create(props());
    expect(r.status).toBe('SUCCESS');
    expect(r.physicalResourceId).toMatch(/^arn:aws:lambda:us-east-1:123456789012:network-connector:nc-[0-9a-f-]+$/);
    expect(r.data).toEqual({ NetworkConnectorArn: r.physicalResourceId, NetworkConnectorId: expect.stringMatching(/^nc-/), NetworkConnectorName: 'db-access' });
    expect(r.polls).toBeGreaterThanOrEqual(1);
    const c = await client.getNetworkConnector({ Identifier: r.physicalResourceId! });
    expect(c).toMatchObject({
      State: 'ACTIVE',
      OperatorRole: OPERATOR_ROLE,
      Configuration: { VpcEgressConfiguration: { SubnetIds: ['subnet-0aaa', 'subnet-0bbb'], SecurityGroupIds: ['sg-0ccc'], NetworkProtocol: 'IPv4', AssociatedComputeResourceTypes: ['MicroVm'] } },
    });
    expect(userTags(await client.listTags({ Resource: r.physicalResourceId! }))).toEqual({ team: 'data' });
  });

  test('a replayed Create (same request) makes one connector: the ClientToken is deterministic', async () => {
    const d = driver();
    const r = await d.create(props(), { replayOnEvent: true });
    expect(r.status).toBe('SUCCESS');
    expect(connectors()).toHaveLength(1);
  });

  test('create retries the operator role\'s IAM propagation error, then succeeds', async () => {
    emu.faults.operation({
      operation: 'CreateNetworkConnector',
      mode: 'error',
      errorType: 'InvalidParameterValueException',
      status: 400,
      message: 'The service is unable to assume the provided NetworkConnectorOperatorRole',
      count: 3,
    });
    const start = clock.now();
    const r = await driver().create(props());
    expect(r.status).toBe('SUCCESS');
    expect(connectors()).toHaveLength(1);
    expect(clock.now() - start).toBeGreaterThanOrEqual(2000 + 4000 + 6000);
  });

  test('create gives up on the propagation error after a bounded time, naming the role', async () => {
    emu.faults.operation({
      operation: 'CreateNetworkConnector',
      mode: 'error',
      errorType: 'InvalidParameterValueException',
      status: 400,
      message: 'Encountered unauthorized operation while calling EC2 due to invalid ConnectorOperatorRole permissions',
      fraction: 1,
    });
    const start = clock.now();
    const r = await driver().create(props());
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/could not use the operator role arn:aws:iam::123456789012:role\/connector-operator for 150 seconds/);
    const waited = clock.now() - start;
    expect(waited).toBeGreaterThanOrEqual(150_000);
    expect(waited).toBeLessThan(170_000);
    expect(connectors()).toHaveLength(0);
  });

  test('failed create: the reason code and reason, a hint, and the connector is cleaned up', async () => {
    emu.faults.failNextConnector({ operation: 'create', name: 'db-access', reasonCode: 'SubnetOutOfIPAddresses', reason: 'Subnet subnet-0aaa has no free IP addresses' });
    const d = driver();
    const r = await d.create(props());
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/network connector db-access \(arn:aws:lambda:us-east-1:123456789012:network-connector:nc-[0-9a-f-]+\) failed to create: SubnetOutOfIPAddresses: Subnet subnet-0aaa has no free IP addresses/);
    expect(r.reason).toMatch(/free IP addresses in the subnets/);
    expect(r.reason).toMatch(/is being deleted/);
    clock.advance(60_000);
    expect(connectors()).toHaveLength(0);
    // The framework ignores the Delete that follows a failed Create.
    expect((await d.delete()).status).toBe('SUCCESS');
  });

  test('a name taken by another connector fails with what to do', async () => {
    await client.createNetworkConnector({ Name: 'db-access', ClientToken: 'someone-else', OperatorRole: OPERATOR_ROLE, Configuration: { VpcEgressConfiguration: { SubnetIds: ['subnet-9'], AssociatedComputeResourceTypes: ['MicroVm'], NetworkProtocol: 'IPv4' } } });
    const r = await driver().create(props());
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/a network connector named 'db-access' already exists.*choose another `networkConnectorName`.*fromNetworkConnectorArn/);
  });

  test('update in place: new subnets and security groups, operator role; waits for LastUpdateStatus', async () => {
    const d = driver();
    const created = await d.create(props());
    const newRole = 'arn:aws:iam::123456789012:role/connector-operator-2';
    const started = clock.now();
    const r = await d.update(props({ SubnetIds: ['subnet-0aaa', 'subnet-0bbb', 'subnet-0ddd'], SecurityGroupIds: ['sg-0ccc', 'sg-0eee'], OperatorRoleArn: newRole }));
    expect(r.status).toBe('SUCCESS');
    expect(r.physicalResourceId).toBe(created.physicalResourceId);
    // InProgress for 1 s, then Successful: waited for within the first isComplete call.
    expect(r.polls).toBe(1);
    expect(clock.now() - started).toBeGreaterThanOrEqual(1000);
    const c = await client.getNetworkConnector({ Identifier: r.physicalResourceId! });
    expect(c).toMatchObject({
      State: 'ACTIVE',
      LastUpdateStatus: 'Successful',
      OperatorRole: newRole,
      Configuration: { VpcEgressConfiguration: { SubnetIds: ['subnet-0aaa', 'subnet-0bbb', 'subnet-0ddd'], SecurityGroupIds: ['sg-0ccc', 'sg-0eee'] } },
    });
    expect(connectors()).toHaveLength(1);
  });

  test('a failed update names LastUpdateStatusReasonCode and reason; the rollback restores the old configuration', async () => {
    const d = driver();
    await d.create(props());
    emu.faults.failNextConnector({ operation: 'update', name: 'db-access', reasonCode: 'InvalidSecurityGroup', reason: 'Security group sg-0bad does not exist' });
    const r = await d.update(props({ SecurityGroupIds: ['sg-0bad'] }));
    expect(r.status).toBe('FAILED');
    expect(r.reason).toMatch(/failed to update: InvalidSecurityGroup: Security group sg-0bad does not exist \(check that every security group exists/);
    const back = await d.rollback();
    expect(back.status).toBe('SUCCESS');
    const c = await client.getNetworkConnector({ Identifier: d.physicalResourceId! });
    expect(c.Configuration?.VpcEgressConfiguration?.SecurityGroupIds).toEqual(['sg-0ccc']);
  });

  test('an update while the connector is still busy is retried by isComplete', async () => {
    const d = driver();
    await d.create(props());
    // Another change is applying (as if made outside the stack): the stack's update must wait for it.
    await client.updateNetworkConnector({ Identifier: d.physicalResourceId!, ClientToken: 'out-of-band', OperatorRole: OPERATOR_ROLE, Configuration: { VpcEgressConfiguration: { SubnetIds: ['subnet-0aaa'], SecurityGroupIds: ['sg-0ccc'], NetworkProtocol: 'IPv4', AssociatedComputeResourceTypes: ['MicroVm'] } } });
    emu.resetStats();
    const r = await d.update(props({ SubnetIds: ['subnet-0bbb'] }));
    expect(r.status).toBe('SUCCESS');
    // Refused (409) by onEvent while the other update applied, then sent again by isComplete.
    expect(emu.stats().operations.UpdateNetworkConnector).toBeGreaterThanOrEqual(2);
    const c = await client.getNetworkConnector({ Identifier: d.physicalResourceId! });
    expect(c.Configuration?.VpcEgressConfiguration?.SubnetIds).toEqual(['subnet-0bbb']);
  });

  test('tags-only change: Tag/UntagResource on the ARN, the connector itself untouched', async () => {
    const d = driver();
    await d.create(props({ Tags: { team: 'data', env: 'dev' } }));
    const before = await client.getNetworkConnector({ Identifier: d.physicalResourceId! });
    emu.resetStats();
    const r = await d.update(props({ Tags: { team: 'platform', owner: 'ana' } }));
    expect(emu.stats().operations.UpdateNetworkConnector ?? 0).toBe(0);
    expect(emu.stats().operations).toMatchObject({ TagResource: 1, UntagResource: 1 });
    expect(r.status).toBe('SUCCESS');
    expect(r.data.NetworkConnectorName).toBe('db-access');
    expect(userTags(await client.listTags({ Resource: d.physicalResourceId! }))).toEqual({ team: 'platform', owner: 'ana' });
    const after = await client.getNetworkConnector({ Identifier: d.physicalResourceId! });
    expect(after.Version).toBe(before.Version);
    expect(after.LastModified).toBe(before.LastModified);
  });

  test('rename replaces: a new connector, and the old one is deleted in the cleanup phase', async () => {
    const d = driver();
    const first = await d.create(props());
    const r = await d.update(props({ Name: 'db-access-2' }));
    expect(r.status).toBe('SUCCESS');
    expect(r.physicalResourceId).not.toBe(first.physicalResourceId);
    expect(r.data.NetworkConnectorName).toBe('db-access-2');
    expect(d.events.map((e) => e.requestType)).toEqual(['Create', 'Update', 'Delete']);
    expect(connectors().map((c) => c.Name)).toEqual(['db-access-2']);
    await expect(client.getNetworkConnector({ Identifier: first.physicalResourceId! })).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  test('delete waits until the connector is gone; deleting twice succeeds', async () => {
    const d = driver();
    const created = await d.create(props());
    const started = clock.now();
    const r1 = await d.delete();
    expect(r1.status).toBe('SUCCESS');
    expect(r1.polls).toBe(1); // DELETING for 1 s, then gone: waited for within the first isComplete call
    expect(clock.now() - started).toBeGreaterThanOrEqual(1000);
    await expect(client.getNetworkConnector({ Identifier: created.physicalResourceId! })).rejects.toMatchObject({ name: 'ResourceNotFoundException', statusCode: 404 });
    const r2 = await d.delete();
    expect(r2.status).toBe('SUCCESS');
    expect(connectors()).toHaveLength(0);
  });

  test('delete of a connector that was removed by hand succeeds', async () => {
    const d = driver();
    const created = await d.create(props());
    await client.deleteNetworkConnector({ Identifier: created.physicalResourceId! });
    clock.advance(60_000);
    emu.reset(); // forget even the tombstone: the service answers 404
    expect((await d.delete()).status).toBe('SUCCESS');
  });

  test('throttling of Get is absorbed by the client\'s retries', async () => {
    const d = driver();
    emu.faults.operation({ operation: 'GetNetworkConnector', mode: 'throttle', count: 3 });
    const r = await d.create(props());
    expect(r.status).toBe('SUCCESS');
    expect(emu.stats().operations.GetNetworkConnector).toBeGreaterThanOrEqual(4);
  });
});

describe('NetworkConnector provider: rollbacks and cancelled creates (issue 11)', () => {
  const mutations = () => {
    const ops = emu.stats().operations;
    return ['CreateNetworkConnector', 'UpdateNetworkConnector'].reduce((n, o) => n + (ops[o] ?? 0), 0);
  };
  const names = () => connectors().filter((c) => c.State !== 'DELETING').map((c) => c.Name).sort();

  test('case 1: the rollback of a failed rename is a no-op success, and the renamed connector is gone', async () => {
    const d = driver();
    const a = await d.create(props({ Name: 'conn-a' }));
    emu.faults.failNextConnector({ operation: 'create', name: 'conn-b', reasonCode: 'InvalidSubnet', reason: 'Subnet subnet-0aaa does not exist' });
    const failed = await d.update(props({ Name: 'conn-b' }));
    expect(failed.status).toBe('FAILED');
    expect(failed.reason).toMatch(/conn-b .* failed to create: InvalidSubnet/);
    emu.resetStats();
    const back = await d.rollback();
    expect(back.status).toBe('SUCCESS');
    expect(back.physicalResourceId).toBe(a.physicalResourceId);
    expect(mutations()).toBe(0);
    clock.advance(60_000);
    expect(names()).toEqual(['conn-a']);
  });

  test('case 1: the rollback of a rename whose isComplete crashed deletes the connector the rename made', async () => {
    const d = driver();
    const a = await d.create(props({ Name: 'conn-a' }));
    const failed = await d.update(props({ Name: 'conn-b' }), { crashIsCompleteOnPoll: 1 });
    expect(failed.status).toBe('FAILED');
    expect(names()).toEqual(['conn-a', 'conn-b']);
    const back = await d.rollback();
    expect(back.status).toBe('SUCCESS');
    expect(back.physicalResourceId).toBe(a.physicalResourceId);
    clock.advance(60_000);
    expect(names()).toEqual(['conn-a']);
  });

  test('case 1: the rollback of a failed compute-type change is a no-op success', async () => {
    const d = driver();
    const a = await d.create(props());
    const failed = await d.update(props({ ComputeType: 'WebFunction' }));
    expect(failed.status).toBe('FAILED');
    emu.resetStats();
    const back = await d.rollback();
    expect(back.status).toBe('SUCCESS');
    expect(back.physicalResourceId).toBe(a.physicalResourceId);
    expect(mutations()).toBe(0);
    expect(names()).toEqual(['db-access']);
  });

  test.each(['generated', 'real'] as const)('case 2: a create cancelled with the %s id leaves nothing; the next deploy with the name succeeds', async (id) => {
    const d = driver();
    const waiter = await d.startCreate(props());
    if (!(waiter instanceof Waiter)) throw new Error(waiter.reason);
    emu.faults.hold(waiter.physicalResourceId); // PENDING for longer than one isComplete call
    expect(await waiter.poll()).toBeUndefined(); // PENDING
    emu.faults.release(waiter.physicalResourceId);
    const deleted = await d.delete({ physicalResourceId: id });
    expect(deleted.status).toBe('SUCCESS');
    const stale = await waiter.run();
    expect(stale.status).toBe('FAILED');
    clock.advance(60_000);
    expect(names()).toEqual([]);
    expect((await driver().create(props())).status).toBe('SUCCESS');
  });

  test('case 10: a malformed property fails naming it and the version mismatch, without calling the service', async () => {
    emu.resetStats();
    const bad = await driver().create(props({ TimeoutSeconds: 'abc' }));
    expect(bad.status).toBe('FAILED');
    expect(bad.reason).toMatch(/property TimeoutSeconds is "abc", expected an integer from 1 to 3300: the construct and handler versions differ/);
    const proto = await driver().create(props({ NetworkProtocol: 'IPv5' }));
    expect(proto.reason).toMatch(/property NetworkProtocol is "IPv5", expected one of IPv4, DualStack/);
    expect(emu.stats().operations.CreateNetworkConnector ?? 0).toBe(0);
  });
});
