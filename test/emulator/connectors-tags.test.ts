import { CreateMicrovmImageCommand, ListTagsCommand, RunMicrovmCommand, TagResourceCommand, UntagResourceCommand } from '@aws-sdk/client-lambda-microvms';
import { admin, Env, errorOf, imageInput, OPERATOR_ROLE, setup, signedFetch } from './helpers';

let env: Env;
beforeAll(async () => { env = await setup({ rateLimits: false, faults: true }); });
afterAll(async () => { await env.emu.close(); });
beforeEach(() => env.emu.reset());

const cfg = (subnets = ['subnet-0a1'], sgs = ['sg-0b2']) => ({ VpcEgressConfiguration: { SubnetIds: subnets, SecurityGroupIds: sgs, NetworkProtocol: 'IPv4', AssociatedComputeResourceTypes: ['MicroVm'] } });
const core = (method: string, path: string, body?: unknown, query?: Record<string, string>) => signedFetch(env.emu.url, method, `/2026-04-04/network-connectors${path}`, body, query);
let tokens = 0;
/** A request body with the members the service enforces (ClientToken, OperatorRole): each call gets a fresh token. */
const req = (body: Record<string, unknown>) => ({ ClientToken: `t-${++tokens}`, OperatorRole: OPERATOR_ROLE, ...body });

