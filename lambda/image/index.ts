import { ImageHandler } from './image-handler';
import type { ImageProps } from '../../src/private/wire';
import type { IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse } from '../shared/framework';
import { createMicrovmsClient } from '../shared/microvms-client';

const handler = new ImageHandler(createMicrovmsClient());

export const onEvent = (event: OnEventRequest<ImageProps>): Promise<OnEventResponse> => handler.onEvent(event);
export const isComplete = (event: IsCompleteRequest<ImageProps>): Promise<IsCompleteResponse> => handler.isComplete(event);
