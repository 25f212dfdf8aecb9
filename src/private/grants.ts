import * as iam from 'aws-cdk-lib/aws-iam';

/**
 * Grants `actions` on a resource and its version-qualified ARNs (`<arn>:<version>`): images and
 * network connectors both have versions, and IAM does not say which form each action checks.
 */
export function grantOnResourceAndVersions(grantee: iam.IGrantable, actions: string[], arn: string): iam.Grant {
  return iam.Grant.addToPrincipal({ grantee, actions, resourceArns: [arn, `${arn}:*`] });
}
