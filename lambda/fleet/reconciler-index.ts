import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoInventory } from './inventory';
import { countThrottles } from './metrics';
import { DeployState, FleetReconciler, ReconcileReport } from './reconciler';
import type { ReconcilerInput } from '../../src/private/reconciler-wire';
import { isStackMissing } from '../shared/errors';
import { createMicrovmsClient } from '../shared/microvms-client';

/** Stack statuses in which no CloudFormation operation runs and the template's values are in force. */
const SETTLED = new Set(['CREATE_COMPLETE', 'UPDATE_COMPLETE', 'UPDATE_ROLLBACK_COMPLETE', 'IMPORT_COMPLETE', 'IMPORT_ROLLBACK_COMPLETE']);

const client = createMicrovmsClient();
// RunMicrovm is retried by the Launcher with the same clientToken (countable calls per instance).
const runClient = new LambdaMicrovmsClient({ maxAttempts: 1 });
const throttles = [countThrottles(client), countThrottles(runClient)];
const dynamo = new DynamoDBClient({});
const cloudformation = new CloudFormationClient({});

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

const reconciler = new FleetReconciler({
  client,
  runClient,
  storeFor: (table) => new DynamoInventory(dynamo, table),
  deployState,
  secrets: new SecretsManagerClient({}),
  throttles: () => throttles.reduce((n, c) => n + c.throttled, 0),
});

/** Invoked by the fleet's EventBridge Scheduler schedule with the fleet's ReconcilerInput. */
export const handler = (event: ReconcilerInput): Promise<ReconcileReport> => reconciler.reconcile(event);
