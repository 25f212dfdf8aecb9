/**
 * The one reader of staged values (lambda/shared/staged.ts), with an injected reader: how staged
 * properties are merged, what a Delete reads, and that no failure message carries a value. The real
 * S3 path is proven by test/iam-lifecycle.test.ts (IAM-checked, in-memory bucket behind the real SDK
 * client) and test/e2e/canary.test.ts (ministack's S3).
 */
import type { OnEventRequest } from '../lambda/shared/framework';
import { ProvisioningError } from '../lambda/shared/framework';
import { WireMismatchError } from '../lambda/shared/props';
import { ReadStaged, readingStaged, s3Reader, withStagedEvent, withStagedProperties } from '../lambda/shared/staged';

const LOCATION = { Bucket: 'cdk-hnb659fds-assets-123456789012-us-east-1', Key: `${'a'.repeat(64)}.json` };
const OTHER = { Bucket: LOCATION.Bucket, Key: `${'b'.repeat(64)}.json` };

/** A bucket of JSON objects; records every key read. */
function bucket(objects: Record<string, unknown>, reads: string[] = []): ReadStaged {
  return async ({ Key }) => {
    reads.push(Key);
    if (!(Key in objects)) throw Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    const v = objects[Key];
    return typeof v === 'string' ? v : JSON.stringify(v);
  };
}

function event(requestType: 'Create' | 'Update' | 'Delete', props: Record<string, unknown>, old?: Record<string, unknown>): OnEventRequest<any> {
  return {
    RequestType: requestType,
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/S/1',
    RequestId: 'r-1',
    LogicalResourceId: 'Image',
    ResourceType: 'Custom::LambdaMicroVmImage',
    ResourceProperties: props,
    OldResourceProperties: old,
  };
}

describe('staged properties', () => {
  test('the staged environment is merged with the inline entries (tokens), and the location dropped', async () => {
    const props = { Name: 'img', Environment: { FROM_TOKEN: 'resolved' }, StagedProperties: LOCATION };
    const out = await withStagedProperties(props, bucket({ [LOCATION.Key]: { Environment: { SECRET: 'canary' } } }));
    expect(out).toEqual({ Name: 'img', Environment: { FROM_TOKEN: 'resolved', SECRET: 'canary' } });
  });

  test('a staged payload becomes RunHookPayload; properties without StagedProperties are not read', async () => {
    const reads: string[] = [];
    const read = bucket({ [LOCATION.Key]: { RunHookPayload: 'canary' } }, reads);
    expect(await withStagedProperties({ DesiredCount: '1', StagedProperties: LOCATION }, read)).toEqual({ DesiredCount: '1', RunHookPayload: 'canary' });
    const plain = { DesiredCount: '1', RunHookPayload: 'inline' };
    expect(await withStagedProperties(plain, read)).toBe(plain);
    expect(reads).toEqual([LOCATION.Key]);
  });

  test('an Update reads the new values with the new role\'s reader and the old ones with the old role\'s; a Delete reads nothing', async () => {
    const newReads: string[] = [];
    const oldReads: string[] = [];
    const objects = { [LOCATION.Key]: { Environment: { MODE: 'two' } }, [OTHER.Key]: { Environment: { MODE: 'one' } } };
    const update = await withStagedEvent(event('Update', { StagedProperties: LOCATION }, { StagedProperties: OTHER }), bucket(objects, newReads), bucket(objects, oldReads));
    expect(update.ResourceProperties).toEqual({ Environment: { MODE: 'two' } });
    expect(update.OldResourceProperties).toEqual({ Environment: { MODE: 'one' } });
    expect([newReads, oldReads]).toEqual([[LOCATION.Key], [OTHER.Key]]);

    const reads: string[] = [];
    const del = await withStagedEvent(event('Delete', { Name: 'img', StagedProperties: LOCATION }), bucket({}, reads));
    expect(del.ResourceProperties).toEqual({ Name: 'img' });
    expect(reads).toEqual([]);
  });

  test('the handler sees the merged event on onEvent and on every isComplete; what it returns carries no value', async () => {
    const seen: unknown[] = [];
    const handler = readingStaged({
      onEvent: async (e) => { seen.push(e.ResourceProperties); return { PhysicalResourceId: 'p' }; },
      isComplete: async (e) => { seen.push(e.ResourceProperties); return { IsComplete: true }; },
    }, bucket({ [LOCATION.Key]: { Environment: { SECRET: 'canary' } } }));
    const created = await handler.onEvent(event('Create', { StagedProperties: LOCATION }));
    await handler.isComplete({ ...event('Create', { StagedProperties: LOCATION }), PhysicalResourceId: 'p' } as any);
    expect(seen).toEqual([{ Environment: { SECRET: 'canary' } }, { Environment: { SECRET: 'canary' } }]);
    expect(JSON.stringify(created)).not.toContain('canary');
  });

  test('a missing object fails naming the object and the fix; malformed content fails without echoing it', async () => {
    const gone = withStagedProperties({ StagedProperties: LOCATION }, bucket({}));
    await expect(gone).rejects.toThrow(ProvisioningError);
    await expect(gone).rejects.toThrow(/s3:\/\/cdk-hnb659fds-assets-123456789012-us-east-1\/a{64}\.json\) are not in the asset bucket: deploy with `cdk deploy`/);

    const notJson = withStagedProperties({ StagedProperties: LOCATION }, bucket({ [LOCATION.Key]: 'canary{' }));
    await expect(notJson).rejects.toThrow(WireMismatchError);
    await expect(notJson).rejects.not.toThrow(/canary/);

    const unknown = withStagedProperties({ StagedProperties: LOCATION }, bucket({ [LOCATION.Key]: { Name: 'canary' } }));
    await expect(unknown).rejects.toThrow(/only Environment, RunHookPayload \(the object has Name\)/);
    await expect(unknown).rejects.not.toThrow(/canary/);

    await expect(withStagedProperties({ StagedProperties: { Bucket: 'b' } }, bucket({}))).rejects.toThrow(WireMismatchError);
  });

  test('a new role\'s first read, refused while IAM propagates its policy, is retried for about 45 s; other errors are not', async () => {
    let t = 0;
    const clock = { now: () => t, sleep: async (ms: number) => { t += ms; } };
    const denied = () => Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    let calls = 0;
    const s3 = (refusals: number, error: () => Error = denied) => ({
      send: async () => {
        calls++;
        if (calls <= refusals) throw error();
        return { Body: { transformToString: async () => '{"A":"1"}' } };
      },
    });
    // Propagated after three refusals: read.
    expect(await s3Reader(s3(3), clock)(LOCATION)).toBe('{"A":"1"}');
    expect(calls).toBe(4);
    // Never propagated: 8 attempts, then IAM's answer; waits of 1 s doubling to 10 s at most.
    calls = 0; t = 0;
    await expect(s3Reader(s3(100), clock)(LOCATION)).rejects.toThrow('Access Denied');
    expect(calls).toBe(8);
    expect(t).toBeLessThanOrEqual(1000 + 2000 + 4000 + 8000 + 3 * 10_000);
    // A missing object is not retried.
    calls = 0;
    const missing = () => Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    await expect(s3Reader(s3(100, missing), clock)(LOCATION)).rejects.toThrow('does not exist');
    expect(calls).toBe(1);
  });
});
