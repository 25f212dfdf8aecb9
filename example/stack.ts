/**
 * The example app's stack: every construct of the library in one place.
 *
 * - a MicroVmImage built from the Dockerfile directory `image/` (a tiny Node.js HTTP server);
 * - a MicroVmImageVersion that pins the version this deploy built (it survives the image's
 *   version pruning, and the fleet launches from exactly it);
 * - a VPC (two isolated subnets, no NAT) with a NetworkConnector the image sends its egress
 *   through;
 * - a MicroVmFleet of 3 instances of that version, replaced in rolling batches on each update.
 *
 * Outside this repository, import from 'cdk-lambda-microvms' instead of '../src'.
 */
import { CfnOutput, Fn, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { FleetUpdatePolicy, MicroVmCode, MicroVmFleet, MicroVmImage, MicroVmImageVersion, NetworkConnector } from '../src';

export interface ExampleStackProps extends StackProps {
  /** The Dockerfile directory of the image. */
  readonly imageDirectory: string;
}

export class ExampleStack extends Stack {
  constructor(scope: Construct, id: string, props: ExampleStackProps) {
    super(scope, id, props);

    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    });
    const connector = new NetworkConnector(this, 'Connector', { vpc });

    const image = new MicroVmImage(this, 'Image', {
      code: MicroVmCode.fromAsset(props.imageDirectory),
      description: 'cdk-lambda-microvms example: a small HTTP server',
      egressConnectors: [connector],
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const version = new MicroVmImageVersion(this, 'Version', { image });

    const fleet = new MicroVmFleet(this, 'Fleet', {
      image,
      version,
      desiredCount: 3,
      egressConnectors: [connector],
      // One instance at a time: the other two keep serving while each is replaced.
      updatePolicy: FleetUpdatePolicy.rolling({ batchSize: 1 }),
    });

    new CfnOutput(this, 'ImageArn', { value: image.imageArn });
    new CfnOutput(this, 'ImageVersion', { value: version.imageVersion });
    new CfnOutput(this, 'NetworkConnectorArn', { value: connector.networkConnectorArn });
    new CfnOutput(this, 'FleetId', { value: fleet.fleetId });
    new CfnOutput(this, 'FleetImageVersion', { value: fleet.imageVersion });
    new CfnOutput(this, 'FleetInstanceIds', { value: Fn.join(',', fleet.instanceIds) });
    new CfnOutput(this, 'FleetEndpoints', { value: Fn.join(',', fleet.instanceEndpoints) });
  }
}
