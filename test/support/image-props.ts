import type { ImageProps, ImageVersionRetentionWire } from '../../src/private/wire';

/** The image resource's properties as CloudFormation delivers them (strings), for handler tests. */
export type ImageWire = ImageProps & ImageVersionRetentionWire;

export const TEST_ACCOUNT = '123456789012';

export function imageProps(name: string, extra: Partial<ImageWire> = {}): ImageWire {
  return {
    Name: name,
    CodeUri: 's3://assets/code-v1.zip',
    BaseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
    BuildRoleArn: `arn:aws:iam::${TEST_ACCOUNT}:role/build`,
    Logging: { LogGroup: '/mvm/builds' },
    MemoryMiB: '2048',
    Architecture: 'ARM_64',
    BuildTimeoutSeconds: '1800',
    ...extra,
  };
}
