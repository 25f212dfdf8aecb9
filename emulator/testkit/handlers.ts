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
import { readingStaged } from '../../lambda/shared/staged';
import type { Handler } from '../../test/support/lifecycle-driver';

export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

export interface HandlerSet {
  readonly handlers: Record<MicrovmResourceType, Handler>;
  /** The fleets' inventories by table name (the DynamoDB table a fleet owns, in memory here). */
  readonly inventories: Map<string, MemoryInventory>;
}

/**
 * `secrets` answers GetSecretValue for a fleet's `runHookPayloadSecret` (by secret ARN, as the
 * template resolves it), `staged` the S3 objects of the values a construct staged as an asset (an
 * image's literal environment, a fleet's literal payload; by S3 key): the other AWS services a
 * handler reads.
 */
export function createHandlers(
  endpoint: string, region: string, clock: Clock, secrets: (arn: string) => string | undefined, staged: (key: string) => string | undefined,
): HandlerSet {
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
  const read = async ({ Bucket, Key }: { Bucket: string; Key: string }) => {
    const text = staged(Key);
    if (text === undefined) {
      throw Object.assign(new Error(`s3://${Bucket}/${Key} is not an asset of the stack the testbed deployed (deploy the Stack, not its template, so the testbed reads its cloud assembly)`),
        { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    }
    return text;
  };
  const core = new LambdaCoreClient({ endpoint, region, credentials: CREDENTIALS, clock });
  return {
    inventories,
    handlers: {
      'Custom::LambdaMicroVmImage': readingStaged(new ImageHandler(client, { clock }), read),
      'Custom::LambdaMicroVmImageVersion': readingStaged(new ImageVersionHandler(client, { clock }), read),
      'Custom::LambdaNetworkConnector': readingStaged(new NetworkConnectorHandler(core, { clock }), read),
      'Custom::LambdaMicroVmFleet': readingStaged(new FleetHandler(client, inventoryFor, { clock, runClient, secrets: secretsClient }), read),
    },
  };
}
