import * as fs from 'node:fs';
import * as path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';

/**
 * The objects a synthesized app staged as file assets (`asset.<hash>.json` in its cloud assembly),
 * by the S3 key the default synthesizer gives them (`<hash>.json`): what `cdk deploy` would upload.
 */
export function stagedObjects(assemblyDir: string, into = new Map<string, string>()): Map<string, string> {
  for (const f of fs.readdirSync(assemblyDir)) {
    if (/^asset\.[0-9a-f]{64}\.json$/.test(f)) into.set(f.slice('asset.'.length), fs.readFileSync(path.join(assemblyDir, f), 'utf8'));
  }
  return into;
}

/**
 * S3 GetObject served from `objects` (key → content) at the end of a real SDK client's middleware
 * stack (unit tests have no S3), so that the IAM check sees every call the handlers make. A missing
 * key answers 404 NoSuchKey, as S3 does.
 */
export function inMemoryBucket(client: S3Client, objects: Map<string, string>): S3Client {
  client.middlewareStack.add((() => async (args: any) => {
    const { Key } = args.input;
    const text = objects.get(Key);
    if (text === undefined) {
      throw Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $fault: 'client', $metadata: { httpStatusCode: 404 } });
    }
    return { output: { $metadata: {}, Body: { transformToString: async () => text } }, response: {} };
  }) as any, { step: 'initialize', name: 'inMemoryBucket', priority: 'low' });
  return client;
}

/** The staged properties a resource's `StagedProperties` names, read from the app's cloud assembly. */
export function stagedContent(assemblyDir: string, staged: { Key: string }): any {
  return JSON.parse(fs.readFileSync(path.join(assemblyDir, `asset.${staged.Key}`), 'utf8'));
}
