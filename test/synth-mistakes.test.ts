import { App, CfnParameter, Duration, RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import {
  IMicroVmImage,
  ManagedNetworkConnector,
  MicroVmCode,
  MicroVmFleet,
  MicroVmImage,
  MicroVmImageProps,
  MicroVmImageVersion,
  MicroVmLogging,
  NetworkConnector,
} from '../src';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';

/**
 * Every mistake of issue 15 that used to pass synth: each message names the value, what is
 * allowed, and the fix.
 */
function image(stack: Stack, id = 'Image', props: Partial<MicroVmImageProps> = {}): MicroVmImage {
  return new MicroVmImage(stack, id, { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), ...props });
}

describe('fleets', () => {
  test('fails on a version that belongs to another image', () => {
    const { stack } = newStack();
    const a = image(stack, 'A');
    const b = image(stack, 'B');
    expect(() => new MicroVmFleet(stack, 'Fleet', { image: a, version: b.currentVersion, desiredCount: 1 }))
      .toThrow(/version: the version TestStack\/B\/CurrentVersion belongs to image TestStack\/B, not to the fleet's image TestStack\/A: pass a version of the fleet's image/);
  });

  test('fails on a version of an imported image with another ARN', () => {
    const { stack } = newStack();
    const a = MicroVmImage.fromImageName(stack, 'A', 'first');
    const b = MicroVmImage.fromImageName(stack, 'B', 'second');
    const version = MicroVmImageVersion.fromVersionAttributes(stack, 'V', { image: b, imageVersion: '2.0' });
    expect(() => new MicroVmFleet(stack, 'Fleet', { image: a, version, desiredCount: 1 })).toThrow(/belongs to image TestStack\/B, not to the fleet's image TestStack\/A/);
  });

  test('accepts a version of the same image imported twice by ARN', () => {
    const { stack } = newStack();
    const arn = 'arn:aws:lambda:us-east-1:123456789012:microvm-image:same';
    const version = MicroVmImageVersion.fromVersionAttributes(stack, 'V', { image: MicroVmImage.fromImageArn(stack, 'B', arn), imageVersion: '2.0' });
    expect(() => new MicroVmFleet(stack, 'Fleet', { image: MicroVmImage.fromImageArn(stack, 'A', arn), version, desiredCount: 1 })).not.toThrow();
  });

  test('fails on an ingress connector in egressConnectors, as a reference or a literal ARN', () => {
    const { stack } = newStack();
    const img = image(stack);
    const ref = ManagedNetworkConnector.ALL_INGRESS.refIn(stack);
    expect(() => new MicroVmFleet(stack, 'F1', { image: img, desiredCount: 1, egressConnectors: [ref] }))
      .toThrow(/egressConnectors: ALL_INGRESS is an INGRESS connector: pass it in the fleet's `ingress` \(as ManagedNetworkConnector.ALL_INGRESS\)/);
    const literal = lambda.NetworkConnector.fromNetworkConnectorArn(stack, 'Shell',
      'arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:SHELL_INGRESS');
    expect(() => new MicroVmFleet(stack, 'F2', { image: img, desiredCount: 1, egressConnectors: [literal] }))
      .toThrow(/egressConnectors: SHELL_INGRESS is an INGRESS connector/);
  });

  test('fails on an ingress connector in an image\'s egressConnectors', () => {
    const { stack } = newStack();
    expect(() => image(stack, 'Image', { egressConnectors: [ManagedNetworkConnector.NO_INGRESS.refIn(stack)] }))
      .toThrow(/egressConnectors: NO_INGRESS is an INGRESS connector/);
  });

  test('fails on an egress connector in ingress', () => {
    const { stack } = newStack();
    expect(() => new MicroVmFleet(stack, 'Fleet', { image: image(stack), desiredCount: 1, ingress: [ManagedNetworkConnector.INTERNET_EGRESS] }))
      .toThrow(/ingress: INTERNET_EGRESS is an EGRESS connector: pass it in egressConnectors/);
  });

  test('fails on NO_INGRESS together with another ingress connector', () => {
    const { stack } = newStack();
    expect(() => new MicroVmFleet(stack, 'Fleet', {
      image: image(stack), desiredCount: 1, ingress: [ManagedNetworkConnector.NO_INGRESS, ManagedNetworkConnector.SHELL_INGRESS],
    })).toThrow(/ingress: NO_INGRESS shuts every way in, so it cannot go with other ingress connectors, got \[NO_INGRESS, SHELL_INGRESS\]: pass NO_INGRESS alone/);
  });

  test('fails on RemovalPolicy.SNAPSHOT', () => {
    const { stack } = newStack();
    expect(() => new MicroVmFleet(stack, 'Fleet', { image: image(stack), desiredCount: 1, removalPolicy: RemovalPolicy.SNAPSHOT }))
      .toThrow(/removalPolicy must be RemovalPolicy.DESTROY, RETAIN or RETAIN_ON_UPDATE_OR_DELETE, got snapshot: a MicroVM fleet has no snapshot/);
  });

  test('fails on a maximumDuration of 500 ms, naming the property', () => {
    const { stack } = newStack();
    expect(() => new MicroVmFleet(stack, 'Fleet', { image: image(stack), desiredCount: 1, maximumDuration: Duration.millis(500) }))
      .toThrow(/maximumDuration must be a whole number of seconds from 1 to 28800, got 500 millis \(0.5 seconds\)/);
  });

  test('instanceIds of a token desiredCount gives the construct\'s message, not Fn.split\'s', () => {
    const { stack } = newStack();
    const count = new CfnParameter(stack, 'Count', { type: 'Number' }).valueAsNumber;
    const fleet = new MicroVmFleet(stack, 'Fleet', { image: image(stack), desiredCount: count });
    expect(() => fleet.instanceIds).toThrow(/instanceIds: MicroVmFleet TestStack\/Fleet has a desiredCount that is only known at deploy time \(a token\).*read the inventory table instead/);
    expect(() => fleet.instanceEndpoints).toThrow(/instanceEndpoints: .*only known at deploy time/);
  });

  test('instanceIds of a fleet of 0 is an empty list', () => {
    const { stack } = newStack();
    const fleet = new MicroVmFleet(stack, 'Fleet', { image: image(stack), desiredCount: 0 });
    expect(fleet.instanceIds).toEqual([]);
    expect(fleet.instanceEndpoints).toEqual([]);
  });

  test('grantShell on an imported fleet names the prop the import takes', () => {
    const { stack } = newStack();
    const fleet = MicroVmFleet.fromFleetAttributes(stack, 'Fleet', {
      fleetId: 'fleet-1',
      image: MicroVmImage.fromImageName(stack, 'Image', 'batch'),
      inventoryTable: dynamodb.Table.fromTableName(stack, 'T', 'inventory'),
    });
    const role = new iam.Role(stack, 'R', { assumedBy: new iam.AccountRootPrincipal() });
    expect(() => fleet.grantShell(role)).toThrow(/does not have SHELL_INGRESS.*pass `shellIngress: true` to MicroVmFleet.fromFleetAttributes/);
  });
});

describe('images', () => {
  test('fails on a tag key starting with aws:', () => {
    const { stack } = newStack();
    expect(() => image(stack, 'Image', { tags: { 'aws:team': 'x' } }))
      .toThrow(/tags key 'aws:team' starts with 'aws:', a prefix reserved for tags AWS sets: rename the key/);
  });

  test('fails on more than 50 tags', () => {
    const { stack } = newStack();
    const tags = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
    expect(() => image(stack, 'Image', { tags })).toThrow(/tags takes at most 50 item\(s\), got 51: a Lambda resource takes at most 50 tags/);
  });

  test('fails on a tag key over 128 or a value over 256 characters', () => {
    const { stack } = newStack();
    expect(() => image(stack, 'A', { tags: { ['k'.repeat(129)]: 'v' } })).toThrow(/tags key must be 1 to 128 characters.*\(129 characters\): shorten the key/);
    expect(() => image(stack, 'B', { tags: { team: 'v'.repeat(257) } })).toThrow(/tags 'team' value must be 0 to 256 characters.*\(257 characters\): shorten the value/);
  });

  test('fails at synth on an aws: tag added with Tags.of()', () => {
    const { app, stack } = newStack();
    image(stack);
    Tags.of(stack).add('aws:owner', 'me');
    expect(() => app.synth()).toThrow(/tags of TestStack\/Image key 'aws:owner' starts with 'aws:'/);
  });

  test('fails on a log stream name with : or *', () => {
    expect(() => MicroVmLogging.cloudWatch(undefined, 'app:1'))
      .toThrow(/MicroVmLogging.cloudWatch logStream must be 1 to 512 characters matching .*got 'app:1'.*cannot contain ':' or '\*'/);
    expect(() => MicroVmLogging.cloudWatch(undefined, 'app*')).toThrow(/got 'app\*'/);
  });

  test('fails on RemovalPolicy.SNAPSHOT', () => {
    const { stack } = newStack();
    expect(() => image(stack, 'Image', { removalPolicy: RemovalPolicy.SNAPSHOT })).toThrow(/removalPolicy must be RemovalPolicy.DESTROY, RETAIN or RETAIN_ON_UPDATE_OR_DELETE, got snapshot: a MicroVM image has no snapshot/);
  });

  test('fails on a hook timeout of 500 ms, naming the property', () => {
    const { stack } = newStack();
    expect(() => image(stack, 'A', { hooks: { port: 9000, ready: { timeout: Duration.millis(500) } } }))
      .toThrow(/hooks.ready.timeout must be a whole number of seconds from 1 to 3600, got 500 millis \(0.5 seconds\)/);
    expect(() => image(stack, 'B', { hooks: { port: 9000, ready: {}, run: { timeout: Duration.millis(500) } } }))
      .toThrow(/hooks.run.timeout must be a whole number of seconds from 1 to 60, got 500 millis/);
  });

  test('fails on an environment key reserved for the AWS runtime', () => {
    const { stack } = newStack();
    expect(() => image(stack, 'A', { environment: { AWS_REGION: 'eu-west-1' } }))
      .toThrow(/environment variable name 'AWS_REGION' starts with AWS_, a prefix reserved for the AWS runtime .*rename it, e.g. APP_REGION/);
    const img = image(stack, 'B');
    expect(() => img.addEnvironment('AWS_ACCESS_KEY_ID', 'x')).toThrow(/'AWS_ACCESS_KEY_ID' starts with AWS_/);
  });

  test('fromImageName fails on an invalid name', () => {
    const { stack } = newStack();
    expect(() => MicroVmImage.fromImageName(stack, 'I', 'my image'))
      .toThrow(/MicroVmImage import I: imageName must be 1 to 64 characters matching .*got 'my image'.*use fromImageArn for ARNs/);
  });

  test('fromImageArn fails on an ARN that is not a MicroVM image (a function ARN)', () => {
    const { stack } = newStack();
    expect(() => MicroVmImage.fromImageArn(stack, 'I', 'arn:aws:lambda:us-east-1:123456789012:function:foo'))
      .toThrow(/imageArn must be an unqualified MicroVM image ARN like arn:aws:lambda:us-east-1:123456789012:microvm-image:my-image, got 'arn:aws:lambda:us-east-1:123456789012:function:foo'/);
    expect(() => MicroVmImage.fromImageArn(stack, 'J', 'arn:aws:lambda:us-east-1:123456789012:microvm-image:app:2.0'))
      .toThrow(/drop any :<version> suffix/);
  });

  test('fromImageArn fails on an image in another Region or account', () => {
    const { stack } = newStack();
    expect(() => MicroVmImage.fromImageArn(stack, 'I', 'arn:aws:lambda:eu-west-1:123456789012:microvm-image:app'))
      .toThrow(/MicroVmImage import I: the image is in Region eu-west-1, the stack in us-east-1: .*define the stack in the image's Region and account/);
    expect(() => MicroVmImage.fromImageArn(stack, 'J', 'arn:aws:lambda:us-east-1:210987654321:microvm-image:app'))
      .toThrow(/the image is in account 210987654321, the stack in 123456789012/);
  });

  test('an environment-agnostic stack imports an ARN of any Region (unresolved: not checked)', () => {
    const stack = new Stack(new App(), 'Agnostic');
    const img = MicroVmImage.fromImageArn(stack, 'I', 'arn:aws:lambda:eu-west-1:123456789012:microvm-image:app');
    expect(img.imageName).toBe('app');
  });

  test('an L1 CfnMicrovmImage passed as an image points at fromImageArn (as Python allows)', () => {
    const { stack } = newStack();
    const cfn = new lambda.CfnMicrovmImage(stack, 'L1', {
      name: 'l1',
      additionalOsCapabilities: [],
      baseImageArn: 'arn',
      baseImageVersion: '1',
      buildRoleArn: 'role',
      codeArtifact: { uri: 's3://b/k.zip' },
      cpuConfigurations: [],
      description: '',
      egressNetworkConnectors: [],
      environmentVariables: [],
      hooks: {},
      logging: {},
      resources: [],
    });
    const asImage = cfn as unknown as IMicroVmImage;
    expect(() => new MicroVmFleet(stack, 'Fleet', { image: asImage, desiredCount: 1 }))
      .toThrow(/MicroVmFleet image: got the L1 CfnMicrovmImage TestStack\/L1, which is not an IMicroVmImage: import it with MicroVmImage.fromImageArn\(scope, 'Image', cfnImage.attrImageArn\)/);
    expect(() => new MicroVmImageVersion(stack, 'V', { image: asImage, imageVersion: '1.0' })).toThrow(/got the L1 CfnMicrovmImage/);
    expect(() => MicroVmImageVersion.fromVersionAttributes(stack, 'W', { image: asImage, imageVersion: '1.0' })).toThrow(/got the L1 CfnMicrovmImage/);
  });
});

describe('network connectors', () => {
  const vpcWithPublic = (stack: Stack) => new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC }, { name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
  });

  test('fails in public subnets unless allowPublicSubnet is set', () => {
    const { stack } = newStack();
    const vpc = vpcWithPublic(stack);
    expect(() => new NetworkConnector(stack, 'C', { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC } }))
      .toThrow(/vpcSubnets: NetworkConnector TestStack\/C would place network interfaces in public subnets \(.*\), .*select private subnets .*or set allowPublicSubnet: true/);
    expect(() => new NetworkConnector(stack, 'D', { vpc, vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC }, allowPublicSubnet: true })).not.toThrow();
    expect(() => new NetworkConnector(stack, 'E', { vpc })).not.toThrow();
  });

  test('fails on a tag key starting with aws: and on RemovalPolicy.SNAPSHOT', () => {
    const { stack } = newStack();
    const vpc = vpcWithPublic(stack);
    expect(() => new NetworkConnector(stack, 'C', { vpc, tags: { 'AWS:x': 'y' } })).toThrow(/tags key 'AWS:x' starts with 'aws:'/);
    expect(() => new NetworkConnector(stack, 'D', { vpc, removalPolicy: RemovalPolicy.SNAPSHOT })).toThrow(/got snapshot: a network connector has no snapshot/);
  });
});