describe('Lambda Core network connectors (signed raw HTTP)', () => {
  test('create 202 PENDING → ACTIVE; Get by Id, name and ARN; update bumps the version; delete 202 → DELETING → 404', async () => {
    const created = await core('POST', '', req({ Name: 'egress', Configuration: cfg(), Tags: { env: 'test' } }));
    expect(created.status).toBe(202);
    expect(created.json.Id).toMatch(/^nc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(created.json).toMatchObject({ Name: 'egress', State: 'PENDING', Arn: `arn:aws:lambda:us-east-1:123456789012:network-connector:${created.json.Id}` });
    const id = created.json.Id;
    expect((await core('GET', `/${id}`)).json.State).toBe('PENDING');
    const upPending = await core('PUT', `/${id}`, req({ Configuration: cfg(['subnet-0a1', 'subnet-0a2']) }));
    expect([upPending.status, upPending.json.__type, upPending.json.Type]).toEqual([409, 'ResourceConflictException', 'User']);
    const delPending = await core('DELETE', `/${id}`);
    expect(delPending.status).toBe(409);
    env.clock.advance(2000);
    for (const ident of [id, 'egress', encodeURIComponent(created.json.Arn)]) {
      const g = await core('GET', `/${ident}`);
      expect(g.status).toBe(200);
      expect(g.json).toMatchObject({ Id: id, State: 'ACTIVE', StateReason: 'Initial creation' });
      expect(g.json.LastModified).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      // Recorded (connectors/get-until-active): exactly these members; never updated = no LastUpdateStatus.
      expect(Object.keys(g.json).sort()).toEqual(['Arn', 'Configuration', 'Id', 'LastModified', 'Name', 'OperatorRole', 'State', 'StateReason']);
    }
    const same = await core('PUT', `/${id}`, req({ Configuration: cfg() }));
    expect(same.json).toMatchObject({ LastUpdateStatus: 'Successful', LastUpdateStatusReason: 'No configuration changes detected' });
    const up = await core('PUT', `/${id}`, req({ Configuration: cfg(['subnet-0a1', 'subnet-0a2']) }));
    expect([up.status, up.json.LastUpdateStatus, up.json.State]).toEqual([202, 'InProgress', 'ACTIVE']);
    const busy = await core('PUT', `/${id}`, req({ Configuration: cfg(['subnet-0a3']) }));
    expect(busy.status).toBe(409);
    env.clock.advance(1000);
    const after = await core('GET', `/${id}`);
    expect(after.json).toMatchObject({ LastUpdateStatus: 'Successful' });
    expect(after.json.Version).toBeUndefined();
    expect(after.json.Configuration.VpcEgressConfiguration.SubnetIds).toEqual(['subnet-0a1', 'subnet-0a2']);
    const v1 = await core('GET', `/${encodeURIComponent(`${created.json.Arn}:1`)}`);
    expect(v1.json.Configuration.VpcEgressConfiguration.SubnetIds).toEqual(['subnet-0a1']);
    const del = await core('DELETE', `/${id}`);
    expect([del.status, del.json.State]).toEqual([202, 'DELETING']);
    expect((await core('DELETE', `/${id}`)).status).toBe(202);
    env.clock.advance(1000);
    const gone = await core('GET', `/${id}`);
    expect([gone.status, gone.headers.get('x-amzn-errortype'), gone.json.Message]).toEqual([404, 'ResourceNotFoundException', `Network connector not found for: ${created.json.Arn}`]);
    expect(gone.json.message).toBeUndefined();
    expect((await core('DELETE', `/${id}`)).status).toBe(202);
  });

  test('names are unique, ClientToken is idempotent, list paginates with MaxItems / Marker and filters by State', async () => {
    const a = await core('POST', '', req({ Name: 'c0', Configuration: cfg(), ClientToken: 'tok' }));
    const again = await core('POST', '', req({ Name: 'c0', Configuration: cfg(), ClientToken: 'tok' }));
    expect(again.json.Id).toBe(a.json.Id);
    const otherParams = await core('POST', '', req({ Name: 'c0', Configuration: cfg(['subnet-9']), ClientToken: 'tok' }));
    expect(otherParams.status).toBe(409);
    const dup = await core('POST', '', req({ Name: 'c0', Configuration: cfg() }));
    expect([dup.status, dup.json.__type]).toEqual([409, 'ResourceConflictException']);
    for (let i = 1; i < 5; i++) await core('POST', '', req({ Name: `c${i}`, Configuration: cfg() }));
    const names: string[] = [];
    let marker: string | undefined;
    do {
      const page = await core('GET', '', undefined, { MaxItems: '2', ...(marker ? { Marker: marker } : {}) });
      expect(page.json.NetworkConnectors.length).toBeLessThanOrEqual(2);
      names.push(...page.json.NetworkConnectors.map((c: any) => c.Name));
      marker = page.json.NextMarker;
    } while (marker);
    expect(names).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
    expect((await core('GET', '', undefined, { State: 'ACTIVE' })).json.NetworkConnectors).toHaveLength(0);
    env.clock.advance(2000);
    const active = await core('GET', '', undefined, { State: 'ACTIVE' });
    expect(active.json.NetworkConnectors[0]).toMatchObject({ Type: 'VPC_EGRESS', State: 'ACTIVE' });
    const tooMany = await core('GET', '', undefined, { MaxItems: '101' });
    expect(tooMany.status).toBe(400);
  });

  test('validation: too many subnets (recorded message), union with two members, bad patterns', async () => {
    const subnets = Array.from({ length: 17 }, (_, i) => `subnet-${i}`);
    const r = await core('POST', '', { Name: 'x', Configuration: { VpcEgressConfiguration: { SubnetIds: subnets } } });
    expect([r.status, r.headers.get('x-amzn-errortype')]).toEqual([400, 'ValidationException']);
    expect(r.json.message).toBe(`1 validation error detected: Value '[${subnets.join(', ')}]' at 'configuration.vpcEgressConfiguration.subnetIds' failed to satisfy constraint: Member must have length less than or equal to 16`);
    const badSg = await core('POST', '', { Name: 'x', Configuration: { VpcEgressConfiguration: { SubnetIds: ['subnet-1'], SecurityGroupIds: ['nope'] } } });
    expect(badSg.json.message).toMatch(/at 'configuration.vpcEgressConfiguration.securityGroupIds.1.member' failed to satisfy constraint: Member must satisfy regular expression pattern: sg-/);
    const badName = await core('POST', '', req({ Name: 'bad name', Configuration: cfg() }));
    expect(badName.status).toBe(400);
    const missing = await core('POST', '', { Name: 'x' });
    expect(missing.json.message).toBe("1 validation error detected: Value null at 'configuration' failed to satisfy constraint: Member must not be null");
  });

  test('members the model marks optional are enforced: 400 InvalidParameterValueException (recorded), after the model checks', async () => {
    const refusal = async (method: string, path: string, body: Record<string, unknown>) => {
      const r = await core(method, path, body);
      return [r.status, r.headers.get('x-amzn-errortype'), r.json.message];
    };
    const full = { Name: 'req', Configuration: cfg(), ClientToken: 'tok-req', OperatorRole: OPERATOR_ROLE };
    const without = (k: string) => Object.fromEntries(Object.entries(full).filter(([key]) => key !== k));
    const vpcWithout = (k: string) => {
      const vpc = Object.fromEntries(Object.entries(cfg().VpcEgressConfiguration).filter(([key]) => key !== k));
      return { ...full, Configuration: { VpcEgressConfiguration: vpc } };
    };
    expect(await refusal('POST', '', without('ClientToken'))).toEqual([400, 'InvalidParameterValueException', 'ClientToken is a required field']);
    expect(await refusal('POST', '', without('OperatorRole'))).toEqual([400, 'InvalidParameterValueException', 'NetworkConnectorOperatorRole is required for VPC_EGRESS connector type']);
    expect((await refusal('POST', '', vpcWithout('NetworkProtocol'))).slice(0, 2)).toEqual([400, 'InvalidParameterValueException']);
    expect((await refusal('POST', '', vpcWithout('AssociatedComputeResourceTypes'))).slice(0, 2)).toEqual([400, 'InvalidParameterValueException']);
    // Model constraints come first, as recorded.
    expect((await refusal('POST', '', { Name: 'req', Configuration: cfg(Array.from({ length: 17 }, (_, i) => `subnet-${i}`)) }))[1]).toBe('ValidationException');
    const c = await core('POST', '', full);
    expect(c.status).toBe(202);
    env.clock.advance(2000);
    const up = { Configuration: cfg(['subnet-0a9']), ClientToken: 'tok-up', OperatorRole: OPERATOR_ROLE };
    const upWithout = (k: string) => Object.fromEntries(Object.entries(up).filter(([key]) => key !== k));
    expect(await refusal('PUT', `/${c.json.Id}`, upWithout('ClientToken'))).toEqual([400, 'InvalidParameterValueException', 'ClientToken is a required field']);
    expect(await refusal('PUT', `/${c.json.Id}`, upWithout('OperatorRole'))).toEqual([400, 'InvalidParameterValueException', 'NetworkConnectorOperatorRole is required for VPC_EGRESS connector type']);
    expect((await refusal('PUT', `/${c.json.Id}`, { ...up, Configuration: { VpcEgressConfiguration: { SubnetIds: ['subnet-0a9'] } } }))[1]).toBe('InvalidParameterValueException');
    expect((await core('PUT', `/${c.json.Id}`, up)).status).toBe(202);
  });

  test('an ACTIVE customer connector can be used by RunMicrovm; a PENDING one cannot', async () => {
    const img = await env.client.send(new CreateMicrovmImageCommand(imageInput('withvpc')));
    env.clock.advance(3000);
    const c = await core('POST', '', req({ Name: 'vpc', Configuration: cfg() }));
    const pending = await errorOf(env.client.send(new RunMicrovmCommand({ imageIdentifier: img.imageArn, egressNetworkConnectors: [c.json.Arn] })));
    expect(pending.name).toBe('ValidationException');
    env.clock.advance(2000);
    const vm = await env.client.send(new RunMicrovmCommand({ imageIdentifier: img.imageArn, egressNetworkConnectors: [c.json.Arn] }));
    expect(vm.egressNetworkConnectors).toEqual([c.json.Arn]);
  });

  test('injected connector failures: create → FAILED with reason code; update → LastUpdateStatus Failed', async () => {
    expect((await admin(env.emu.url, 'POST', '/_emulator/faults/connector-failure', { operation: 'create', name: 'bad', reasonCode: 'InvalidSubnet', reason: 'subnet gone' })).status).toBe(200);
    const bad = await core('POST', '', req({ Name: 'bad', Configuration: cfg() }));
    env.clock.advance(2000);
    expect((await core('GET', `/${bad.json.Id}`)).json).toMatchObject({ State: 'FAILED', StateReasonCode: 'InvalidSubnet', StateReason: 'subnet gone' });
    expect((await core('DELETE', `/${bad.json.Id}`)).status).toBe(202);
    env.emu.faults.failNextConnector({ operation: 'update', reasonCode: 'InsufficientRolePermissions' });
    const ok = await core('POST', '', req({ Name: 'ok', Configuration: cfg() }));
    env.clock.advance(2000);
    await core('PUT', `/${ok.json.Id}`, req({ Configuration: cfg(['subnet-0ff']) }));
    env.clock.advance(1000);
    expect((await core('GET', `/${ok.json.Id}`)).json).toMatchObject({ State: 'ACTIVE', LastUpdateStatus: 'Failed', LastUpdateStatusReasonCode: 'InsufficientRolePermissions' });
    expect((await core('GET', `/${ok.json.Id}`)).json.Configuration.VpcEgressConfiguration.SubnetIds).toEqual(['subnet-0a1']);
  });
});

describe('tagging both resource kinds through the Lambda tag routes', () => {
  test('microvm-image and network-connector ARNs', async () => {
    const img = await env.client.send(new CreateMicrovmImageCommand(imageInput('tagged', { tags: { a: '1' } })));
    const c = await core('POST', '', req({ Name: 'tagged', Configuration: cfg(), Tags: { k: 'v' } }));
    const r1 = await env.client.send(new TagResourceCommand({ Resource: img.imageArn, Tags: { b: '2' } }));
    expect(r1.$metadata.httpStatusCode).toBe(204);
    expect((await env.client.send(new ListTagsCommand({ Resource: img.imageArn }))).Tags).toEqual({ a: '1', b: '2' });
    await env.client.send(new UntagResourceCommand({ Resource: img.imageArn, TagKeys: ['a'] }));
    expect((await env.client.send(new ListTagsCommand({ Resource: img.imageArn }))).Tags).toEqual({ b: '2' });
    expect((await env.client.send(new ListTagsCommand({ Resource: c.json.Arn }))).Tags).toEqual({ k: 'v' });
    await env.client.send(new TagResourceCommand({ Resource: c.json.Arn, Tags: { x: 'y' } }));
    await env.client.send(new UntagResourceCommand({ Resource: c.json.Arn, TagKeys: ['k'] }));
    expect((await env.client.send(new ListTagsCommand({ Resource: c.json.Arn }))).Tags).toEqual({ x: 'y' });
    expect(env.emu.snapshot().tags[c.json.Arn]).toEqual({ x: 'y' });
    const missing = await errorOf(env.client.send(new ListTagsCommand({ Resource: 'arn:aws:lambda:us-east-1:123456789012:microvm-image:nope' })));
    expect(missing.name).toBe('ResourceNotFoundException');
    const invalid = await errorOf(env.client.send(new ListTagsCommand({ Resource: 'arn:aws:s3:::bucket' })));
    expect(invalid.name).toBe('ValidationException');
  });
});
