#!/usr/bin/env node
/**
 * The example CDK app. Deploy it against AWS (`npx cdk deploy` in this directory) or locally,
 * with no AWS account, through `npm run demo` (see local/README.md).
 *
 * Context:
 * - `imageDirectory`: the image's Dockerfile directory (default: ./image next to this file);
 *   the demo points it at a copy whose code it changes between deploys.
 * - `stackName`: default `MicroVmsExample`.
 */
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { ExampleStack } from './stack';

const app = new App();
const imageDirectory = app.node.tryGetContext('imageDirectory') ?? path.join(__dirname, 'image');
const stackName = app.node.tryGetContext('stackName') ?? 'MicroVmsExample';
new ExampleStack(app, stackName, {
  imageDirectory: path.resolve(imageDirectory),
  description: 'cdk-lambda-microvms example app',
});
app.synth();
