import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { MicroVmCode, MicroVmFleet, MicroVmImage, MicroVmImageVersion, NetworkConnector } from '../src';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';

/**
 * The numbers of README "Resources per stack and IAM", measured on synthesized templates: the
 * resources a stack gets from the library once (fixed) and from each construct, by the difference
 * between a stack with one and with two of it. Prints them (`npx jest test/resource-counts.test.ts`)
 * and pins them, so the README cannot drift from the templates.
 */
type Build = (stack: Stack) => void;

function count(build: Build): number {
  const { stack } = newStack();
  build(stack);
  return Object.values(Template.fromStack(stack).toJSON().Resources as Record<string, any>)
    .filter((r) => r.Type !== 'AWS::CDK::Metadata').length;
}

function functionCount(build: Build): number {
  const { stack } = newStack();
  build(stack);
  return Object.keys(Template.fromStack(stack).findResources('AWS::Lambda::Function')).length;
}

/** One MicroVmCode per stack (a code asset belongs to one stack). */
const image = (stack: Stack, id = 'Image') => new MicroVmImage(stack, id, { code: codeOf(stack) });
const codes = new WeakMap<Stack, MicroVmCode>();
function codeOf(stack: Stack): MicroVmCode {
  if (!codes.has(stack)) codes.set(stack, MicroVmCode.fromAsset(HELLO_IMAGE_DIR));
  return codes.get(stack)!;
}
/** An imported VPC: adds no resource, so the connectors' own are counted. */
const vpc = (stack: Stack) => ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
  vpcId: 'vpc-0123456789abcdef0', availabilityZones: ['us-east-1a'], privateSubnetIds: ['subnet-0123456789abcdef0'],
});
const images = (n: number): Build => (stack) => { for (let i = 0; i < n; i++) image(stack, `Image${i}`); };
const versions = (n: number): Build => (stack) => {
  const img = image(stack);
  for (let i = 0; i < n; i++) new MicroVmImageVersion(stack, `Version${i}`, { image: img, imageVersion: `${i}.0` });
};
const connectors = (n: number): Build => (stack) => {
  image(stack);
  const v = vpc(stack);
  for (let i = 0; i < n; i++) new NetworkConnector(stack, `Connector${i}`, { vpc: v });
};
const fleets = (n: number, selfHealing: boolean): Build => (stack) => {
  const img = image(stack);
  for (let i = 0; i < n; i++) new MicroVmFleet(stack, `Fleet${i}`, { image: img, desiredCount: 1, selfHealing });
};
const allFour: Build = (stack) => {
  const img = image(stack);
  new MicroVmImageVersion(stack, 'Version', { image: img, imageVersion: '1.0' });
  new NetworkConnector(stack, 'Connector', { vpc: vpc(stack) });
  new MicroVmFleet(stack, 'Fleet', { image: img, desiredCount: 1 });
};

/** The README's TypeScript quick start: one image and a role that may run it. */
const quickStart: Build = (stack) => {
  const img = image(stack);
  img.grantRun(new iam.Role(stack, 'Launcher', { assumedBy: new iam.AccountRootPrincipal() }));
};

test('resources per stack and per construct (README "Resources per stack and IAM")', () => {
  const perImage = count(images(2)) - count(images(1));
  const fixed = count(images(1)) - perImage;
  const perVersion = count(versions(2)) - count(versions(1));
  const perConnector = count(connectors(2)) - count(connectors(1));
  const perFleet = count(fleets(2, false)) - count(fleets(1, false));
  const perSelfHealingFleet = count(fleets(2, true)) - count(fleets(1, true));
  const fixedWithFleet = count(fleets(1, false)) - count(images(1)) - perFleet;
  const fixedWithSelfHealing = count(fleets(1, true)) - count(fleets(1, false)) - (perSelfHealingFleet - perFleet);
  const numbers = {
    quickStart: count(quickStart),
    fixed,
    fixedWithFleet,
    fixedWithSelfHealing,
    perImage,
    perVersion,
    perConnector,
    perFleet,
    perSelfHealingFleet,
    perPair: perImage + perSelfHealingFleet,
    libraryFunctionsAllFour: functionCount(allFour),
  };
  // eslint-disable-next-line no-console
  console.log(`resources: ${JSON.stringify(numbers, undefined, 1)}`);
  expect(numbers).toEqual({
    quickStart: 25,
    fixed: 18,
    fixedWithFleet: 1,
    // Issue 12: 7 before (the reconciler's own function, log group, role and policy; its async
    // invoke settings, the scheduler's role and policy), now the last three: the runs are served
    // by the provider's onEvent function.
    fixedWithSelfHealing: 3,
    perImage: 5,
    perVersion: 2,
    perConnector: 5,
    perFleet: 2,
    perSelfHealingFleet: 3,
    perPair: 8,
    // Issue 12: at most 5 (6 before, with the reconciler's own function).
    libraryFunctionsAllFour: 5,
  });
});
