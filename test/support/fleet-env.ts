import { CreateMicrovmImageCommand, LambdaMicrovmsClient } from '@aws-sdk/client-lambda-microvms';
import { EmulatorOptions, ManualClock, RunningEmulator, startEmulator } from '../../emulator/src';

const CREDS = { accessKeyId: 'test', secretAccessKey: 'test' };

/** What a fleet test runs against: the emulator on a manual clock, with one image already built. */
export interface FleetTestEnv {
  readonly emu: RunningEmulator;
  readonly clock: ManualClock;
  /** The handler's client (the SDK retries). */
  readonly client: LambdaMicrovmsClient;
  /** The client RunMicrovm goes through: no SDK retries, as in the handler. */
  readonly runClient: LambdaMicrovmsClient;
  readonly imageArn: string;
}

/** Starts the emulator (faults on) and builds the image `imageName`; its first version is built when this returns. */
export async function startFleetEnv(imageName: string, options: Partial<EmulatorOptions> = {}): Promise<FleetTestEnv> {
  const clock = new ManualClock();
  const emu = await startEmulator({ clock, faults: true, ...options });
  const client = new LambdaMicrovmsClient({ endpoint: emu.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 3 });
  const runClient = new LambdaMicrovmsClient({ endpoint: emu.url, region: 'us-east-1', credentials: CREDS, maxAttempts: 1 });
  const img = await client.send(new CreateMicrovmImageCommand({
    name: imageName,
    baseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
    buildRoleArn: 'arn:aws:iam::123456789012:role/build',
    codeArtifact: { uri: 's3://bucket/code.zip' },
  }));
  clock.advance(10_000);
  return { emu, clock, client, runClient, imageArn: img.imageArn! };
}
