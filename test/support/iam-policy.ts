/**
 * The smallest IAM identity-policy evaluator that covers what this library's policies use:
 * Action/NotAction and Resource/NotResource with `*` and `?` wildcards, Allow and explicit Deny,
 * and the condition operators below (with `IfExists` and the `ForAllValues:`/`ForAnyValue:` set
 * qualifiers). Anything else (an unknown operator, a policy variable) throws: an evaluator that
 * guesses would let a test pass that AWS would fail.
 *
 * Written from the IAM policy evaluation logic and condition operator reference
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
 */

export interface PolicyStatement {
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action?: string | string[];
  readonly NotAction?: string | string[];
  readonly Resource?: string | string[];
  readonly NotResource?: string | string[];
  readonly Condition?: Record<string, Record<string, string | string[] | boolean>>;
}

export interface IamRequest {
  /** `service:Action`. */
  readonly action: string;
  /** The resource ARN, or `*` for an action that has no resource type. */
  readonly resource: string;
  /** Condition keys the request carries (case-insensitive names). */
  readonly context?: Record<string, string | string[]>;
}

export type Decision = 'Allow' | 'ImplicitDeny' | 'ExplicitDeny';

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** `*` (any run) and `?` (one character), nothing else special. */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  if (pattern.includes('${')) throw new Error(`policy variables are not supported by this evaluator: ${pattern}`);
  const re = new RegExp(`^${pattern.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')}$`, ignoreCase ? 'si' : 's');
  return re.test(value);
}

function actionMatches(s: PolicyStatement, action: string): boolean {
  if (s.Action !== undefined) return list(s.Action).some((p) => wildcardMatch(p, action, true));
  if (s.NotAction !== undefined) return !list(s.NotAction).some((p) => wildcardMatch(p, action, true));
  throw new Error('a statement needs Action or NotAction');
}

/** An action without a resource type is requested on `*`: only a statement on `*` covers it. */
function resourceMatches(s: PolicyStatement, resource: string): boolean {
  const matches = (p: string) => (resource === '*' ? p === '*' : wildcardMatch(p, resource));
  if (s.Resource !== undefined) return list(s.Resource).some(matches);
  if (s.NotResource !== undefined) return !list(s.NotResource).some(matches);
  throw new Error('an identity policy statement needs Resource or NotResource');
}

type Operator = (policyValue: string, requestValue: string) => boolean;
const OPERATORS: Record<string, { test: Operator; negated: boolean }> = {
  StringEquals: { test: (p, r) => p === r, negated: false },
  StringNotEquals: { test: (p, r) => p === r, negated: true },
  StringEqualsIgnoreCase: { test: (p, r) => p.toLowerCase() === r.toLowerCase(), negated: false },
  StringNotEqualsIgnoreCase: { test: (p, r) => p.toLowerCase() === r.toLowerCase(), negated: true },
  StringLike: { test: (p, r) => wildcardMatch(p, r), negated: false },
  StringNotLike: { test: (p, r) => wildcardMatch(p, r), negated: true },
  ArnEquals: { test: (p, r) => p === r, negated: false },
  ArnNotEquals: { test: (p, r) => p === r, negated: true },
  ArnLike: { test: (p, r) => wildcardMatch(p, r), negated: false },
  ArnNotLike: { test: (p, r) => wildcardMatch(p, r), negated: true },
  Bool: { test: (p, r) => p.toLowerCase() === r.toLowerCase(), negated: false },
};

function conditionHolds(operatorName: string, key: string, policyValues: string[], context: Record<string, string | string[]>): boolean {
  let name = operatorName;
  let qualifier: 'ForAllValues' | 'ForAnyValue' | undefined;
  const q = /^(ForAllValues|ForAnyValue):(.+)$/.exec(name);
  if (q) { qualifier = q[1] as 'ForAllValues' | 'ForAnyValue'; name = q[2]; }
  const ifExists = name.endsWith('IfExists');
  if (ifExists) name = name.slice(0, -'IfExists'.length);
  const op = OPERATORS[name];
  if (!op) throw new Error(`condition operator ${operatorName} is not supported by this evaluator`);
  const entry = Object.entries(context).find(([k]) => k.toLowerCase() === key.toLowerCase());
  if (!entry) {
    // A missing key: IfExists and negated operators hold; ForAllValues holds (the empty set).
    return ifExists || op.negated || qualifier === 'ForAllValues';
  }
  const requestValues = list(entry[1]);
  const anyPolicyValue = (r: string) => policyValues.some((p) => op.test(p, r));
  if (qualifier === 'ForAllValues') return requestValues.every((r) => (op.negated ? !anyPolicyValue(r) : anyPolicyValue(r)));
  if (qualifier === 'ForAnyValue') return requestValues.some((r) => (op.negated ? !anyPolicyValue(r) : anyPolicyValue(r)));
  if (requestValues.length !== 1) throw new Error(`condition key ${key} has several values: use ForAllValues or ForAnyValue`);
  return op.negated ? !anyPolicyValue(requestValues[0]) : anyPolicyValue(requestValues[0]);
}

function conditionsHold(s: PolicyStatement, context: Record<string, string | string[]>): boolean {
  for (const [operator, keys] of Object.entries(s.Condition ?? {})) {
    for (const [key, value] of Object.entries(keys)) {
      const values = list(typeof value === 'boolean' ? String(value) : value);
      if (!conditionHolds(operator, key, values, context)) return false;
    }
  }
  return true;
}

/** Whether the statements allow the request: an explicit Deny wins, then any Allow, else implicit deny. */
export function evaluate(statements: PolicyStatement[], request: IamRequest): { decision: Decision; statement?: PolicyStatement } {
  const context = request.context ?? {};
  const applies = (s: PolicyStatement) => actionMatches(s, request.action) && resourceMatches(s, request.resource) && conditionsHold(s, context);
  const deny = statements.find((s) => s.Effect === 'Deny' && applies(s));
  if (deny) return { decision: 'ExplicitDeny', statement: deny };
  const allow = statements.find((s) => s.Effect === 'Allow' && applies(s));
  return allow ? { decision: 'Allow', statement: allow } : { decision: 'ImplicitDeny' };
}
