import { handlerFor, withoutHandlerRole } from './dispatch';
import { isReconcilerInput, ReconcilerInput } from '../../src/private/reconciler-wire';
import type { ReconcileReport } from '../fleet/reconciler';
import { reconcileFleet, ReconcileOptions } from '../fleet/reconciler-entry';
import type { IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse } from '../shared/framework';

/** The provider's two Lambda entries (lambda/provider/index.ts builds them with real role sessions). */
export interface ProviderEntry {
  /**
   * Serves two callers: the Provider framework (a CloudFormation request, invoked synchronously)
   * and the EventBridge Scheduler schedule of each self-healing fleet (a reconciler run, invoked
   * asynchronously), told apart by the run's marker (`isReconcilerInput`). One function for both
   * keeps a stack at 5 library Lambda functions (issue 12).
   */
  onEvent(event: OnEventRequest | ReconcilerInput, context?: { awsRequestId?: string }): Promise<OnEventResponse | ReconcileReport>;
  isComplete(event: IsCompleteRequest): Promise<IsCompleteResponse>;
}

export function providerEntry(options: ReconcileOptions): ProviderEntry {
  return {
    onEvent: async (event, context) => (isReconcilerInput(event)
      ? reconcileFleet(event, options, context?.awsRequestId)
      : handlerFor(event, options).onEvent(withoutHandlerRole(event))),
    isComplete: async (event) => handlerFor(event, options).isComplete(withoutHandlerRole(event)),
  };
}
