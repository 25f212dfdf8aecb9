import { ListMicrovmsCommand } from '@aws-sdk/client-lambda-microvms';
import type { MicrovmItem } from '@aws-sdk/client-lambda-microvms';
import type { MicrovmsApi } from './microvms-client';

/**
 * The MicroVM states in which a MicroVM is not gone yet: it holds account memory, keeps its image
 * (and image version) from being deleted, and must be waited for by anything that drains MicroVMs.
 *
 * TERMINATING counts: termination is asynchronous, memory is given back only when the MicroVM is
 * TERMINATED, and DeleteMicrovmImage right after TerminateMicrovm is refused with 400 "Cannot delete
 * microvm image with running microvms." during the TERMINATING window (recorded-facts.md, "Images
 * and versions" and "Quotas"). Only TERMINATED is gone.
 */
export const LIVE_MICROVM_STATES: ReadonlySet<string> = new Set(['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED', 'TERMINATING']);

/** True while the MicroVM still counts (see LIVE_MICROVM_STATES). */
export function isLive(state: string | undefined): boolean {
  return state !== undefined && LIVE_MICROVM_STATES.has(state);
}

/** Which MicroVMs a scan returns. */
export interface MicrovmFilter {
  /** Only MicroVMs of this image (the full ARN). */
  readonly imageArn: string;
  /** Only MicroVMs of this version of the image. */
  readonly imageVersion?: string;
  /** Only MicroVMs in LIVE_MICROVM_STATES. @default true */
  readonly liveOnly?: boolean;
}

/**
 * The one ListMicrovms scan: every page, filtered server-side by image (and version) and checked
 * again client-side, since a filter the service ignores must not widen what a handler acts on.
 */
export async function listMicrovms(client: MicrovmsApi, filter: MicrovmFilter): Promise<MicrovmItem[]> {
  const out: MicrovmItem[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(new ListMicrovmsCommand({
      imageIdentifier: filter.imageArn, imageVersion: filter.imageVersion, nextToken,
    }));
    for (const vm of page.items ?? []) {
      if (vm.imageArn !== filter.imageArn) continue;
      if (filter.imageVersion !== undefined && vm.imageVersion !== filter.imageVersion) continue;
      if ((filter.liveOnly ?? true) && !isLive(vm.state)) continue;
      out.push(vm);
    }
    nextToken = page.nextToken ?? undefined;
  } while (nextToken);
  return out;
}

/**
 * States in which a MicroVM counts toward a fleet's desired count (a warm pool's or an idle policy's
 * suspended instances too), and in which it stays until something acts on it (or its idle policy
 * or cap does).
 */
export const READY_MICROVM_STATES: ReadonlySet<string> = new Set(['RUNNING', 'SUSPENDED']);
