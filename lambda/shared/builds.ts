import { ListMicrovmImageBuildsCommand } from '@aws-sdk/client-lambda-microvms';
import type { MicrovmImageBuildSummary } from '@aws-sdk/client-lambda-microvms';
import { errorMessage } from './errors';
import type { MicrovmsApi } from './microvms-client';

/** Every build of one image version (ListMicrovmImageBuilds, all pages). */
export async function listBuilds(client: MicrovmsApi, imageArn: string, imageVersion: string): Promise<MicrovmImageBuildSummary[]> {
  const out: MicrovmImageBuildSummary[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(new ListMicrovmImageBuildsCommand({ imageIdentifier: imageArn, imageVersion, nextToken }));
    out.push(...(page.items ?? []));
    nextToken = page.nextToken ?? undefined;
  } while (nextToken);
  return out;
}

/**
 * Why a version failed (or is still not built), for a CloudFormation event: the version's
 * stateReason, then each build as `build <id> (<architecture>[ gen <generation>]) <state>[: <reason>]`.
 * Never throws: a failure to read the builds is said in the text.
 */
export async function buildReasons(client: MicrovmsApi, imageArn: string, imageVersion: string, versionReason?: string | null): Promise<string> {
  const reasons: string[] = [];
  if (versionReason) reasons.push(`version ${imageVersion}: ${versionReason}`);
  try {
    for (const b of await listBuilds(client, imageArn, imageVersion)) {
      const gen = b.chipsetGeneration ? ` gen ${b.chipsetGeneration}` : '';
      reasons.push(`build ${b.buildId} (${b.architecture}${gen}) ${b.buildState}${b.stateReason ? `: ${b.stateReason}` : ''}`);
    }
  } catch (err) {
    reasons.push(`(could not read the builds: ${errorMessage(err)})`);
  }
  return reasons.join('; ') || 'the service gave no reason';
}
