import { Stack, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Acknowledges cdk-nag's AwsSolutions-IAM5 findings for exactly these wildcard resources on
 * `scope`, with the reason each cannot be narrower. Acknowledgments are aws-cdk-lib's native
 * `Validations` metadata: the library does not depend on cdk-nag.
 */
export function acknowledgeWildcards(scope: IConstruct, reason: string, ...resources: string[]): void {
  const stack = Stack.of(scope);
  Validations.of(scope).acknowledge(...resources.map((r) => ({
    id: `AwsSolutions-IAM5[Resource::${flatten(stack.resolve(r))}]`,
    reason,
  })));
}

/** cdk-nag: ecr:GetAuthorizationToken on `*` is the one wildcard an ECR pull needs. */
export function acknowledgeEcrAuthorizationToken(role: IConstruct): void {
  acknowledgeWildcards(role, 'ecr:GetAuthorizationToken has no IAM resource type (the token is per registry), so only * matches it; the pull actions are scoped to the repository.', '*');
}

/** cdk-nag's rendering of a resolved policy value: Ref → <X>, GetAtt → <X.Y>, Join → concatenation. */
function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, any>;
  if (v.Ref) return `<${v.Ref}>`;
  if (v['Fn::GetAtt']) return `<${v['Fn::GetAtt'][0]}.${v['Fn::GetAtt'][1]}>`;
  if (v['Fn::Join']) return (v['Fn::Join'][1] as unknown[]).map(flatten).join(v['Fn::Join'][0]);
  return JSON.stringify(value);
}
