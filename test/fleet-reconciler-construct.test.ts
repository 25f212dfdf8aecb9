import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { FleetReplacementCause, MicroVmCode, MicroVmFleet, MicroVmImage } from '../src';
import { HELLO_IMAGE_DIR, newStack } from './support/stack';

const SCHEDULE = 'AWS::Scheduler::Schedule';

function setup(id = 'TestStack') {
  const { app, stack } = newStack(id);
  const image = new MicroVmImage(stack, 'Image', { code: MicroVmCode.fromAsset(HELLO_IMAGE_DIR), imageName: 'fleet-image' });
  return { app, stack, image };
}

/** The reconciler function's logical id (one per stack). */
function reconcilerFunction(t: Template): string {
  const fns = t.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('fleet reconciler') } });
  expect(Object.keys(fns)).toHaveLength(1);
  return Object.keys(fns)[0];
}

function scheduleInput(t: Template, stack: Stack): any {
  const schedules = Object.values(t.findResources(SCHEDULE));
  return JSON.parse(JSON.stringify(stack.resolve(schedules[0].Properties.Target.Input)));
}

describe('MicroVmFleet self-healing (the stack\'s reconciler)', () => {
  test('a fleet gets a one-minute schedule that invokes the stack\'s reconciler with the fleet\'s properties', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 3 });
    const t = Template.fromStack(stack);
    const fn = reconcilerFunction(t);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('fleet reconciler'),
      Handler: 'index.handler',
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Timeout: 60,
      LoggingConfig: { LogFormat: 'JSON', LogGroup: Match.anyValue() },
    });
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: fn }, MaximumEventAgeInSeconds: 60, MaximumRetryAttempts: 0 });
    t.hasResource(SCHEDULE, {
      Properties: {
        ScheduleExpression: 'rate(1 minute)',
        FlexibleTimeWindow: { Mode: 'OFF' },
        State: 'ENABLED',
        Target: {
          Arn: { 'Fn::GetAtt': [fn, 'Arn'] },
          RoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('SchedulerRole'), 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 },
        },
      },
      // Created after the fleet and its permissions; deleted before the fleet.
      DependsOn: Match.arrayWith([Match.stringLikeRegexp('^FleetHandlerRole'), Match.stringLikeRegexp('^Fleet[0-9A-F]{8}$')]),
    });
    const input = JSON.stringify(t.findResources(SCHEDULE));
    expect(input).toContain('\\"FleetId\\":\\"');
    expect(input).toContain('\\"StackId\\":\\"');
    expect(input).toContain('\\"DesiredCount\\":\\"3\\"');
    expect(input).toContain('\\"RotateBeforeSeconds\\":\\"600\\"');
    // The run assumes the fleet's own handler role.
    expect(input).toContain('\\"HandlerRoleArn\\":\\"');
    expect(input).not.toContain('MaxRotating');
    expect(input).not.toContain('ReplaceIdleTerminated');
  });

  test('one function and role per stack; one schedule per fleet and no policy per fleet (issue 12: the role stays the same size)', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'A', { image, desiredCount: 1 });
    new MicroVmFleet(stack, 'B', { image, desiredCount: 2, selfHealingInterval: Duration.minutes(5) });
    const t = Template.fromStack(stack);
    reconcilerFunction(t);
    t.resourceCountIs(SCHEDULE, 2);
    t.hasResourceProperties(SCHEDULE, { ScheduleExpression: 'rate(5 minutes)' });
    t.resourcePropertiesCountIs('AWS::IAM::Policy', { PolicyName: Match.stringLikeRegexp('ReconcilerPolicy') }, 0);
    t.resourcePropertiesCountIs('AWS::IAM::Role', { Description: Match.stringLikeRegexp('fleet reconciler') }, 2); // function + scheduler
    const policies = t.findResources('AWS::IAM::Policy', { Properties: { PolicyName: Match.stringLikeRegexp('fleetreconciler') } });
    expect(JSON.stringify(policies)).not.toContain('lambda:RunMicrovm');
  });

  test('selfHealing: false adds no schedule, no function, no role', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 3, selfHealing: false });
    const t = Template.fromStack(stack);
    t.resourceCountIs(SCHEDULE, 0);
    t.resourcePropertiesCountIs('AWS::Lambda::Function', { Description: Match.stringLikeRegexp('fleet reconciler') }, 0);
    t.resourcePropertiesCountIs('AWS::IAM::Role', { Description: Match.stringLikeRegexp('fleet reconciler') }, 0);
  });

  test('least privilege: the stack\'s own status, the fleet\'s own image, table and roles, invoke of exactly the function', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 3 });
    const t = Template.fromStack(stack);
    const fn = reconcilerFunction(t);
    const roles = t.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('fleet reconciler') } });
    const [functionRole, schedulerRole] = Object.entries(roles).sort(([, a]) => (JSON.stringify(a).includes('scheduler.amazonaws.com') ? 1 : -1)).map(([k]) => k);
    t.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{ Action: 'sts:AssumeRole', Principal: { Service: 'scheduler.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } } }],
      },
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: schedulerRole }],
      PolicyDocument: { Statement: [{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [fn, 'Arn'] } }] },
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: functionRole }],
      PolicyDocument: {
        Statement: Match.arrayWith([{ Action: 'cloudformation:DescribeStacks', Effect: 'Allow', Resource: { Ref: 'AWS::StackId' } }]),
      },
    });
    // No statement on any fleet: only sts:AssumeRole on the stack's handler roles, matched by their path.
    const functionPolicies = JSON.stringify(t.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: functionRole }] } }));
    expect(functionPolicies).not.toMatch(/lambda:|dynamodb:|secretsmanager:|iam:PassRole/);
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: functionRole }],
      PolicyDocument: {
        Statement: Match.arrayWith([{
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, Match.stringLikeRegexp('^:iam::123456789012:role/cdk-lambda-microvms/[0-9a-f]{12}/\\*$')]] },
        }]),
      },
    });
    // The fleet's handler role trusts the provider's role and the reconciler's, and holds the lease's DeleteItem.
    t.hasResourceProperties('AWS::IAM::Role', {
      Description: Match.stringLikeRegexp('handler of a MicroVM fleet'),
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({ Action: 'sts:AssumeRole', Principal: { AWS: { 'Fn::GetAtt': [Match.not(functionRole), 'Arn'] } } }),
          { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: { 'Fn::GetAtt': [functionRole, 'Arn'] } } },
        ],
      },
      Policies: [{
        PolicyName: 'Handler',
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Action: Match.arrayWith(['lambda:RunMicrovm', 'lambda:TerminateMicrovm']) }),
            Match.objectLike({ Action: Match.arrayWith(['dynamodb:PutItem', 'dynamodb:DeleteItem']) }),
          ]),
        },
      }],
    });
  });

  test('selfHealing: false: the fleet\'s handler role trusts the provider only and has no DeleteItem', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 3, selfHealing: false });
    const roles = Template.fromStack(stack).findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('handler of a MicroVM fleet') } });
    const [role] = Object.values(roles) as any[];
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toHaveLength(1);
    expect(JSON.stringify(role.Properties.Policies)).not.toContain('dynamodb:DeleteItem');
  });

  test('rotation, idle and interval settings reach the schedule input; bad values fail at synth naming the fix', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', {
      image,
      desiredCount: 2,
      maximumDuration: Duration.hours(2),
      rotateBeforeExpiry: Duration.minutes(15),
      maxRotating: 2,
      replaceIdleTerminated: true,
      idlePolicy: { suspendAfterIdle: Duration.minutes(5), terminateAfterSuspended: Duration.minutes(10) },
    });
    const input = scheduleInput(Template.fromStack(stack), stack);
    expect(input['Fn::Join'][1].join('')).toMatch(/"RotateBeforeSeconds":"900","MaxRotating":"2","ReplaceIdleTerminated":"true"/);

    const make = (over: object) => () => {
      const s = setup();
      new MicroVmFleet(s.stack, 'Fleet', { image: s.image, desiredCount: 1, ...over });
    };
    expect(make({ selfHealingInterval: Duration.seconds(90) })).toThrow(/selfHealingInterval must be whole minutes from 1 to 60, got 90 seconds/);
    expect(make({ maximumDuration: Duration.minutes(30), rotateBeforeExpiry: Duration.minutes(30) }))
      .toThrow(/rotateBeforeExpiry \(seconds\) must be an integer from 0 to 1799, got 1800/);
    expect(make({ maxRotating: 0 })).toThrow(/maxRotating must be an integer from 1/);
    // A short maximumDuration: rotation starts halfway by default.
    const short = setup();
    new MicroVmFleet(short.stack, 'Fleet', { image: short.image, desiredCount: 1, maximumDuration: Duration.minutes(10) });
    expect(scheduleInput(Template.fromStack(short.stack), short.stack)['Fn::Join'][1].join('')).toContain('"RotateBeforeSeconds":"300"');
  });

  test('metrics: one namespace, the fleet id dimension, aws-cdk-lib style methods; alarms in the template', () => {
    const { stack, image } = setup();
    const fleet = new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 3 });
    const ready = stack.resolve(fleet.metricReadyCount().toMetricConfig().metricStat);
    expect(ready).toMatchObject({
      namespace: 'CdkLambdaMicroVms/Fleet',
      metricName: 'ReadyCount',
      statistic: 'Minimum',
    });
    expect(ready.dimensions[0].value.Ref).toMatch(/^Fleet[0-9A-F]{8}$/);
    expect(fleet.metricReplaced(FleetReplacementCause.ROTATION).metricName).toBe('ReplacedRotation');
    expect(fleet.metricLaunched().statistic).toBe('Sum');
    expect(fleet.metricReconcileDuration({ statistic: 'p99' }).statistic).toBe('p99');
    const others = [
      fleet.metricDesiredCount(), fleet.metricRunningCount(), fleet.metricSuspendedCount(), fleet.metricFailedLaunches(),
      fleet.metricThrottledCalls(),
    ];
    for (const m of others) {
      expect(m.namespace).toBe('CdkLambdaMicroVms/Fleet');
    }

    fleet.addReadyBelowDesiredAlarm('BelowDesired', { minutes: 3 });
    fleet.addLaunchFailuresAlarm('LaunchFailures');
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      Threshold: 1,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'breaching',
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'desired - ready' }),
        Match.objectLike({ Id: 'desired', MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'DesiredCount' }), Stat: 'Maximum' }) }),
        Match.objectLike({
          Id: 'ready',
          MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'ReadyCount', Namespace: 'CdkLambdaMicroVms/Fleet' }), Stat: 'Minimum' }),
        }),
      ]),
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'FailedLaunches',
      Namespace: 'CdkLambdaMicroVms/Fleet',
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  test('an imported fleet has the same metrics', () => {
    const { stack, image } = setup();
    const fleet = MicroVmFleet.fromFleetAttributes(stack, 'Imported', {
      fleetId: 'fleet-0123456789abcdef01234567',
      image,
      inventoryTable: (new MicroVmFleet(stack, 'F', { image, desiredCount: 1, selfHealing: false })).inventoryTable,
    });
    expect(stack.resolve(fleet.metricFailedLaunches().toMetricConfig().metricStat!.dimensions)).toEqual([{ name: 'FleetId', value: 'fleet-0123456789abcdef01234567' }]);
  });

  test('cdk-nag AwsSolutions: the reconciler, its schedules and alarms add no finding', () => {
    const { app, stack, image } = setup('NagStack');
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const a = new MicroVmFleet(stack, 'A', { image, desiredCount: 2 });
    new MicroVmFleet(stack, 'B', { image, desiredCount: 1, suspendAfterLaunch: true });
    a.addReadyBelowDesiredAlarm('BelowDesired');
    app.synth();
    const findings = [
      ...Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ...Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
    ];
    expect(findings.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
  });
});
