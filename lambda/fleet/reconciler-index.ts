import { randomUUID } from 'node:crypto';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { STSClient } from '@aws-sdk/client-sts';
import { DynamoInventory } from './inventory';
import { countThrottles } from './metrics';
import { DeployState, FleetReconciler, ReconcileReport } from './reconciler';
import type { ReconcilerInput } from '../../src/private/reconciler-wire';
import { defaultClients } from '../provider/dispatch';
import { reconcilerSessionName, RoleSessions } from '../shared/credentials';
import { isStackMissing } from '../shared/errors';
import { s3Reader } from '../shared/staged';

/** Stack statuses in which no CloudFormation operation runs and the template's values are in force. */
const SETTLED = new Set(['CREATE_COMPLETE', 'UPDATE_COMPLETE', 'UPDATE_ROLLBACK_COMPLETE', 'IMPORT_COMPLETE', 'IMPORT_ROLLBACK_COMPLETE']);

// DescribeStacks is the reconciler role's own call; every call on the fleet is signed by the
// fleet's handler role (see handler below).
const cloudformation = new CloudFormationClient({});
const sessions = new RoleSessions(new STSClient({}));

export async function deployState(stackId: string): Promise<DeployState> {
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

/**
 * Invoked by the fleet's EventBridge Scheduler schedule with the fleet's ReconcilerInput. The run's
 * calls on MicroVMs, the inventory, the payload secret and the staged payload are signed by the fleet's own handler role
 * (the one its deploys use; it trusts this function's role), in a session named after this run.
 */
export const handler = (event: ReconcilerInput, context?: { awsRequestId?: string }): Promise<ReconcileReport> => {
  const role = event.HandlerRoleArn;
  if (!role) {
    throw new Error(`the schedule of fleet ${event.FleetId} carries no HandlerRoleArn: it was synthesized by a version of cdk-lambda-microvms `
      + 'before the reconciler used the fleet\'s handler role; deploy the stack again');
  }
  const credentials = sessions.provider(role, reconcilerSessionName(context?.awsRequestId ?? randomUUID()));
  // The provider's clients: RunMicrovm is retried by the Launcher with the same clientToken.
  const client = defaultClients.microvms(credentials);
  const runClient = defaultClients.microvmsRun(credentials);
  const throttles = [countThrottles(client), countThrottles(runClient)];
  const dynamo = defaultClients.dynamo(credentials);
  return new FleetReconciler({
    client,
    runClient,
    storeFor: (table) => new DynamoInventory(dynamo, table),
    deployState,
    secrets: defaultClients.secrets(credentials),
    readStaged: s3Reader(defaultClients.s3(credentials)),
    throttles: () => throttles.reduce((n, c) => n + c.throttled, 0),
  }).reconcile(event);
};
