import type { GetMicrovmImageVersionOutput } from '@aws-sdk/client-lambda-microvms';
import { imageConfig, sameConfig } from '../lambda/image/image-config';
import type { ImageProps } from '../src/private/wire';

const BASE: ImageProps = {
  Name: 'img',
  CodeUri: 's3://b/code.zip',
  BaseImageArn: 'arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1',
  BuildRoleArn: 'arn:aws:iam::123456789012:role/build',
  Logging: { Disabled: 'true' },
  Architecture: 'ARM_64',
  BuildTimeoutSeconds: '600',
};

/** A version as the service returns it for BASE (recorded shape: defaults filled in, nulls for unset). */
function version(extra: Partial<GetMicrovmImageVersionOutput> = {}): GetMicrovmImageVersionOutput {
  return {
    imageArn: 'arn:aws:lambda:us-east-1:123456789012:microvm-image:img',
    imageVersion: '1.0',
    state: 'SUCCESSFUL',
    status: 'ACTIVE',
    createdAt: new Date(0),
    baseImageArn: BASE.BaseImageArn,
    baseImageVersion: '1.0',
    buildRoleArn: BASE.BuildRoleArn,
    codeArtifact: { uri: BASE.CodeUri },
    logging: { disabled: {} },
    cpuConfigurations: [{ architecture: 'ARM_64' }],
    resources: [{ minimumMemoryInMiB: 2048 }],
    egressNetworkConnectors: ['arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS'],
    ...extra,
  };
}

describe('imageConfig / sameConfig', () => {
  test('the service\'s defaults (memory, internet egress, resolved base version) count as unset', () => {
    expect(sameConfig(imageConfig(BASE), version())).toBe(true);
  });

  test('a pinned base version is compared', () => {
    const pinned = imageConfig({ ...BASE, BaseImageVersion: '0' });
    expect(sameConfig(pinned, version())).toBe(false);
    expect(sameConfig(pinned, version({ baseImageVersion: '0' }))).toBe(true);
  });

  test('code, memory, environment and hooks differences are seen', () => {
    expect(sameConfig(imageConfig({ ...BASE, CodeUri: 's3://b/other.zip' }), version())).toBe(false);
    expect(sameConfig(imageConfig({ ...BASE, MemoryMiB: '4096' }), version())).toBe(false);
    expect(sameConfig(imageConfig({ ...BASE, Environment: { A: '1' } }), version())).toBe(false);
    expect(sameConfig(imageConfig({ ...BASE, Environment: { A: '1' } }), version({ environmentVariables: { A: '1' } }))).toBe(true);
  });

  test('hooks: disabled hooks in the service\'s echo are the same as no hooks', () => {
    const withHooks = imageConfig({ ...BASE, Hooks: { Port: '9000', Ready: { TimeoutSeconds: '30' } } });
    expect(withHooks.hooks).toEqual({
      port: 9000,
      microvmHooks: undefined,
      microvmImageHooks: { ready: 'ENABLED', readyTimeoutInSeconds: 30, validate: undefined, validateTimeoutInSeconds: undefined },
    });
    const echo = version({
      hooks: {
        port: 9000,
        microvmHooks: { run: 'DISABLED', runTimeoutInSeconds: 1 },
        microvmImageHooks: { ready: 'ENABLED', readyTimeoutInSeconds: 30, validate: 'DISABLED' },
      },
    });
    expect(sameConfig(withHooks, echo)).toBe(true);
    expect(sameConfig(imageConfig(BASE), echo)).toBe(false);
  });

  test('numbers arrive as strings from CloudFormation and are sent as numbers', () => {
    const c = imageConfig({ ...BASE, MemoryMiB: '8192', Logging: { LogGroup: '/g', LogStream: 's' } });
    expect(c.resources).toEqual([{ minimumMemoryInMiB: 8192 }]);
    expect(c.logging).toEqual({ cloudWatch: { logGroup: '/g', logStream: 's' } });
    expect(() => imageConfig({ ...BASE, MemoryMiB: 'lots' })).toThrow(/MemoryMiB must be an integer, got "lots"/);
  });
});
