import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { MicroVmCode, MicroVmFleet, MicroVmImage, MicroVmImageVersion, NetworkConnector } from '../src';
import { HELLO_IMAGE_DIR } from './support/stack';
import { estimatedLength, findLimitViolations, inlinePolicySizes, LIMITS } from '../src/private/limits';

/** One stack with `images` images, as many pinned versions and fleets, and `connectors` connectors. */
function bigStack(images: number, connectors: number) {
  const app = new App();
  const stack = new Stack(app, 'Big', { env: { account: '123456789012', region: 'ap-southeast-2' } });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 1, natGateways: 0, subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
  const conns = Array.from({ length: connectors }, (_, i) => new NetworkConnector(stack, `Connector${i}`, { vpc }));
  const code = MicroVmCode.fromAsset(HELLO_IMAGE_DIR);
  for (let i = 0; i < images; i++) {
    const image = new MicroVmImage(stack, `Image${i}`, { code, egressConnectors: conns.length ? [conns[i % conns.length]] : undefined });
    new MicroVmImageVersion(stack, `Version${i}`, { image, imageVersion: '1.0' });
    new MicroVmFleet(stack, `Fleet${i}`, { image, desiredCount: 2 });
  }
  return { app, stack };
}

describe('limits checked at synth', () => {
  test('estimatedLength counts resolved references at their longest in practice', () => {
    expect(estimatedLength({ Resource: 'arn:aws:s3:::b' })).toBe(JSON.stringify({ Resource: 'arn:aws:s3:::b' }).length);
    // {"Ref":"AWS::Region"} becomes "ap-southeast-2" (14 characters and its quotes).
    expect(estimatedLength({ Ref: 'AWS::Region' })).toBe(16);
    expect(estimatedLength({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':x']] })).toBe('arn:'.length + 10 + 2 + 2);
    expect(estimatedLength({ 'Fn::GetAtt': ['Role', 'Arn'] })).toBeGreaterThanOrEqual(100);
  });

  test('a role whose inline policies would pass 10,240 characters fails synth, naming the role, the size and the fix', () => {
    const app = new App();
    const stack = new Stack(app, 'S', { env: { account: '123456789012', region: 'us-east-1' } });
    new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR) });
    const role = new iam.Role(stack, 'Wide', { assumedBy: new iam.AccountRootPrincipal() });
    for (let i = 0; i < 120; i++) {
      // Conditions differ, so aws-cdk-lib cannot merge the statements.
      role.addToPolicy(new iam.PolicyStatement({
        actions: ['s3:GetObject'], resources: [`arn:aws:s3:::bucket-number-${i}/*`], conditions: { StringEquals: { 's3:ExistingObjectTag/team': `team-${i}` } },
      }));
    }
    expect(findLimitViolations(stack).map((v) => v.where)).toEqual([expect.stringMatching(/^role Wide/)]);
    expect(() => Template.fromStack(stack)).toThrow(/role Wide[A-F0-9]{8}: the estimated size of its inline policies in characters \(resolved ARNs\) is \d{5}, above the limit of 10240: move grants to a managed policy/);
  });

  test('100 images, 100 pinned versions, 20 connectors and 100 fleets: synth fails on the 500-resource limit, with the count and the fix', () => {
    const { stack } = bigStack(100, 20);
    const violations = findLimitViolations(stack);
    expect(violations.map((v) => v.limit)).toEqual(['the number of resources']);
    expect(violations[0].count).toBeGreaterThan(LIMITS.STACK_RESOURCES);
    // No role is near its limit even at this size: each resource has its own.
    const resources = stack.resolve((stack as any)._toCloudFormation()).Resources;
    expect(Math.max(...inlinePolicySizes(resources).values())).toBeLessThan(LIMITS.ROLE_INLINE_POLICY_CHARS / 2);
    // eslint-disable-next-line no-console
    console.log(`100/100/20/100: ${violations[0].count} resources`);
    expect(() => Template.fromStack(stack)).toThrow(/stack Big: the number of resources is \d+, above the limit of 500: split the stack/);
  });

  test('the largest such stack that fits (37 images, 37 pinned versions, 20 connectors, 37 self-healing fleets): no role over 10,240 characters, at most 5 library Lambda functions', () => {
    const { stack } = bigStack(37, 20);
    const t = Template.fromStack(stack); // synth passes every limit check
    const template = t.toJSON();
    const resources = template.Resources as Record<string, any>;
    const count = Object.keys(resources).length;
    const bytes = Buffer.byteLength(JSON.stringify(template));
    const sizes = inlinePolicySizes(resources);
    const [largestRole, largest] = [...sizes.entries()].sort((a, b) => b[1] - a[1])[0];
    // The provider role also runs the reconciler: one statement per stack, none per fleet.
    const providerRole = [...sizes.entries()].find(([id]) => /^cdklambdamicrovmsProviderRole[A-F0-9]{8}$/.test(id));
    const functions = Object.values(resources).filter((r: any) => r.Type === 'AWS::Lambda::Function').length;
    // eslint-disable-next-line no-console
    console.log(`37/37/20/37: ${count} resources, template ${bytes} bytes, ${functions} Lambda functions, largest role inline policy ~${largest} characters (${largestRole}), `
      + `provider role ~${providerRole?.[1]} characters`);
    expect(count).toBeLessThanOrEqual(LIMITS.STACK_RESOURCES);
    expect(count).toBeGreaterThan(LIMITS.STACK_RESOURCES - 10); // one more image+version+fleet (10 resources) would not fit
    // The provider role holds no statement per resource: it assumes each resource's handler role.
    expect(providerRole?.[1]).toBeLessThan(2_000);
    expect(bytes).toBeLessThanOrEqual(LIMITS.TEMPLATE_BYTES);
    expect(largest).toBeLessThanOrEqual(LIMITS.ROLE_INLINE_POLICY_CHARS);
    // Issue 12: the provider's 5 (onEvent, which also runs the fleet reconciler, isComplete, the framework's 3).
    expect(functions).toBeLessThanOrEqual(5);
    expect(functions).toBe(5);
    expect(Object.values(resources).filter((r: any) => r.Type === 'AWS::DynamoDB::Table')).toHaveLength(1);
    expect(findLimitViolations(stack)).toEqual([]);
  });
});
