import { STSClient } from '@aws-sdk/client-sts';
import { handlerFor, withoutHandlerRole } from './dispatch';
import { RoleSessions } from '../shared/credentials';
import type { IsCompleteRequest, IsCompleteResponse, OnEventRequest, OnEventResponse } from '../shared/framework';

const sessions = new RoleSessions(new STSClient({}));
const options = { assumeRole: (role: string, name: string) => sessions.provider(role, name) };

export const onEvent = (event: OnEventRequest): Promise<OnEventResponse> =>
  handlerFor(event, options).onEvent(withoutHandlerRole(event));
export const isComplete = (event: IsCompleteRequest): Promise<IsCompleteResponse> =>
  handlerFor(event, options).isComplete(withoutHandlerRole(event));
