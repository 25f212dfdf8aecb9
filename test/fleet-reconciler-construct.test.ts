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

/** The function that runs the reconciler: the provider's own onEvent function (issue 12: no function of its own). */
const ON_EVENT = 'cdklambdamicrovmsProviderOnEvent9D189B76';
const PROVIDER_ROLE = /^cdklambdamicrovmsProviderRole[A-F0-9]{8}$/;

/** The provider role's statements (its DefaultPolicy). */
function providerRoleStatements(t: Template): any[] {
  const [roleId] = Object.keys(t.findResources('AWS::IAM::Role')).filter((id) => PROVIDER_ROLE.test(id));
  return Object.values(t.findResources('AWS::IAM::Policy'))
    .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
    .flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

function scheduleInput(t: Template, stack: Stack): any {
  const schedules = Object.values(t.findResources(SCHEDULE));
  return JSON.parse(JSON.stringify(stack.resolve(schedules[0].Properties.Target.Input)));
}

describe('MicroVmFleet self-healing (the stack\'s reconciler)', () => {
  test('a fleet gets a one-minute schedule that invokes the provider\'s onEvent function with the fleet\'s properties and the run\'s marker', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 3 });
    const t = Template.fromStack(stack);
    const fn = ON_EVENT;
    t.hasResource('AWS::Lambda::Function', { Properties: { Handler: 'index.onEvent', Timeout: 300 } });
    expect(t.toJSON().Resources[fn].Properties.Handler).toBe('index.onEvent');
    // Async invocations only (EventBridge Scheduler's): the framework invokes the function synchronously.
    t.resourceCountIs('AWS::Lambda::EventInvokeConfig', 1);
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
      // Created after the fleet, its permissions and the async invoke settings; deleted before the fleet.
      DependsOn: Match.arrayWith([
        Match.stringLikeRegexp('^cdklambdamicrovmsProviderOnEventEventInvokeConfig'), Match.stringLikeRegexp('^cdklambdamicrovmsProviderRoleDefaultPolicy'),
        Match.stringLikeRegexp('^FleetHandlerRole'), Match.stringLikeRegexp('^Fleet[0-9A-F]{8}$'),
      ]),
    });
    const input = JSON.stringify(t.findResources(SCHEDULE));
    // The marker the onEvent function routes on (lambda/provider/index.ts).
    expect(input).toContain('\\"Invocation\\":\\"cdk-lambda-microvms:ReconcileFleet\\"');
    expect(input).toContain('\\"FleetId\\":\\"');
    expect(input).toContain('\\"StackId\\":\\"');
    expect(input).toContain('\\"DesiredCount\\":\\"3\\"');
    expect(input).toContain('\\"RotateBeforeSeconds\\":\\"600\\"');
    // The run assumes the fleet's own handler role.
    expect(input).toContain('\\"HandlerRoleArn\\":\\"');
    expect(input).not.toContain('MaxRotating');
    expect(input).not.toContain('ReplaceIdleTerminated');
  });

  test('no function of its own: one scheduler role per stack, one schedule per fleet and no policy per fleet (issue 12: 5 library functions)', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'A', { image, desiredCount: 1 });
    new MicroVmFleet(stack, 'B', { image, desiredCount: 2, selfHealingInterval: Duration.minutes(5) });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::Lambda::Function', 5);
    // Of the reconciler, only the scheduler's role and its policy: no function, role or log group.
    expect(Object.keys(t.toJSON().Resources).filter((id) => id.startsWith('cdklambdamicrovmsfleetreconciler')).map((id) => id.replace(/[A-F0-9]{8}$/, '')).sort())
      .toEqual(['cdklambdamicrovmsfleetreconcilerSchedulerRole', 'cdklambdamicrovmsfleetreconcilerSchedulerRoleDefaultPolicy']);
    t.resourceCountIs(SCHEDULE, 2);
    t.hasResourceProperties(SCHEDULE, { ScheduleExpression: 'rate(5 minutes)' });
    for (const schedule of Object.values(t.findResources(SCHEDULE)) as any[]) expect(schedule.Properties.Target.Arn).toEqual({ 'Fn::GetAtt': [ON_EVENT, 'Arn'] });
    t.resourcePropertiesCountIs('AWS::IAM::Role', { Description: Match.stringLikeRegexp('fleet reconciler') }, 1); // the scheduler's
    // The provider role gains one statement for the stack, none per fleet.
    expect(providerRoleStatements(t).filter((s) => s.Action === 'cloudformation:DescribeStacks')).toHaveLength(1);
    expect(JSON.stringify(providerRoleStatements(t))).not.toContain('lambda:RunMicrovm');
  });

  test('selfHealing: false adds no schedule, no scheduler role, no async invoke settings and no DescribeStacks', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 3, selfHealing: false });
    const t = Template.fromStack(stack);
    t.resourceCountIs(SCHEDULE, 0);
    t.resourceCountIs('AWS::Lambda::Function', 5);
    t.resourceCountIs('AWS::Lambda::EventInvokeConfig', 0);
    t.resourcePropertiesCountIs('AWS::IAM::Role', { Description: Match.stringLikeRegexp('fleet reconciler') }, 0);
    expect(JSON.stringify(providerRoleStatements(t))).not.toContain('cloudformation:');
  });

  test('least privilege: the stack\'s own status, the fleet\'s own image, table and roles, invoke of exactly the onEvent function', () => {
    const { stack, image } = setup();
    new MicroVmFleet(stack, 'Fleet', { image, desiredCount: 3 });
    const t = Template.fromStack(stack);
    const [schedulerRole] = Object.keys(t.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('fleet reconciler') } }));
    const [providerRole] = Object.keys(t.findResources('AWS::IAM::Role')).filter((id) => PROVIDER_ROLE.test(id));
    t.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{ Action: 'sts:AssumeRole', Principal: { Service: 'scheduler.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } } }],
      },
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: schedulerRole }],
      PolicyDocument: { Statement: [{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [ON_EVENT, 'Arn'] } }] },
    });
    // The provider role: its logs, the stack's handler roles by their path (as for every deploy),
    // and the stack's own status for the run's fence. No statement on any fleet.
    const statements = providerRoleStatements(t);
    expect(statements.map((st) => st.Action)).toEqual([['logs:CreateLogStream', 'logs:PutLogEvents'], 'sts:AssumeRole', 'cloudformation:DescribeStacks']);
    expect(statements[2]).toEqual({ Action: 'cloudformation:DescribeStacks', Effect: 'Allow', Resource: { Ref: 'AWS::StackId' } });
    expect(statements[1].Resource).toEqual({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, expect.stringMatching(/^:iam::123456789012:role\/cdk-lambda-microvms\/[0-9a-f]{12}\/\*$/)]] });
    expect(JSON.stringify(statements)).not.toMatch(/lambda:|dynamodb:|secretsmanager:|iam:PassRole/);
    // The fleet's handler role trusts exactly the provider's role, and holds the lease's DeleteItem.
    t.hasResourceProperties('AWS::IAM::Role', {
      Description: Match.stringLikeRegexp('handler of a MicroVM fleet'),
      AssumeRolePolicyDocument: {
        Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { AWS: { 'Fn::GetAtt': [providerRole, 'Arn'] } } }],
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
