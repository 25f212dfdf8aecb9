import {
  DeleteMicrovmImageVersionCommand,
  GetMicrovmImageCommand,
  LambdaMicrovmsClient,
  ListTagsCommand,
  MicrovmImageVersionSummary,
  paginateListMicrovmImageVersions,
  paginateListMicrovms,
} from '@aws-sdk/client-lambda-microvms';
import { pinnedVersions } from './pins';
import { errorMessage, errorName, isConflict, isNotFound } from '../shared/errors';
import { log } from '../shared/log';

/** Version states that cost snapshot storage and count toward the 50-version quota. */
const SETTLED = new Set(['SUCCESSFUL', 'FAILED']);

export interface PruneResult {
  /** Versions whose deletion was requested. */
  readonly deleted: string[];
  /** Versions beyond the count that were kept, with why. */
  readonly kept: Record<string, string>;
}

/** `1.0` < `2.0` < `10.0`: compares each dot-separated number. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (Number.isNaN(x) || Number.isNaN(y)) return a.localeCompare(b);
    if (x !== y) return x - y;
  }
  return 0;
}

/**
 * Deletes the oldest versions of `imageArn` until at most `keep` remain, never one that is:
 * the latest active version, in `protect` (the version this deploy produced), pinned by a
 * MicroVmImageVersion (pin tag), still building or being deleted, or the version of a MicroVM that
 * is not TERMINATED. Protected versions still count toward `keep`.
 *
 * Never throws: pruning saves storage and must not fail (and so roll back) an image deploy that
 * built successfully. What it could not do is logged and retried on the next update.
 */
export async function pruneImageVersions(client: LambdaMicrovmsClient, imageArn: string, keep: number, protect: string[] = []): Promise<PruneResult> {
  const deleted: string[] = [];
  const kept: Record<string, string> = {};
  try {
    const versions: MicrovmImageVersionSummary[] = [];
    for await (const page of paginateListMicrovmImageVersions({ client }, { imageIdentifier: imageArn })) versions.push(...(page.items ?? []));
    const live = versions.filter((v) => v.state !== 'DELETING' && v.state !== 'DELETED');
    let excess = live.length - keep;
    if (excess <= 0) return { deleted, kept };

    const image = await client.send(new GetMicrovmImageCommand({ imageIdentifier: imageArn }));
    const tags = (await client.send(new ListTagsCommand({ Resource: imageArn }))).Tags;
    const pinned = pinnedVersions(tags);
    const inUse = await versionsInUse(client, imageArn);

    for (const v of [...live].sort((a, b) => compareVersions(a.imageVersion!, b.imageVersion!))) {
      if (excess <= 0) break;
      const version = v.imageVersion!;
      const why = version === image.latestActiveImageVersion ? 'latest active version'
        : protect.includes(version) ? 'produced by this deploy'
          : pinned.has(version) ? 'pinned by a MicroVmImageVersion'
            : inUse.has(version) ? 'MicroVMs that are not TERMINATED run from it'
              : !SETTLED.has(v.state!) ? `state ${v.state}`
                : undefined;
      if (why) {
        kept[version] = why;
        continue;
      }
      try {
        await client.send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: imageArn, imageVersion: version }));
        deleted.push(version);
        excess--;
      } catch (err) {
        if (isNotFound(err)) {
          excess--;
          continue;
        }
        // In use since we listed, or the service refuses for now: keep it, try next time.
        if (isConflict(err)) {
          kept[version] = `refused: ${errorMessage(err)}`;
          continue;
        }
        throw err;
      }
    }
    log('pruned image versions', { imageArn, keep, deleted, kept });
  } catch (err) {
    log('pruning image versions failed; retried on the next update', { imageArn, error: errorName(err), reason: errorMessage(err), deleted });
  }
  return { deleted, kept };
}

/** Versions of MicroVMs from this image that are not TERMINATED. */
async function versionsInUse(client: LambdaMicrovmsClient, imageArn: string): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const page of paginateListMicrovms({ client }, { imageIdentifier: imageArn })) {
    for (const vm of page.items ?? []) if (vm.imageArn === imageArn && vm.state !== 'TERMINATED') out.add(vm.imageVersion!);
  }
  return out;
}
