import { STSClient } from '@aws-sdk/client-sts';
import { providerEntry } from './entry';
import { RoleSessions } from '../shared/credentials';

const sessions = new RoleSessions(new STSClient({}));

/** `index.onEvent` (CloudFormation's requests and the fleet reconciler's runs) and `index.isComplete`. */
export const { onEvent, isComplete } = providerEntry({ assumeRole: (role: string, name: string) => sessions.provider(role, name) });
