import { classifyError, isRetryable, isStackMissing } from '../lambda/shared/errors';
import { LambdaCoreServiceError } from '../lambda/shared/lambda-core-client';

/** An SDK-shaped service error. */
function sdkError(name: string, status: number, message: string) {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

/** Every class from the answers recorded against the live service (recorded-facts.md, aws-recorded/). */
describe('classifyError: the recorded answers', () => {
  test.each([
    ['DeleteMicrovmImage during the first build', sdkError('ValidationException', 400, 'Cannot delete MicroVM image in its current state: CREATING'), 'busy'],
    ['DeleteMicrovmImage while a version delete drains', sdkError('ValidationException', 400, 'Cannot delete MicroVM image in its current state: UPDATING'), 'busy'],
    ['DeleteMicrovmImage while MicroVMs stop', sdkError('ValidationException', 400, 'Cannot delete microvm image with running microvms.'), 'busy'],
    ['UpdateMicrovmImageVersion while the image rebuilds', sdkError('ConflictException', 409, 'MicroVM Image is already in state: UPDATING'), 'busy'],
    ['CreateMicrovmImage with a name still reserved', sdkError('ValidationException', 400, 'MicroVM image with name img already exists.'), 'conflict'],
    ['a create with a name in use', sdkError('ConflictException', 409, 'anything'), 'conflict'],
    ['a bad name', sdkError('ValidationException', 400, "1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint"), 'fatal'],
    ['RunMicrovm beyond the memory quota', sdkError('ServiceQuotaExceededException', 402, 'The base maximum allocated memory limit has been reached for this account.'), 'quota'],
    ['GetMicrovmImage of a missing image', sdkError('ResourceNotFoundException', 404, 'MicroVMImage not found for MicroVMImageID: arn'), 'notFound'],
    ['SuspendMicrovm of a TERMINATED MicroVM', sdkError('ValidationException', 400, 'The MicroVM microvm-1 has been terminated and its state cannot be changed.'), 'notFound'],
    ['throttling (MicroVMs)', sdkError('ThrottlingException', 429, 'Rate exceeded'), 'throttled'],
    ['a 5xx', sdkError('InternalServerException', 500, 'oops'), 'transient'],
    ['Lambda Core throttling', new LambdaCoreServiceError({ name: 'TooManyRequestsException', message: 'slow down', statusCode: 429 }), 'throttled'],
    ['Lambda Core not found', new LambdaCoreServiceError({ name: 'ResourceNotFoundException', message: 'Network connector not found for: arn', statusCode: 404 }), 'notFound'],
    ['a connector that is busy', new LambdaCoreServiceError({ name: 'ResourceConflictException', message: 'busy', statusCode: 409 }), 'conflict'],
    ['a connector limit', new LambdaCoreServiceError({ name: 'NetworkConnectorLimitExceededException', message: 'limit', statusCode: 400 }), 'quota'],
    ['an operator role IAM has not propagated', new LambdaCoreServiceError({
      name: 'InvalidParameterValueException',
      statusCode: 400,
      message: 'Encountered unauthorized operation while calling EC2 due to invalid ConnectorOperatorRole permissions',
    }), 'iamPropagation'],
    ['a missing ClientToken', new LambdaCoreServiceError({ name: 'InvalidParameterValueException', message: 'ClientToken is a required field', statusCode: 400 }), 'fatal'],
    ['a dropped connection', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'transient'],
  ])('%s', (_what, err, expected) => {
    expect(classifyError(err)).toBe(expected);
  });

  test('only throttled and transient errors are retried', () => {
    expect(isRetryable(sdkError('ThrottlingException', 429, 'x'))).toBe(true);
    expect(isRetryable(sdkError('ServiceUnavailableException', 503, 'x'))).toBe(true);
    expect(isRetryable(sdkError('ValidationException', 400, 'Cannot delete microvm image with running microvms.'))).toBe(false);
  });
});

describe('isStackMissing: DescribeStacks of a stack that is gone', () => {
  test('CloudFormation\'s ValidationError "Stack with id ... does not exist" is a missing stack', () => {
    expect(isStackMissing(sdkError('ValidationError', 400, 'Stack with id my-stack does not exist'))).toBe(true);
  });

  test('other validation errors, and the wording under another type, are not', () => {
    expect(isStackMissing(sdkError('ValidationError', 400, '1 validation error detected: Value at \'stackName\' failed to satisfy constraint'))).toBe(false);
    expect(isStackMissing(sdkError('ValidationException', 400, 'Stack with id my-stack does not exist'))).toBe(false);
    expect(isStackMissing(sdkError('AccessDenied', 403, 'not authorized to perform cloudformation:DescribeStacks'))).toBe(false);
  });
});
