import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One AssumeRole the STS endpoint answered. */
export interface AssumeRoleCall {
  readonly roleArn: string;
  readonly sessionName: string;
  /** The access key id it handed out: calls signed with it belong to this session. */
  readonly accessKeyId: string;
}

/**
 * A local STS endpoint for AssumeRole only (query protocol, as the SDK speaks it), so that the
 * bundled entry can run its real STS client in a test. Each session gets its own access key id,
 * `ASIA<n>`, from which a test can tell which role signed a call (`roleOfAccessKey`).
 */
export class LocalSts {
  public static async start(): Promise<LocalSts> {
    const sts = new LocalSts();
    await new Promise<void>((resolve) => sts.server.listen(0, '127.0.0.1', resolve));
    return sts;
  }

  public readonly calls: AssumeRoleCall[] = [];
  private readonly server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      if (form.get('Action') !== 'AssumeRole') {
        res.writeHead(400, { 'content-type': 'text/xml' });
        res.end(`<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>${form.get('Action')} is not served here</Message></Error></ErrorResponse>`);
        return;
      }
      const call = { roleArn: form.get('RoleArn')!, sessionName: form.get('RoleSessionName')!, accessKeyId: `ASIA${String(this.calls.length).padStart(16, '0')}` };
      this.calls.push(call);
      const expiration = new Date(Date.now() + 900_000).toISOString();
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end('<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>'
        + `<AccessKeyId>${call.accessKeyId}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken>`
        + `<Expiration>${expiration}</Expiration></Credentials><AssumedRoleUser><Arn>${call.roleArn}/${call.sessionName}</Arn>`
        + `<AssumedRoleId>AROA:${call.sessionName}</AssumedRoleId></AssumedRoleUser></AssumeRoleResult></AssumeRoleResponse>`);
    });
  });

  private constructor() {}

  public get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The role whose session an access key id belongs to. */
  public roleOfAccessKey(accessKeyId: string): string | undefined {
    return this.calls.find((c) => c.accessKeyId === accessKeyId)?.roleArn;
  }

  public close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
