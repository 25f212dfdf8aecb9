import { Stack } from 'aws-cdk-lib';

/**
 * Limits that CloudFormation and IAM enforce only at deploy time, often after resources (image
 * builds) were already made. The library checks them at synth on every stack that has its
 * provider (IAM quotas: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html;
 * CloudFormation quotas: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html).
 */
export const LIMITS = {
  /** The inline policies of one role together, in characters, whitespace not counted. */
  ROLE_INLINE_POLICY_CHARS: 10_240,
  /** One managed policy, in characters, whitespace not counted. */
  MANAGED_POLICY_CHARS: 6_144,
  /** Resources in one stack. */
  STACK_RESOURCES: 500,
  /** A template uploaded to S3 (1 MB), in bytes; counted conservatively as 1,000,000. */
  TEMPLATE_BYTES: 1_000_000,
} as const;

/**
 * What a reference resolves to on AWS, at its longest in practice: the estimate of a policy's size
 * uses these instead of the `{"Ref": …}` the template holds, so it is not too small.
 */
const RESOLVED_LENGTH: Record<string, number> = {
  'AWS::AccountId': 12,
  'AWS::Region': 14, // ap-southeast-2
  'AWS::Partition': 10, // aws-us-gov
  'AWS::URLSuffix': 16, // amazonaws.com.cn
  'AWS::StackName': 128,
};
/** A generated physical name (stack name + logical id + suffix), as CloudFormation makes them: at most 64 (roles) to 255 characters. */
const REF_LENGTH = 128;
/** An ARN of a resource with a generated name (e.g. a role with our path, a table). */
const ARN_LENGTH = 200;

/** One finding: which limit, the count, and the fix. */
export interface LimitViolation {
  readonly limit: string;
  readonly count: number;
  readonly max: number;
  readonly where: string;
  readonly fix: string;
}

/** Adds a validation to `stack` that fails synth when a template would exceed a limit above. */
export function checkStackLimits(stack: Stack): void {
  stack.node.addValidation({
    validate: () => findLimitViolations(stack).map((v) =>
      `${v.where}: ${v.limit} is ${v.count}, above the limit of ${v.max}: ${v.fix}`),
  });
}

/** The limits `stack`'s template exceeds (empty when it fits), with estimated resolved sizes. */
export function findLimitViolations(stack: Stack): LimitViolation[] {
  const template = stack.resolve((stack as any)._toCloudFormation()) as { Resources?: Record<string, any> };
  const resources = template.Resources ?? {};
  const violations: LimitViolation[] = [];
  const count = Object.keys(resources).length;
  if (count > LIMITS.STACK_RESOURCES) {
    violations.push({
      limit: 'the number of resources',
      count,
      max: LIMITS.STACK_RESOURCES,
      where: `stack ${stack.stackName}`,
      fix: 'split the stack: put some images and fleets in another stack (README: "Resources per stack")',
    });
  }
  const bytes = Buffer.byteLength(JSON.stringify(template));
  if (bytes > LIMITS.TEMPLATE_BYTES) {
    violations.push({
      limit: 'the template size in bytes',
      count: bytes,
      max: LIMITS.TEMPLATE_BYTES,
      where: `stack ${stack.stackName}`,
      fix: 'split the stack, or move large property values (environment variables, payloads) out of the template',
    });
  }
  for (const [id, size] of inlinePolicySizes(resources)) {
    if (size > LIMITS.ROLE_INLINE_POLICY_CHARS) {
      violations.push({
        limit: 'the estimated size of its inline policies in characters (resolved ARNs)',
        count: size,
        max: LIMITS.ROLE_INLINE_POLICY_CHARS,
        where: `role ${id}`,
        fix: 'move grants to a managed policy (iam.ManagedPolicy) or to fewer, wider statements, or split the stack',
      });
    }
  }
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::IAM::ManagedPolicy') continue;
    const size = estimatedLength(r.Properties?.PolicyDocument);
    if (size > LIMITS.MANAGED_POLICY_CHARS) {
      violations.push({
        limit: 'the estimated size of the managed policy in characters (resolved ARNs)',
        count: size,
        max: LIMITS.MANAGED_POLICY_CHARS,
        where: `managed policy ${id}`,
        fix: 'split its statements across several managed policies',
      });
    }
  }
  return violations;
}

/**
 * The estimated inline policy size of every role of a resolved template: its own `Policies` plus
 * each `AWS::IAM::Policy` that names it in `Roles`. Roles that are not in the template are skipped.
 */
export function inlinePolicySizes(resources: Record<string, any>): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type !== 'AWS::IAM::Role') continue;
    const policies: any[] = r.Properties?.Policies ?? [];
    sizes.set(id, policies.reduce((n: number, p: any) => n + estimatedLength(p.PolicyDocument) + estimatedLength(p.PolicyName), 0));
  }
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    for (const role of r.Properties?.Roles ?? []) {
      const roleId = role?.Ref;
      if (typeof roleId === 'string' && sizes.has(roleId)) {
        sizes.set(roleId, sizes.get(roleId)! + estimatedLength(r.Properties.PolicyDocument) + estimatedLength(r.Properties.PolicyName));
      }
    }
  }
  return sizes;
}

/**
 * The length of `value` as IAM counts it once CloudFormation resolved it: JSON without whitespace,
 * with each intrinsic replaced by the length of what it resolves to at its longest in practice.
 */
export function estimatedLength(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'string') return JSON.stringify(value).length;
  if (typeof value !== 'object') return JSON.stringify(value).length;
  // An intrinsic inside a string is counted without the quotes; callers count the quotes once.
  if (Array.isArray(value)) return 2 + value.reduce((n: number, v) => n + estimatedLength(v), 0) + Math.max(0, value.length - 1);
  const intrinsic = intrinsicLength(value as Record<string, unknown>);
  if (intrinsic !== undefined) return intrinsic + 2;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  return 2 + entries.reduce((n, [k, v]) => n + JSON.stringify(k).length + 1 + estimatedLength(v), 0) + Math.max(0, entries.length - 1);
}

/** The resolved length (without quotes) of an intrinsic, or undefined when `value` is none. */
function intrinsicLength(value: Record<string, unknown>): number | undefined {
  const keys = Object.keys(value);
  if (keys.length !== 1) return undefined;
  const [key] = keys;
  const arg = value[key] as any;
  switch (key) {
    case 'Ref': return RESOLVED_LENGTH[arg] ?? REF_LENGTH;
    case 'Fn::GetAtt': return String(arg[1]).endsWith('Arn') ? ARN_LENGTH : REF_LENGTH;
    case 'Fn::ImportValue': return ARN_LENGTH;
    case 'Fn::Select': return REF_LENGTH;
    case 'Fn::Sub': return ARN_LENGTH;
    case 'Fn::Join': {
      const [sep, parts] = arg as [string, unknown[]];
      if (!Array.isArray(parts)) return ARN_LENGTH;
      return parts.reduce((n: number, p) => n + (typeof p === 'string' ? p.length : intrinsicLength(p as Record<string, unknown>) ?? ARN_LENGTH), 0)
        + sep.length * Math.max(0, parts.length - 1);
    }
    default: return key.startsWith('Fn::') ? ARN_LENGTH : undefined;
  }
}
