import * as iam from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';
import { ManagedNetworkConnector, NetworkConnectorDirection } from '../managed-connectors';

/**
 * Grants `actions` on a resource and its version-qualified ARNs (`<arn>:<version>`): images and
 * network connectors both have versions, and IAM does not say which form each action checks.
 */
export function grantOnResourceAndVersions(grantee: iam.IGrantable, actions: string[], arn: string): iam.Grant {
  return iam.Grant.addToPrincipal({ grantee, actions, resourceArns: [arn, `${arn}:*`] });
}

/**
 * The connectors a RunMicrovm passes, for lambda:PassNetworkConnector: the given ones, or for a
 * direction left empty the service's default (HTTP_INGRESS ingress, INTERNET_EGRESS egress, as
 * recorded on the live service). Never every AWS-managed connector: SHELL_INGRESS opens a shell.
 */
export function passedConnectorArns(scope: IConstruct, ingressArns: string[], egressArns: string[]): string[] {
  return [
    ...(ingressArns.length ? ingressArns : [ManagedNetworkConnector.of('HTTP_INGRESS', NetworkConnectorDirection.INGRESS).arnIn(scope)]),
    ...(egressArns.length ? egressArns : [ManagedNetworkConnector.INTERNET_EGRESS.arnIn(scope)]),
  ];
}
