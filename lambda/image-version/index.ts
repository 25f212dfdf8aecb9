import { ImageVersionHandler } from './image-version-handler';
import type { ImageVersionProps } from '../../src/private/wire';
import type { IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse } from '../shared/framework';
import { createMicrovmsClient } from '../shared/microvms-client';

const handler = new ImageVersionHandler(createMicrovmsClient());

export const onEvent = (event: OnEventRequest<ImageVersionProps>): Promise<OnEventResponse> => handler.onEvent(event);
export const isComplete = (event: IsCompleteRequest<ImageVersionProps>): Promise<IsCompleteResponse> => handler.isComplete(event);
