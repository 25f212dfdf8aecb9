import {
  AttributeValue,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { systemClock } from '../shared/clock';
import type { Clock } from '../shared/clock';
import { backoffDelay } from '../shared/retry';

/**
 * The fleet inventory: one item per launch slot, plus one `meta` item, under the partition key
 * of the fleet id (the custom resource's physical id). Apps read a fleet with one Query:
 * `pk = <fleet id> AND begins_with(sk, 'gen#')`.
 *
 * Slot items are written BEFORE RunMicrovm (phase LAUNCHING, with the clientToken) and again
 * after it (phase LAUNCHED, with the MicroVM id and endpoint): a handler that dies in between
 * finds the token and re-issues it, and the service answers with the MicroVM it already launched.
 */
export type SlotPhase = 'LAUNCHING' | 'LAUNCHED';

export interface SlotRecord {
  readonly pk: string;
  /** `gen#<generation, 6 digits>#slot#<slot, 6 digits>`: sorts by generation, then slot. */
  readonly sk: string;
  readonly generation: number;
  readonly slot: number;
  readonly clientToken: string;
  /** Hash of the launch configuration (image, version, roles, connectors, policies, payload). */
  readonly configHash: string;
  readonly imageArn: string;
  readonly imageVersion: string;
  readonly phase: SlotPhase;
  readonly microvmId?: string;
  readonly endpoint?: string;
  /** The MicroVM state last observed by the handler (PENDING, RUNNING, SUSPENDED, TERMINATING, ...). */
  readonly state?: string;
  /** Epoch ms. */
  readonly recordedAt: number;
  readonly launchedAt?: number;
}

/**
 * The fence: the request that owns the fleet now. Every request (Create, Update, Delete) opens a
 * new generation with a conditional write; a poll whose request no longer owns the fleet (a
 * cancelled or superseded request whose waiter CloudFormation left running) stops without acting.
 */
export interface Fence {
  readonly generation: number;
  readonly requestId: string;
}

export interface MetaRecord extends Fence {
  readonly pk: string;
  readonly sk: 'meta';
  /** Next unused slot number in this generation (slots, and so tokens, are never reused). */
  readonly nextSlot: number;
  /** Set when a Create failed: the following polls clean up, then report it. */
  readonly failure?: string;
  /**
   * The most instances this fleet could hold when RunMicrovm was refused with
   * ServiceQuotaExceededException in this generation (the memory quota is account-wide).
   */
  readonly capacity?: number;
}

export const META_SK = 'meta';

export function slotKey(generation: number, slot: number): string {
  return `gen#${String(generation).padStart(6, '0')}#slot#${String(slot).padStart(6, '0')}`;
}

export function owns(meta: Fence | undefined, fence: Fence): boolean {
  return meta !== undefined && meta.generation === fence.generation && meta.requestId === fence.requestId;
}

/** Storage the handler needs; DynamoInventory in Lambda, MemoryInventory in tests. */
export interface Inventory {
  listSlots(fleetId: string): Promise<SlotRecord[]>;
  getMeta(fleetId: string): Promise<MetaRecord | undefined>;
  /**
   * Writes the meta item only if the fence in the table is still `expected` (no meta item at all
   * when undefined). False when another request wrote it first.
   */
  putMetaIf(meta: MetaRecord, expected: Fence | undefined): Promise<boolean>;
  putSlots(records: readonly SlotRecord[]): Promise<void>;
  deleteSlots(fleetId: string, sks: readonly string[]): Promise<void>;
  deleteMeta(fleetId: string): Promise<void>;
  /**
   * Reserves the next call on the shared schedule `key` (one item per operation in the stack's
   * table, e.g. `pace#RunMicrovm`) with a conditional write, and returns when it may go (epoch ms):
   * the schedule's next free time, or `now - lagMs` if that is later (a caller that overslept may
   * catch up by `lagMs`). The schedule then moves `intervalMs` past it. Every fleet of the stack
   * reserves on the same item, so together they keep to one rate.
   */
  reserveCall(key: string, intervalMs: number, now: number, lagMs: number): Promise<number>;
}

/** The partition key of a shared call schedule (not a fleet id: fleet ids start with `fleet-`). */
export function paceKey(operation: string): string {
  return `pace#${operation}`;
}

/** The schedule's item: when the next call may go. */
const PACE_SK = 'pace';
/** Conditional writes that lose to another fleet's reservation are retried this often before giving up. */
const MAX_RESERVE_ATTEMPTS = 50;

/** Where a reservation starts: the schedule's next free time, or `now - lagMs` if the schedule is idle. */
function reservationStart(next: number | undefined, now: number, lagMs: number): number {
  return Math.max(next ?? -Infinity, now - lagMs);
}

/** Writes go in BatchWriteItem chunks of 25; unprocessed items are retried with backoff. */
const BATCH = 25;

export class DynamoInventory implements Inventory {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly clock: Clock = systemClock,
  ) {}

  public async listSlots(fleetId: string): Promise<SlotRecord[]> {
    const out: SlotRecord[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :gen)',
        ExpressionAttributeValues: { ':pk': { S: fleetId }, ':gen': { S: 'gen#' } },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }));
      for (const item of page.Items ?? []) out.push(unmarshal(item) as unknown as SlotRecord);
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  public async getMeta(fleetId: string): Promise<MetaRecord | undefined> {
    const r = await this.client.send(new GetItemCommand({
      TableName: this.tableName,
      Key: { pk: { S: fleetId }, sk: { S: META_SK } },
      ConsistentRead: true,
    }));
    return r.Item ? (unmarshal(r.Item) as unknown as MetaRecord) : undefined;
  }

  public async putMetaIf(meta: MetaRecord, expected: Fence | undefined): Promise<boolean> {
    try {
      await this.client.send(new PutItemCommand({
        TableName: this.tableName,
        Item: marshal(meta),
        ...(expected
          ? {
            ConditionExpression: 'generation = :g AND requestId = :r',
            ExpressionAttributeValues: { ':g': { N: String(expected.generation) }, ':r': { S: expected.requestId } },
          }
          : { ConditionExpression: 'attribute_not_exists(pk)' }),
      }));
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException || (err as Error)?.name === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  public async putSlots(records: readonly SlotRecord[]): Promise<void> {
    await this.batch(records.map((r) => ({ PutRequest: { Item: marshal(r) } })));
  }

  public async deleteSlots(fleetId: string, sks: readonly string[]): Promise<void> {
    await this.batch(sks.map((sk) => ({ DeleteRequest: { Key: { pk: { S: fleetId }, sk: { S: sk } } } })));
  }

  public async deleteMeta(fleetId: string): Promise<void> {
    await this.batch([{ DeleteRequest: { Key: { pk: { S: fleetId }, sk: { S: META_SK } } } }]);
  }

  public async reserveCall(key: string, intervalMs: number, now: number, lagMs: number): Promise<number> {
    const pk = paceKey(key);
    for (let attempt = 1; attempt <= MAX_RESERVE_ATTEMPTS; attempt++) {
      const r = await this.client.send(new GetItemCommand({
        TableName: this.tableName, Key: { pk: { S: pk }, sk: { S: PACE_SK } }, ConsistentRead: true,
      }));
      const seen = r.Item?.next?.N !== undefined ? Number(r.Item.next.N) : undefined;
      const at = reservationStart(seen, now, lagMs);
      const written = seen === undefined
        ? await this.conditionalPut({ pk, sk: PACE_SK, next: at + intervalMs }, 'attribute_not_exists(pk)', {})
        : await this.conditionalPut({ pk, sk: PACE_SK, next: at + intervalMs }, '#next = :seen', { ':seen': { N: String(seen) } }, { '#next': 'next' });
      if (written) return at;
    }
    throw new Error(`the shared ${key} schedule in table ${this.tableName} kept changing under ${MAX_RESERVE_ATTEMPTS} attempts to reserve a call`);
  }

  // Added for the reconciler (lambda/fleet/reconciler.ts): conditional writes that fence it against deploys.

  /**
   * Reserves `count` slot numbers of the meta's generation, only if the meta is still exactly
   * `expected` (same generation, request and next slot): false when a deploy (or another run)
   * wrote it since, and then nothing was written.
   */
  public async claimSlots(expected: MetaRecord, count: number): Promise<boolean> {
    return this.conditionalPut({ ...expected, nextSlot: expected.nextSlot + count }, FENCE_CONDITION, fenceValues(expected), { '#generation': 'generation' });
  }

  /** Takes the fleet's reconciler lease until `until` (epoch ms) if it is free or expired at `now`. */
  public async tryLease(fleetId: string, owner: string, now: number, until: number): Promise<boolean> {
    return this.conditionalPut({ pk: fleetId, sk: LEASE_SK, owner, until }, 'attribute_not_exists(pk) OR #until < :now',
      { ':now': { N: String(now) } }, { '#until': 'until' });
  }

  public async releaseLease(fleetId: string, owner: string): Promise<void> {
    try {
      await this.client.send(new DeleteItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: fleetId }, sk: { S: LEASE_SK } },
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': { S: owner } },
      }));
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }

  private async conditionalPut(item: object, condition: string, values: Record<string, AttributeValue>,
    names?: Record<string, string>): Promise<boolean> {
    try {
      await this.client.send(new PutItemCommand({
        TableName: this.tableName,
        Item: marshal(item),
        ConditionExpression: condition,
        ExpressionAttributeValues: Object.keys(values).length ? values : undefined,
        ExpressionAttributeNames: names,
      }));
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  private async batch(requests: WriteRequest[]): Promise<void> {
    for (let i = 0; i < requests.length; i += BATCH) {
      let pending = requests.slice(i, i + BATCH);
      for (let attempt = 0; pending.length; attempt++) {
        if (attempt >= 10) throw new Error(`DynamoDB left ${pending.length} write(s) unprocessed on table ${this.tableName} after 10 attempts`);
        if (attempt > 0) await this.clock.sleep(backoffDelay(attempt, { baseDelayMs: 200, maxDelayMs: 5_000 }));
        const r = await this.client.send(new BatchWriteItemCommand({ RequestItems: { [this.tableName]: pending } }));
        pending = r.UnprocessedItems?.[this.tableName] ?? [];
      }
    }
  }
}

/** In-process inventory with the same semantics, for tests and the benchmark. */
export class MemoryInventory implements Inventory {
  public readonly items = new Map<string, Record<string, unknown>>();
  /** The shared call schedules (stack-wide, not a fleet's items): operation → next free time. */
  public readonly paces = new Map<string, number>();

  public async listSlots(fleetId: string): Promise<SlotRecord[]> {
    return [...this.items.values()]
      .filter((i) => i.pk === fleetId && String(i.sk).startsWith('gen#'))
      .sort((a, b) => String(a.sk).localeCompare(String(b.sk)))
      .map((i) => ({ ...i }) as unknown as SlotRecord);
  }
  public async getMeta(fleetId: string): Promise<MetaRecord | undefined> {
    const m = this.items.get(`${fleetId}\u0000${META_SK}`);
    return m ? ({ ...m } as unknown as MetaRecord) : undefined;
  }
  public async putMetaIf(meta: MetaRecord, expected: Fence | undefined): Promise<boolean> {
    const now = await this.getMeta(meta.pk);
    if (expected ? !owns(now, expected) : now !== undefined) return false;
    this.items.set(`${meta.pk}\u0000${META_SK}`, strip({ ...meta }));
    return true;
  }
  public async putSlots(records: readonly SlotRecord[]): Promise<void> {
    for (const r of records) this.items.set(`${r.pk}\u0000${r.sk}`, strip({ ...r }));
  }
  public async deleteSlots(fleetId: string, sks: readonly string[]): Promise<void> {
    for (const sk of sks) this.items.delete(`${fleetId}\u0000${sk}`);
  }
  public async deleteMeta(fleetId: string): Promise<void> {
    this.items.delete(`${fleetId}\u0000${META_SK}`);
  }

  public async reserveCall(key: string, intervalMs: number, now: number, lagMs: number): Promise<number> {
    const at = reservationStart(this.paces.get(key), now, lagMs);
    this.paces.set(key, at + intervalMs);
    return at;
  }

  // Added for the reconciler: the same conditional semantics as DynamoInventory.
  public async claimSlots(expected: MetaRecord, count: number): Promise<boolean> {
    if (!this.metaIs(expected)) return false;
    return this.putMetaIf({ ...expected, nextSlot: expected.nextSlot + count }, expected);
  }
  public async tryLease(fleetId: string, owner: string, now: number, until: number): Promise<boolean> {
    const key = `${fleetId}\u0000${LEASE_SK}`;
    const lease = this.items.get(key);
    if (lease && Number(lease.until) >= now) return false;
    this.items.set(key, { pk: fleetId, sk: LEASE_SK, owner, until });
    return true;
  }
  public async releaseLease(fleetId: string, owner: string): Promise<void> {
    const key = `${fleetId}\u0000${LEASE_SK}`;
    if (this.items.get(key)?.owner === owner) this.items.delete(key);
  }
  private metaIs(expected: MetaRecord): boolean {
    const m = this.items.get(`${expected.pk}\u0000${META_SK}`);
    return !!m && m.generation === expected.generation && m.requestId === expected.requestId && m.nextSlot === expected.nextSlot;
  }
}

/** The reconciler's lease item (not a slot: `listSlots` never returns it). */
export const LEASE_SK = 'reconciler-lease';
/** The meta is exactly what the reconciler read: no deploy opened a generation, no run claimed slots since. */
const FENCE_CONDITION = '#generation = :generation AND requestId = :requestId AND nextSlot = :nextSlot';

function fenceValues(m: MetaRecord): Record<string, AttributeValue> {
  return { ':generation': { N: String(m.generation) }, ':requestId': { S: m.requestId }, ':nextSlot': { N: String(m.nextSlot) } };
}

function strip(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

/** Flat items of strings, numbers and booleans only. */
export function marshal(o: object): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === null) continue;
    if (typeof v === 'string') out[k] = { S: v };
    else if (typeof v === 'number') out[k] = { N: String(v) };
    else if (typeof v === 'boolean') out[k] = { BOOL: v };
    else throw new Error(`inventory attribute ${k} has unsupported type ${typeof v}`);
  }
  return out;
}

export function unmarshal(item: Record<string, AttributeValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) {
    if (v.S !== undefined) out[k] = v.S;
    else if (v.N !== undefined) out[k] = Number(v.N);
    else if (v.BOOL !== undefined) out[k] = v.BOOL;
  }
  return out;
}
