import * as logs from 'aws-cdk-lib/aws-logs';
import { checkLogStreamName } from './private/validation';

/**
 * Where a MicroVM image's build and runtime logs go.
 */
export abstract class MicroVmLogging {
  /**
   * CloudWatch Logs.
   *
   * @param logGroup the log group. Default: a log group owned by the construct (one month of retention).
   * @param logStream a fixed log stream name (1-512 characters, no `:` or `*`). Default: streams named by the service.
   * @throws if `logStream` is empty, longer than 512 characters, or contains `:` or `*`
   */
  public static cloudWatch(logGroup?: logs.ILogGroup, logStream?: string): MicroVmLogging {
    checkLogStreamName('MicroVmLogging.cloudWatch logStream', logStream);
    return new CloudWatchLogging(logGroup, logStream);
  }

  /** No logs. */
  public static disabled(): MicroVmLogging {
    return new DisabledLogging();
  }

  /** The log group, when logging to CloudWatch with a given group. */
  public abstract readonly logGroup?: logs.ILogGroup;
  /** The log stream name, when set. */
  public abstract readonly logStream?: string;
  /** True when logging is disabled. */
  public abstract readonly isDisabled: boolean;
}

class CloudWatchLogging extends MicroVmLogging {
  public readonly isDisabled = false;
  constructor(public readonly logGroup?: logs.ILogGroup, public readonly logStream?: string) {
    super();
  }
}

class DisabledLogging extends MicroVmLogging {
  public readonly isDisabled = true;
  public readonly logGroup = undefined;
  public readonly logStream = undefined;
}
