/**
 * The example app (example/) synthesizes with every construct of the library, and the local
 * endpoint context option changes nothing in its template but the two endpoint variables of our
 * provider functions. (Synth only; local-deploy.test.ts deploys it.)
 */
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ExampleStack } from '../../example/stack';

const LOCAL = 'http://127.0.0.1:4599';
const ENDPOINT_VARS = ['AWS_ENDPOINT_URL_LAMBDA_MICROVMS', 'AWS_ENDPOINT_URL_LAMBDA_CORE'];

function synth(context: Record<string, string> = {}): any {
  const app = new App({ context });
  const stack = new ExampleStack(app, 'Example', { imageDirectory: path.join(__dirname, '..', '..', 'example', 'image') });
  return Template.fromStack(stack).toJSON();
}

function functionsWithVariables(template: any): Array<[string, Record<string, string>]> {
  return Object.entries<any>(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
    .map(([id, r]) => [id, r.Properties.Environment?.Variables ?? {}]);
}

describe('example app', () => {
  test('uses every construct: image, pinned version, VPC with a network connector, fleet of 3', () => {
    const template = Template.fromJSON(synth());
    template.resourceCountIs('Custom::LambdaMicroVmImage', 1);
    template.resourceCountIs('Custom::LambdaMicroVmImageVersion', 1);
    template.resourceCountIs('Custom::LambdaNetworkConnector', 1);
    template.resourceCountIs('Custom::LambdaMicroVmFleet', 1);
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::EC2::Subnet', 2);
    template.hasResourceProperties('Custom::LambdaMicroVmFleet', { DesiredCount: '3', UpdatePolicy: 'ROLLING', BatchSize: '1' });
    // No resource type ministack 1.5.33 cannot provision (local/README.md, item 3).
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::EIP', 0);
  });

  test('without the local endpoint option no function gets an endpoint variable', () => {
    for (const [id, vars] of functionsWithVariables(synth())) {
      for (const v of ENDPOINT_VARS) expect([id, v, vars[v]]).toEqual([id, v, undefined]);
    }
  });

  test('the local endpoint option adds the two variables to our 2 functions that call the service and changes nothing else', () => {
    const real = synth();
    const local = synth({ 'cdk-lambda-microvms:localEndpoint': LOCAL });
    const changed = functionsWithVariables(local).filter(([, vars]) => ENDPOINT_VARS.some((v) => v in vars));
    // onEvent (which also runs the fleet reconciler, issue 12) and isComplete of the stack's one provider.
    expect(changed.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'cdklambdamicrovmsProviderIsComplete', 'cdklambdamicrovmsProviderOnEvent',
    ]);
    for (const [, vars] of changed) {
      expect(vars.AWS_ENDPOINT_URL_LAMBDA_MICROVMS).toBe(LOCAL);
      expect(vars.AWS_ENDPOINT_URL_LAMBDA_CORE).toBe(LOCAL);
    }
    // Remove the two variables: the rest of the template is identical.
    for (const [id] of changed) {
      for (const v of ENDPOINT_VARS) delete local.Resources[id].Properties.Environment.Variables[v];
    }
    expect(local).toEqual(real);
  });
});
