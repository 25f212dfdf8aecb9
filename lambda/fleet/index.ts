import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { FleetHandler } from './fleet-handler';
import { DynamoInventory } from './inventory';
import type { FleetProps } from '../../src/private/wire';
import type { IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse } from '../shared/framework';
import { createMicrovmsClient } from '../shared/microvms-client';

const dynamo = new DynamoDBClient({});
const handler = new FleetHandler(createMicrovmsClient(), (table) => new DynamoInventory(dynamo, table), {
  // RunMicrovm is retried by the Launcher itself, always with the same clientToken, so that calls
  // per instance stay countable (the SDK's own retries would multiply them).
  runClient: new LambdaMicrovmsClient({ maxAttempts: 1 }),
  secrets: new SecretsManagerClient({}),
});

export const onEvent = (event: OnEventRequest<FleetProps>): Promise<OnEventResponse> => handler.onEvent(event);
export const isComplete = (event: IsCompleteRequest<FleetProps>): Promise<IsCompleteResponse> => handler.isComplete(event);
