import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * The fleet inventory's four DynamoDB operations served in memory at the end of a real SDK
 * client's middleware stack (unit tests have no DynamoDB), so that the IAM check sees every call
 * the real `DynamoInventory` makes, with its table name. Only what DynamoInventory sends is
 * understood: Query on `pk = :pk AND begins_with(sk, :gen)`, GetItem, PutItem, BatchWriteItem, and
 * the reconciler lease's DeleteItem (by its owner).
 * `items` is the table's content, shared by every client of one test.
 */
export function inMemoryTable(client: DynamoDBClient, items: Map<string, Record<string, any>>): DynamoDBClient {
  const key = (table: string, k: Record<string, any>) => `${table}\n${k.pk.S}\n${k.sk.S}`;
  client.middlewareStack.add((() => async (args: any) => {
    const input = args.input;
    const op = args.__op as string;
    const output = (o: object) => ({ output: { $metadata: {}, ...o }, response: {} });
    if (op === 'Query') {
      const pk = input.ExpressionAttributeValues[':pk'].S;
      const prefix = input.ExpressionAttributeValues[':gen'].S;
      if (input.KeyConditionExpression !== 'pk = :pk AND begins_with(sk, :gen)') throw new Error(`Query ${input.KeyConditionExpression} is not served in memory`);
      const found = [...items.entries()].filter(([k]) => k.startsWith(`${input.TableName}\n${pk}\n${prefix}`)).sort(([a], [b]) => a.localeCompare(b)).map(([, v]) => v);
      return output({ Items: found });
    }
    if (op === 'GetItem') return output({ Item: items.get(key(input.TableName, input.Key)) });
    if (op === 'PutItem') { items.set(key(input.TableName, input.Item), input.Item); return output({}); }
    if (op === 'BatchWriteItem') {
      for (const [table, requests] of Object.entries<any[]>(input.RequestItems)) {
        for (const r of requests) {
          if (r.PutRequest) items.set(key(table, r.PutRequest.Item), r.PutRequest.Item);
          if (r.DeleteRequest) items.delete(key(table, r.DeleteRequest.Key));
        }
      }
      return output({ UnprocessedItems: {} });
    }
    if (op === 'DeleteItem') {
      // The reconciler's lease release: deleted only by its owner.
      const k = key(input.TableName, input.Key);
      if (input.ConditionExpression !== '#owner = :owner') throw new Error(`DeleteItem if ${input.ConditionExpression} is not served in memory`);
      if (items.get(k)?.owner?.S === input.ExpressionAttributeValues[':owner'].S) items.delete(k);
      return output({});
    }
    throw new Error(`DynamoDB ${op} is not served in memory`);
  }) as any, { step: 'initialize', name: 'inMemoryTable', priority: 'low' });
  client.middlewareStack.add(((next: any, context: any) => async (args: any) => next({ ...args, __op: context.commandName.replace(/Command$/, '') })) as any,
    { step: 'initialize', name: 'inMemoryTableOperation', priority: 'normal' });
  return client;
}
