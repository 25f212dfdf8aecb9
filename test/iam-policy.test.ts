import { evaluate, PolicyStatement, wildcardMatch } from './support/iam-policy';

const IMAGE = 'arn:aws:lambda:us-east-1:123456789012:microvm-image:img';
const statements: PolicyStatement[] = [
  { Effect: 'Allow', Action: ['lambda:GetMicrovmImage', 'lambda:DeleteMicrovmImage'], Resource: [IMAGE, `${IMAGE}:*`] },
  { Effect: 'Allow', Action: 'lambda:ListMicrovms', Resource: '*' },
  {
    Effect: 'Allow',
    Action: 'iam:PassRole',
    Resource: 'arn:aws:iam::123456789012:role/build',
    Condition: { StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
  },
  { Effect: 'Allow', Action: 'iam:CreateServiceLinkedRole', Resource: 'arn:aws:iam::123456789012:role/aws-service-role/*', Condition: { StringLike: { 'iam:AWSServiceName': '*lambda.amazonaws.com' } } },
  { Effect: 'Deny', Action: 'lambda:DeleteMicrovmImage', Resource: `${IMAGE}:9.*` },
];
const decide = (action: string, resource: string, context?: Record<string, string | string[]>) =>
  evaluate(statements, { action, resource, context }).decision;

describe('the IAM evaluator of the tests', () => {
  test('wildcards: * spans any run (colons and slashes included), ? one character', () => {
    expect(wildcardMatch('arn:aws:lambda:*:123:microvm-image:img:*', 'arn:aws:lambda:us-east-1:123:microvm-image:img:2.0')).toBe(true);
    expect(wildcardMatch('arn:aws:s3:::b/?', 'arn:aws:s3:::b/ab')).toBe(false);
    expect(wildcardMatch('a.b', 'axb')).toBe(false); // dots are literal
    expect(() => wildcardMatch('arn:${aws:username}', 'x')).toThrow(/policy variables/);
  });

  test('actions are case-insensitive, resources exact', () => {
    expect(decide('lambda:getmicrovmimage', IMAGE)).toBe('Allow');
    expect(decide('lambda:GetMicrovmImage', `${IMAGE}-other`)).toBe('ImplicitDeny');
    expect(decide('lambda:GetMicrovmImage', 'arn:aws:lambda:us-east-1:123456789012:microvm-image:IMG')).toBe('ImplicitDeny');
    expect(decide('lambda:GetMicrovmImage', `${IMAGE}:2.0`)).toBe('Allow');
    expect(decide('lambda:UpdateMicrovmImage', IMAGE)).toBe('ImplicitDeny');
  });

  test('an action without a resource type needs a statement on *', () => {
    expect(decide('lambda:ListMicrovms', '*')).toBe('Allow');
    expect(decide('lambda:GetMicrovmImage', '*')).toBe('ImplicitDeny');
  });

  test('an explicit Deny wins over an Allow', () => {
    expect(decide('lambda:DeleteMicrovmImage', `${IMAGE}:9.0`)).toBe('ExplicitDeny');
    expect(decide('lambda:DeleteMicrovmImage', `${IMAGE}:2.0`)).toBe('Allow');
  });

  test('conditions: StringEquals and StringLike need the key; a missing key fails them', () => {
    const role = 'arn:aws:iam::123456789012:role/build';
    expect(decide('iam:PassRole', role, { 'iam:PassedToService': 'lambda.amazonaws.com' })).toBe('Allow');
    expect(decide('iam:PassRole', role, { 'IAM:passedtoservice': 'lambda.amazonaws.com' })).toBe('Allow'); // key names are case-insensitive
    expect(decide('iam:PassRole', role, { 'iam:PassedToService': 'ec2.amazonaws.com' })).toBe('ImplicitDeny');
    expect(decide('iam:PassRole', role)).toBe('ImplicitDeny');
    const slr = 'arn:aws:iam::123456789012:role/aws-service-role/x';
    expect(decide('iam:CreateServiceLinkedRole', slr, { 'iam:AWSServiceName': 'network-connectors.lambda.amazonaws.com' })).toBe('Allow');
    expect(decide('iam:CreateServiceLinkedRole', slr, { 'iam:AWSServiceName': 'ec2.amazonaws.com' })).toBe('ImplicitDeny');
  });

  test('negated operators, IfExists and the set qualifiers', () => {
    const s = (Condition: PolicyStatement['Condition']): PolicyStatement[] => [{ Effect: 'Allow', Action: 'x:Y', Resource: '*', Condition }];
    const run = (c: PolicyStatement['Condition'], context?: Record<string, string | string[]>) => evaluate(s(c), { action: 'x:Y', resource: '*', context }).decision;
    expect(run({ StringNotEquals: { k: 'a' } })).toBe('Allow');
    expect(run({ StringNotEquals: { k: 'a' } }, { k: 'a' })).toBe('ImplicitDeny');
    expect(run({ StringEqualsIfExists: { k: 'a' } })).toBe('Allow');
    expect(run({ 'ForAllValues:StringEquals': { 'aws:TagKeys': ['a', 'b'] } }, { 'aws:TagKeys': ['a'] })).toBe('Allow');
    expect(run({ 'ForAllValues:StringEquals': { 'aws:TagKeys': ['a', 'b'] } }, { 'aws:TagKeys': ['a', 'c'] })).toBe('ImplicitDeny');
    expect(run({ 'ForAnyValue:StringLike': { 'aws:TagKeys': 'team*' } }, { 'aws:TagKeys': ['x', 'team-a'] })).toBe('Allow');
    expect(run({ Bool: { 'aws:SecureTransport': true } }, { 'aws:SecureTransport': 'true' })).toBe('Allow');
    expect(() => run({ NumericLessThan: { k: '1' } }, { k: '0' })).toThrow(/not supported/);
    expect(() => run({ StringEquals: { k: 'a' } }, { k: ['a', 'b'] })).toThrow(/several values/);
  });
});
