/**
 * The app of test/e2e/canary.test.ts: an image with a canary in its environment, a fleet with the
 * canary in an inline /run payload, and a fleet whose payload is a Secrets Manager secret holding
 * the canary (created outside the stack; only its ARN is in the template).
 */
import { App, Stack } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { MicroVmCode, MicroVmFleet, MicroVmImage } from '../../src';

const app = new App();
const ctx = (key: string): string => {
  const v = app.node.tryGetContext(key);
  if (typeof v !== 'string' || v === '') throw new Error(`canary-app: pass -c ${key}=...`);
  return v;
};
const stack = new Stack(app, ctx('stackName'));
const canary = ctx('canary');
const image = new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(ctx('imageDirectory')), environment: { CANARY_ENV: `env-${canary}` } });
new MicroVmFleet(stack, 'Inline', { image, desiredCount: 1, runHookPayload: `inline-${canary}` });
new MicroVmFleet(stack, 'FromSecret', {
  image,
  desiredCount: 1,
  runHookPayloadSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Payload', ctx('secretArn')),
});
