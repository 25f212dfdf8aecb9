import { Stack } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * The AWS-managed network connectors (account `aws`): default ingress and egress, which every
 * RunMicrovm passes even when it names none.
 */
export function managedConnectorsArn(scope: IConstruct): string {
  const stack = Stack.of(scope);
  return `arn:${stack.partition}:lambda:${stack.region}:aws:network-connector:aws-network-connector:*`;
}
