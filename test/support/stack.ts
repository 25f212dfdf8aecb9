import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';

/** The fixture image directory: a Dockerfile and a tiny server. */
export const HELLO_IMAGE_DIR = path.join(__dirname, '..', 'fixtures', 'hello-image');

/** A fresh app and stack with a fixed environment, so ARNs render predictably. */
export function newStack(id = 'TestStack'): { app: App; stack: Stack } {
  const app = new App();
  const stack = new Stack(app, id, { env: { account: '123456789012', region: 'us-east-1' } });
  return { app, stack };
}
