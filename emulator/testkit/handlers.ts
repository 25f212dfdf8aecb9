/**
 * The provider handlers of this library, built as the deployed Lambda functions build them
 * (lambda/<resource>/index.ts), except that every client talks to the emulator and time is the
 * emulator's clock.
 */
import { LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { MicrovmResourceType } from './template';
import { FleetHandler } from '../../lambda/fleet/fleet-handler';
import { Inventory, MemoryInventory } from '../../lambda/fleet/inventory';
import { ImageHandler } from '../../lambda/image/image-handler';
import { ImageVersionHandler } from '../../lambda/image-version/image-version-handler';
import { NetworkConnectorHandler } from '../../lambda/network-connector/network-connector-handler';
import type { Clock } from '../../lambda/shared/clock';
import { LambdaCoreClient } from '../../lambda/shared/lambda-core-client';
import type { Handler } from '../../test/support/lifecycle-driver';

export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

export interface HandlerSet {
  readonly handlers: Record<MicrovmResourceType, Handler>;
  /** The fleets' inventories by table name (the DynamoDB table a fleet owns, in memory here). */
  readonly inventories: Map<string, MemoryInventory>;
}

/**
 * `secrets` answers GetSecretValue for a fleet's `runHookPayloadSecret` (by secret ARN, as the
 * template resolves it): the only other AWS service a handler reads.
 */
export function createHandlers(endpoint: string, region: string, clock: Clock, secrets: (arn: string) => string | undefined): HandlerSet {
  const client = new LambdaMicrovmsClient({ endpoint, region, credentials: CREDENTIALS, maxAttempts: 8 });
  const runClient = new LambdaMicrovmsClient({ endpoint, region, credentials: CREDENTIALS, maxAttempts: 1 });
  const inventories = new Map<string, MemoryInventory>();
  const inventoryFor = (table: string): Inventory => {
    let inv = inventories.get(table);
    if (!inv) inventories.set(table, (inv = new MemoryInventory()));
    return inv;
  };
  const secretsClient = {
    send: async (cmd: GetSecretValueCommand) => {
      const id = cmd.input.SecretId ?? '';
      const value = secrets(id);
      if (value === undefined) {
        const e = new Error(`Secrets Manager can't find the specified secret: ${id} (pass its value in the testbed's \`secrets\` option)`);
        e.name = 'ResourceNotFoundException';
        throw e;
      }
      return { ARN: id, SecretString: value };
    },
  } as unknown as SecretsManagerClient;
  const core = new LambdaCoreClient({ endpoint, region, credentials: CREDENTIALS, clock });
  return {
    inventories,
    handlers: {
      'Custom::LambdaMicroVmImage': new ImageHandler(client, { clock }),
      'Custom::LambdaMicroVmImageVersion': new ImageVersionHandler(client, { clock }),
      'Custom::LambdaNetworkConnector': new NetworkConnectorHandler(core, { clock }),
      'Custom::LambdaMicroVmFleet': new FleetHandler(client, inventoryFor, { clock, runClient, secrets: secretsClient }),
    },
  };
}
