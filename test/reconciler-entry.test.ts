import { ListMicrovmsCommand, LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { HttpResponse } from '@smithy/protocol-http';
import { refuseAfter, RUN_DEADLINE_MS } from '../lambda/fleet/reconciler-entry';
import { isReconcilerInput, RECONCILER_INVOCATION } from '../src/private/reconciler-wire';

/**
 * The provider's onEvent function serves the Provider framework and the fleet schedules
 * (issue 12). The routing through the real bundle is in test/bundle.test.ts, the run under the
 * fleet's role in test/iam-lifecycle.test.ts; here the two rules they rest on.
 */
describe('the reconciler run in the provider\'s onEvent function', () => {
  test('a run is recognized by its marker, never when the event is a framework request', () => {
    const run = { Invocation: RECONCILER_INVOCATION, FleetId: 'f', StackId: 's', Fleet: {}, RotateBeforeSeconds: '600' };
    expect(isReconcilerInput(run)).toBe(true);
    expect(isReconcilerInput({ ...run, RequestType: 'Create' })).toBe(false);
    expect(isReconcilerInput({ ...run, Invocation: 'other' })).toBe(false);
    const { Invocation: _, ...unmarked } = run;
    expect(isReconcilerInput(unmarked)).toBe(false);
    expect(isReconcilerInput(undefined)).toBe(false);
  });

  test('past the run\'s deadline a client sends nothing more, SDK retries included (the function\'s 5-minute timeout would outlive the 120 s lease)', async () => {
    expect(RUN_DEADLINE_MS).toBe(60_000);
    let sent = 0;
    let now = 0;
    // Narrow case: what reaches the wire. Every attempt is answered 503 (retryable) and moves the clock past the deadline.
    const client = new LambdaMicrovmsClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 8,
      requestHandler: {
        handle: async () => {
          sent++;
          now = 61_000;
          return { response: new HttpResponse({ statusCode: 503, headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') }) };
        },
      },
    });
    refuseAfter(client, 60_000, () => now);
    await expect(client.send(new ListMicrovmsCommand({}))).rejects.toThrow(/ListMicrovmsCommand not sent: the reconciler run passed its 60-second deadline/);
    expect(sent).toBe(1);
    // Already past it: nothing is sent at all.
    await expect(client.send(new ListMicrovmsCommand({}))).rejects.toThrow(/not sent/);
    expect(sent).toBe(1);
  });
});
