/**
 * The one provider's dispatch: every resource type of the stack goes through the same onEvent
 * and isComplete functions. For each request the handler is built with clients signed by the
 * resource's own handler role (its `HandlerRoleArn` property, stripped before the handler sees
 * the event), in a session named after the request.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { RECONCILER_INVOCATION } from '../../src/private/reconciler-wire';
import { HANDLER_ROLE_ARN, ResourceType } from '../../src/private/wire';
import { FleetHandler } from '../fleet/fleet-handler';
import { DynamoInventory } from '../fleet/inventory';
import { ImageHandler } from '../image/image-handler';
import { ImageVersionHandler } from '../image-version/image-version-handler';
import { NetworkConnectorHandler } from '../network-connector/network-connector-handler';
import type { Clock } from '../shared/clock';
import { sessionName, withPreviousRole } from '../shared/credentials';
import type { IsCompleteRequest, OnEventRequest, ResourceHandler } from '../shared/framework';
import { LambdaCoreClient } from '../shared/lambda-core-client';
import { readingStaged, s3Reader } from '../shared/staged';

/** Builds one request's clients from the credentials of a handler role session. */
export interface ClientFactory {
  /** MicroVMs, with the SDK's retries (8 attempts). */
  microvms(credentials: AwsCredentialIdentityProvider): LambdaMicrovmsClient;
  /** MicroVMs for RunMicrovm: one attempt, the launcher retries with the same clientToken. */
  microvmsRun(credentials: AwsCredentialIdentityProvider): LambdaMicrovmsClient;
  lambdaCore(credentials: AwsCredentialIdentityProvider): LambdaCoreClient;
  dynamo(credentials: AwsCredentialIdentityProvider): DynamoDBClient;
  secrets(credentials: AwsCredentialIdentityProvider): SecretsManagerClient;
  /** S3, for the values a resource staged as an asset object (lambda/shared/staged.ts). */
  s3(credentials: AwsCredentialIdentityProvider): S3Client;
}

/** The clients of the real functions: endpoints and Region from the environment. */
export const defaultClients: ClientFactory = {
  microvms: (credentials) => new LambdaMicrovmsClient({ credentials, maxAttempts: 8 }),
  microvmsRun: (credentials) => new LambdaMicrovmsClient({ credentials, maxAttempts: 1 }),
  lambdaCore: (credentials) => new LambdaCoreClient({ credentials }),
  dynamo: (credentials) => new DynamoDBClient({ credentials }),
  secrets: (credentials) => new SecretsManagerClient({ credentials }),
  s3: (credentials) => new S3Client({ credentials }),
};

/** Gives the credentials of a role, in a session of the given name. */
export type AssumeRole = (roleArn: string, sessionName: string) => AwsCredentialIdentityProvider;

export interface DispatchOptions {
  readonly assumeRole: AssumeRole;
  readonly clients?: ClientFactory;
  /** The clock handlers measure deadlines on and wait with. @default systemClock */
  readonly clock?: Clock;
}

type AnyRequest = OnEventRequest & Partial<IsCompleteRequest>;

/** The role ARN a resource's properties carry; a resource without one predates this provider. */
function roleOf(props: Record<string, unknown> | undefined): string | undefined {
  const arn = props?.[HANDLER_ROLE_ARN];
  return typeof arn === 'string' && arn !== '' ? arn : undefined;
}

/** The event as the handlers know it: without the handler role property. */
export function withoutHandlerRole<E extends AnyRequest>(event: E): E {
  const strip = (p?: Record<string, unknown>) => {
    if (!p || !(HANDLER_ROLE_ARN in p)) return p;
    const { [HANDLER_ROLE_ARN]: _, ...rest } = p;
    return rest;
  };
  return { ...event, ResourceProperties: strip(event.ResourceProperties), OldResourceProperties: strip(event.OldResourceProperties) };
}

/**
 * The handler for `event`'s resource type, with clients signed by the resource's own role. It reads
 * the values the resource staged as an asset object before the handler sees the event: the new
 * properties' with the role's session, the old properties' with the previous role's (the one that
 * may read them: a staged object's hash is part of its role's path).
 */
export function handlerFor(event: AnyRequest, options: DispatchOptions): ResourceHandler<any> {
  if (typeof event.RequestType !== 'string') {
    // The provider's onEvent function also serves scheduled reconciler runs (lambda/provider/index.ts):
    // name the fields only, never their values.
    throw new Error(`an event with neither a RequestType (a Provider framework request) nor Invocation ${JSON.stringify(RECONCILER_INVOCATION)} `
      + `(a fleet reconciler run), with fields ${Object.keys(event).join(', ')}: this function serves only those two`);
  }
  const role = roleOf(event.ResourceProperties);
  if (!role) {
    throw new Error(`${event.LogicalResourceId} (${event.ResourceType}) carries no ${HANDLER_ROLE_ARN}: it was deployed by a version of `
      + 'cdk-lambda-microvms before the one provider per stack, which is not migrated; remove the resource from the stack, deploy, then add it back');
  }
  const clients = options.clients ?? defaultClients;
  const session = sessionName(event.RequestId);
  const credentials = options.assumeRole(role, session);
  const previousRole = roleOf(event.OldResourceProperties);
  const previous = previousRole && previousRole !== role ? options.assumeRole(previousRole, session) : undefined;
  const read = s3Reader(clients.s3(credentials), options.clock);
  const readOld = previous ? s3Reader(clients.s3(previous), options.clock) : read;
  return readingStaged(resourceHandlerFor(event, clients, credentials, previous, options.clock), read, readOld);
}

/** The resource type's handler, its calls signed by the resource's role (and its previous role, where IAM refuses). */
function resourceHandlerFor(event: AnyRequest, clients: ClientFactory, credentials: AwsCredentialIdentityProvider,
  previous: AwsCredentialIdentityProvider | undefined, clock: Clock | undefined): ResourceHandler<any> {
  const microvms = (make: (c: AwsCredentialIdentityProvider) => LambdaMicrovmsClient) =>
    withPreviousRole(make(credentials), previous ? make(previous) : undefined);
  switch (event.ResourceType) {
    case ResourceType.IMAGE:
      return new ImageHandler(microvms(clients.microvms), { clock });
    case ResourceType.IMAGE_VERSION:
      return new ImageVersionHandler(microvms(clients.microvms), { clock });
    case ResourceType.NETWORK_CONNECTOR:
      return new NetworkConnectorHandler(clients.lambdaCore(credentials), { clock });
    case ResourceType.FLEET: {
      const dynamo = clients.dynamo(credentials);
      return new FleetHandler(microvms(clients.microvms), (table) => new DynamoInventory(dynamo, table), {
        runClient: microvms(clients.microvmsRun),
        secrets: clients.secrets(credentials),
        clock,
      });
    }
    default:
      throw new Error(`unknown resource type ${JSON.stringify(event.ResourceType)}: this provider serves ${Object.values(ResourceType).join(', ')}`);
  }
}
