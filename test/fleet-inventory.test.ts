import { BatchWriteItemCommand, ConditionalCheckFailedException, DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoInventory, marshal, MemoryInventory, SlotRecord, slotKey, unmarshal } from '../lambda/fleet/inventory';

const ddb = mockClient(DynamoDBClient);
afterEach(() => ddb.reset());

const record = (slot: number): SlotRecord => ({
  pk: 'fleet-1',
  sk: slotKey(1, slot),
  generation: 1,
  slot,
  clientToken: `t${slot}`,
  configHash: 'h',
  imageArn: 'arn:aws:lambda:us-east-1:123456789012:microvm-image:x',
  imageVersion: '1.0',
  phase: 'LAUNCHING',
  recordedAt: 1,
});

describe('DynamoInventory (the inventory the Lambda handler uses)', () => {
  const inventory = () => new DynamoInventory(new DynamoDBClient({ region: 'us-east-1' }), 'table', { now: () => 0, sleep: async () => undefined });

  test('slot keys sort by generation, then slot', () => {
    expect([slotKey(2, 1), slotKey(1, 10), slotKey(1, 2)].sort()).toEqual([slotKey(1, 2), slotKey(1, 10), slotKey(2, 1)]);
    expect(slotKey(1, 2)).toBe('gen#000001#slot#000002');
  });

  test('marshal and unmarshal round-trip strings, numbers and booleans, dropping undefined', () => {
    const r = { ...record(3), state: 'RUNNING', flag: true, microvmId: undefined };
    expect(unmarshal(marshal(r))).toEqual({ ...record(3), state: 'RUNNING', flag: true });
  });

  test('listSlots reads every page with one consistent Query per page, slots only', async () => {
    ddb.on(QueryCommand)
      .resolvesOnce({ Items: [marshal(record(0))], LastEvaluatedKey: { pk: { S: 'fleet-1' }, sk: { S: slotKey(1, 0) } } })
      .resolvesOnce({ Items: [marshal(record(1))] });
    const slots = await inventory().listSlots('fleet-1');
    expect(slots.map((s) => s.slot)).toEqual([0, 1]);
    const calls = ddb.commandCalls(QueryCommand);
    expect(calls).toHaveLength(2);
    expect(calls[0].args[0].input).toMatchObject({
      TableName: 'table',
      ConsistentRead: true,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :gen)',
      ExpressionAttributeValues: { ':pk': { S: 'fleet-1' }, ':gen': { S: 'gen#' } },
    });
    expect(calls[1].args[0].input.ExclusiveStartKey).toEqual({ pk: { S: 'fleet-1' }, sk: { S: slotKey(1, 0) } });
  });

  test('putSlots writes in chunks of 25 and retries unprocessed items', async () => {
    const records = Array.from({ length: 30 }, (_, i) => record(i));
    ddb.on(BatchWriteItemCommand)
      .resolvesOnce({ UnprocessedItems: { table: [{ PutRequest: { Item: marshal(records[0]) } }] } })
      .resolves({});
    await inventory().putSlots(records);
    const calls = ddb.commandCalls(BatchWriteItemCommand).map((c) => c.args[0].input.RequestItems!.table.length);
    expect(calls).toEqual([25, 1, 5]);
  });

  test('gives up with a clear error when DynamoDB keeps items unprocessed', async () => {
    ddb.on(BatchWriteItemCommand).callsFake((input) => ({ UnprocessedItems: input.RequestItems }));
    await expect(inventory().deleteSlots('fleet-1', [slotKey(1, 0)])).rejects.toThrow(/left 1 write\(s\) unprocessed on table table after 10 attempts/);
  });

  test('meta is one item under sk = meta, written only under the fence', async () => {
    ddb.on(GetItemCommand).resolves({ Item: marshal({ pk: 'fleet-1', sk: 'meta', generation: 2, requestId: 'r', nextSlot: 4 }) });
    ddb.on(PutItemCommand).resolves({});
    const inv = inventory();
    expect(await inv.getMeta('fleet-1')).toEqual({ pk: 'fleet-1', sk: 'meta', generation: 2, requestId: 'r', nextSlot: 4 });
    expect(await inv.putMetaIf({ pk: 'fleet-1', sk: 'meta', generation: 3, requestId: 's', nextSlot: 0 }, { generation: 2, requestId: 'r' })).toBe(true);
    expect(ddb.commandCalls(GetItemCommand)[0].args[0].input).toMatchObject({ Key: { pk: { S: 'fleet-1' }, sk: { S: 'meta' } }, ConsistentRead: true });
    expect(ddb.commandCalls(PutItemCommand)[0].args[0].input).toMatchObject({
      Item: { generation: { N: '3' }, requestId: { S: 's' } },
      ConditionExpression: 'generation = :g AND requestId = :r',
      ExpressionAttributeValues: { ':g': { N: '2' }, ':r': { S: 'r' } },
    });
    await inv.putMetaIf({ pk: 'fleet-2', sk: 'meta', generation: 1, requestId: 't', nextSlot: 0 }, undefined);
    expect(ddb.commandCalls(PutItemCommand)[1].args[0].input.ConditionExpression).toBe('attribute_not_exists(pk)');
  });

  test('a write another request fenced off answers false', async () => {
    ddb.on(PutItemCommand).rejects(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }));
    expect(await inventory().putMetaIf({ pk: 'fleet-1', sk: 'meta', generation: 3, requestId: 's', nextSlot: 0 }, { generation: 2, requestId: 'r' })).toBe(false);
  });

  test('reserveCall: one conditional write on the schedule item; a write that lost to another fleet reads and reserves again', async () => {
    ddb.on(GetItemCommand)
      .resolvesOnce({})
      .resolvesOnce({ Item: { pk: { S: 'pace#RunMicrovm' }, sk: { S: 'pace' }, next: { N: '1200' } } });
    ddb.on(PutItemCommand)
      .rejectsOnce(new ConditionalCheckFailedException({ message: 'taken', $metadata: {} }))
      .resolves({});
    // Another fleet reserved 1000 first: this call goes at 1200, and the schedule moves to 1400.
    expect(await inventory().reserveCall('RunMicrovm', 200, 1000, 200)).toBe(1200);
    const puts = ddb.commandCalls(PutItemCommand).map((c) => c.args[0].input);
    expect(puts[0]).toMatchObject({ ConditionExpression: 'attribute_not_exists(pk)', Item: { pk: { S: 'pace#RunMicrovm' }, next: { N: '1000' } } });
    expect(puts[0].ExpressionAttributeValues).toBeUndefined();
    expect(puts[1]).toMatchObject({ ConditionExpression: '#next = :seen', ExpressionAttributeValues: { ':seen': { N: '1200' } }, Item: { next: { N: '1400' } } });
    expect(ddb.commandCalls(GetItemCommand)[0].args[0].input.ConsistentRead).toBe(true);
  });

  test('reserveCall: an idle schedule lets a caller catch up by lagMs, no more', async () => {
    ddb.on(GetItemCommand).resolves({ Item: { pk: { S: 'pace#TerminateMicrovm' }, sk: { S: 'pace' }, next: { N: '10' } } });
    ddb.on(PutItemCommand).resolves({});
    expect(await inventory().reserveCall('TerminateMicrovm', 100, 5000, 100)).toBe(4900);
  });
});

describe('MemoryInventory (the same fence)', () => {
  test('putMetaIf succeeds only against the expected fence', async () => {
    const inv = new MemoryInventory();
    const meta = { pk: 'f', sk: 'meta' as const, generation: 1, requestId: 'a', nextSlot: 0 };
    expect(await inv.putMetaIf(meta, undefined)).toBe(true);
    expect(await inv.putMetaIf(meta, undefined)).toBe(false);
    expect(await inv.putMetaIf({ ...meta, generation: 2, requestId: 'b' }, { generation: 1, requestId: 'x' })).toBe(false);
    expect(await inv.putMetaIf({ ...meta, generation: 2, requestId: 'b' }, { generation: 1, requestId: 'a' })).toBe(true);
    expect((await inv.getMeta('f'))?.generation).toBe(2);
  });
});
