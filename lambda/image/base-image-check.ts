import { ListManagedMicrovmImagesCommand, ListManagedMicrovmImageVersionsCommand } from '@aws-sdk/client-lambda-microvms';
import { ProvisioningError } from '../shared/framework';
import type { MicrovmsApi } from '../shared/microvms-client';

/** A Lambda-managed base image: account `aws` (`arn:<partition>:lambda:<region>:aws:microvm-image:<name>`). */
const MANAGED_IMAGE_ARN = /^arn:[^:]+:lambda:[^:]*:aws:microvm-image:([^:]+)$/;
/**
 * Version statuses a build may use. The model knows AVAILABLE and DEPRECATED (still builds); the
 * Dev Guide's later states (EXPIRING, EXPIRED, RECALLED) cannot build new images.
 */
const BUILDABLE = new Set(['AVAILABLE', 'DEPRECATED']);

/**
 * Before a build: the managed base image, and the pinned version if any, exist and may still be
 * built on. A missing or retired one fails the deploy with what ListManagedMicrovmImages and
 * ListManagedMicrovmImageVersions return, instead of a build failure later. Images of your own
 * account as a base (BaseImage.fromImage) are not checked here.
 */
export async function checkManagedBaseImage(client: MicrovmsApi, baseImageArn: string, baseImageVersion?: string): Promise<void> {
  if (!MANAGED_IMAGE_ARN.test(baseImageArn)) return;
  const images: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(new ListManagedMicrovmImagesCommand({ nextToken }));
    images.push(...(page.items ?? []).map((i) => i.imageArn!));
    nextToken = page.nextToken ?? undefined;
  } while (nextToken);
  if (!images.includes(baseImageArn)) {
    throw new ProvisioningError(`base image ${baseImageArn} is not a Lambda-managed MicroVM image in this Region. ListManagedMicrovmImages returns: ` +
      `${images.map(nameOf).join(', ') || 'none'}. Use one of them (BaseImage.managed('<name>')). Nothing was created or changed.`);
  }
  if (baseImageVersion === undefined) return;
  const versions: { imageVersion: string; status: string }[] = [];
  do {
    const page = await client.send(new ListManagedMicrovmImageVersionsCommand({ imageIdentifier: baseImageArn, nextToken }));
    versions.push(...(page.items ?? []).map((v) => ({ imageVersion: v.imageVersion!, status: v.status ?? 'AVAILABLE' })));
    nextToken = page.nextToken ?? undefined;
  } while (nextToken);
  // The service resolves a version to its full form ("1" → "1.0"): either names the same version.
  const wanted = baseImageVersion.replace(/\.0$/, '');
  const match = versions.find((v) => v.imageVersion.replace(/\.0$/, '') === wanted);
  const listing = versions.map((v) => `${v.imageVersion} (${v.status})`).join(', ') || 'none';
  if (!match) {
    throw new ProvisioningError(`base image ${nameOf(baseImageArn)} has no version ${baseImageVersion}. ListManagedMicrovmImageVersions returns: ${listing}. ` +
      'Pin one of the buildable versions, or leave the version out to build on the latest. Nothing was created or changed.');
  }
  if (!BUILDABLE.has(match.status)) {
    throw new ProvisioningError(`base image ${nameOf(baseImageArn)} version ${baseImageVersion} is ${match.status}: it can no longer be built on. ` +
      `ListManagedMicrovmImageVersions returns: ${listing}. Pin an AVAILABLE version, or leave the version out. Nothing was created or changed.`);
  }
}

function nameOf(arn: string): string {
  return MANAGED_IMAGE_ARN.exec(arn)?.[1] ?? arn;
}
