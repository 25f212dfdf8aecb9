import { NetworkConnectorHandler } from './network-connector-handler';
import type { NetworkConnectorProps } from '../../src/private/wire';
import type { IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse } from '../shared/framework';
import { LambdaCoreClient } from '../shared/lambda-core-client';

const handler = new NetworkConnectorHandler(new LambdaCoreClient());

export const onEvent = (event: OnEventRequest<NetworkConnectorProps>): Promise<OnEventResponse> => handler.onEvent(event);
export const isComplete = (event: IsCompleteRequest<NetworkConnectorProps>): Promise<IsCompleteResponse> => handler.isComplete(event);
