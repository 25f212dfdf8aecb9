import {
  DeleteMicrovmImageVersionCommand,
  GetMicrovmImageCommand,
  ListMicrovmImageVersionsCommand,
  ListTagsCommand,
  MicrovmImageVersionSummary,
} from '@aws-sdk/client-lambda-microvms';
import { pinnedVersions } from './pins';
import { requestDelete } from '../shared/deletion';
import { errorMessage, errorName } from '../shared/errors';
import { log } from '../shared/log';
import { listMicrovms } from '../shared/microvm-states';
import type { MicrovmsApi } from '../shared/microvms-client';

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
 * MicroVmImageVersion (pin tag), still building or being deleted, or the version of a live MicroVM
 * (LIVE_MICROVM_STATES). Protected versions still count toward `keep`.
 *
 * Never throws: pruning saves storage and must not fail (and so roll back) an image deploy that
 * built successfully. What it could not do is logged and retried on the next update.
 */
export async function pruneImageVersions(client: MicrovmsApi, imageArn: string, keep: number, protect: string[] = []): Promise<PruneResult> {
  const deleted: string[] = [];
  const kept: Record<string, string> = {};
  try {
    const versions = await listVersions(client, imageArn);
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
      const outcome = await requestDelete(`MicroVM image version ${version} of ${imageArn}`,
        () => client.send(new DeleteMicrovmImageVersionCommand({ imageIdentifier: imageArn, imageVersion: version })));
      // In use since we listed, or the service refuses for now: keep it, try next time.
      if (outcome.kind === 'refused') {
        kept[version] = `refused: ${outcome.reason}`;
        continue;
      }
      if (outcome.kind === 'requested') deleted.push(version);
      excess--;
    }
    log('pruned image versions', { imageArn, keep, deleted, kept });
  } catch (err) {
    log('pruning image versions failed; retried on the next update', { imageArn, error: errorName(err), reason: errorMessage(err), deleted });
  }
  return { deleted, kept };
}

/** Versions that live MicroVMs of this image run. */
async function versionsInUse(client: MicrovmsApi, imageArn: string): Promise<Set<string>> {
  return new Set((await listMicrovms(client, { imageArn })).map((vm) => vm.imageVersion!));
}

/** Every version of the image (ListMicrovmImageVersions, all pages). */
async function listVersions(client: MicrovmsApi, imageArn: string): Promise<MicrovmImageVersionSummary[]> {
  const out: MicrovmImageVersionSummary[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(new ListMicrovmImageVersionsCommand({ imageIdentifier: imageArn, nextToken }));
    out.push(...(page.items ?? []));
    nextToken = page.nextToken ?? undefined;
  } while (nextToken);
  return out;
}
