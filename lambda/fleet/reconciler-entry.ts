import { randomUUID } from 'node:crypto';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoInventory } from './inventory';
import { countThrottles } from './metrics';
import { DeployState, FleetReconciler, ReconcilerOptions, ReconcileReport } from './reconciler';
import type { ReconcilerInput } from '../../src/private/reconciler-wire';
import { defaultClients, DispatchOptions } from '../provider/dispatch';
import { reconcilerSessionName } from '../shared/credentials';
import { isStackMissing } from '../shared/errors';
import { s3Reader } from '../shared/staged';

/** Stack statuses in which no CloudFormation operation runs and the template's values are in force. */
const SETTLED = new Set(['CREATE_COMPLETE', 'UPDATE_COMPLETE', 'UPDATE_ROLLBACK_COMPLETE', 'IMPORT_COMPLETE', 'IMPORT_ROLLBACK_COMPLETE']);

/**
 * A run sends no request after this long. The run runs in the provider's onEvent function, whose
 * timeout (5 minutes, for CloudFormation's requests) would let a stuck run outlive its lease
 * (lambda/fleet/reconciler.ts, 120 s) and overlap the next run: past this deadline every client
 * of the run refuses to send, so all of a run's calls are made within the lease.
 */
export const RUN_DEADLINE_MS = 60_000;

// DescribeStacks is the provider role's own call (on exactly this stack); every call on the fleet
// is signed by the fleet's handler role (see reconcileFleet). Created on the first run: most
// invocations of the provider's function are CloudFormation's, which never read the stack.
let cloudformation: CloudFormationClient | undefined;

export async function deployState(stackId: string): Promise<DeployState> {
  cloudformation ??= new CloudFormationClient({});
  try {
    const out = await cloudformation.send(new DescribeStacksCommand({ StackName: stackId }));
    const status = out.Stacks?.[0]?.StackStatus ?? '';
    if (SETTLED.has(status)) return 'SETTLED';
    if (status.endsWith('_IN_PROGRESS')) return 'DEPLOYING';
    return status.startsWith('DELETE_') ? 'GONE' : 'UNSETTLED';
  } catch (err) {
    if (isStackMissing(err)) return 'GONE';
    throw err;
  }
}

/** What a run is made of: the provider's dispatch options (role sessions, clients, clock). */
export interface ReconcileOptions extends DispatchOptions {
  /** Tests only: the stack's status, the metrics sink, randomness. @default DescribeStacks, stdout, Math.random */
  readonly reconciler?: Partial<Pick<ReconcilerOptions, 'deployState' | 'metrics' | 'random'>>;
}

/**
 * One scheduled run for the fleet of `event` (the provider's onEvent function routes a
 * `ReconcilerInput` here, lambda/provider/index.ts). The run's calls on MicroVMs, the inventory
 * and the payload secret are signed by the fleet's own handler role (the one its deploys use; it
 * trusts the provider role), in a session named `reconciler-<invocation id>`.
 *
 * @param invocationId the Lambda request id of the invocation, for the session name.
 */
export function reconcileFleet(event: ReconcilerInput, options: ReconcileOptions, invocationId: string = randomUUID()): Promise<ReconcileReport> {
  const role = event.HandlerRoleArn;
  if (!role) {
    throw new Error(`the schedule of fleet ${event.FleetId} carries no HandlerRoleArn: it was synthesized by a version of cdk-lambda-microvms `
      + 'before the reconciler used the fleet\'s handler role; deploy the stack again');
  }
  const deadline = Date.now() + RUN_DEADLINE_MS;
  const credentials = options.assumeRole(role, reconcilerSessionName(invocationId));
  const clients = options.clients ?? defaultClients;
  // The provider's clients: RunMicrovm is retried by the Launcher with the same clientToken.
  const client = refuseAfter(clients.microvms(credentials), deadline);
  const runClient = refuseAfter(clients.microvmsRun(credentials), deadline);
  const throttles = [countThrottles(client), countThrottles(runClient)];
  const dynamo = refuseAfter(clients.dynamo(credentials), deadline);
  return new FleetReconciler({
    client,
    runClient,
    storeFor: (table) => new DynamoInventory(dynamo, table),
    deployState,
    secrets: refuseAfter(clients.secrets(credentials), deadline),
    readStaged: s3Reader(refuseAfter(clients.s3(credentials), deadline), options.clock),
    throttles: () => throttles.reduce((n, c) => n + c.throttled, 0),
    clock: options.clock,
    ...options.reconciler,
  }).reconcile(event);
}

/**
 * Makes `client` fail every attempt (retries included) that would start after `deadline` (epoch
 * ms), with a message saying so; attempts already sent complete.
 */
export function refuseAfter<C extends { middlewareStack: any }>(client: C, deadline: number, now: () => number = Date.now): C {
  client.middlewareStack.addRelativeTo((next: any, context: any) => async (args: any) => {
    if (now() > deadline) {
      throw new Error(`${context.commandName ?? 'request'} not sent: the reconciler run passed its ${RUN_DEADLINE_MS / 1000}-second deadline`);
    }
    return next(args);
  }, { relation: 'after', toMiddleware: 'retryMiddleware' });
  return client;
}
