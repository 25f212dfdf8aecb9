import * as path from 'node:path';
import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { MicroVmCode, MicroVmFleet, MicroVmImage } from 'cdk-lambda-microvms';

export interface SandboxStackProps extends StackProps {
  /** Sandboxes kept warm. */
  readonly sandboxes: number;
}

/** A user's stack: an image of the sandbox app (app/) and a fleet of sandboxes. */
export class SandboxStack extends Stack {
  constructor(scope: Construct, id: string, props: SandboxStackProps) {
    super(scope, id, props);
    const image = new MicroVmImage(this, 'Image', {
      code: MicroVmCode.fromAsset(path.join(__dirname, '..', 'app')),
      hooks: { port: 8080, run: {} },
    });
    new MicroVmFleet(this, 'Sandboxes', {
      image,
      desiredCount: props.sandboxes,
      runHookPayload: 'session-from-the-stack',
    });
  }
}
