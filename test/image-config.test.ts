import type { GetMicrovmImageVersionOutput } from '@aws-sdk/client-lambda-microvms';
import { buildChanged, buildTimeoutSeconds, imageConfig, keepVersions, sameConfig } from '../lambda/image/image-config';
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
    expect(() => imageConfig({ ...BASE, MemoryMiB: 'lots' })).toThrow(/property MemoryMiB is "lots", expected an integer/);
  });

  test('values from the wire are checked, not defaulted: the message names the property, the value and the version mismatch', () => {
    const mismatch = /construct and handler versions differ/;
    expect(() => imageConfig({ ...BASE, MemoryMiB: '3000' })).toThrow(/property MemoryMiB is "3000", expected one of 512, 1024, 2048, 4096, 8192/);
    expect(() => imageConfig({ ...BASE, CodeUri: undefined as any })).toThrow(/property CodeUri is missing, expected a non-empty string/);
    expect(() => imageConfig({ ...BASE, Architecture: '' })).toThrow(mismatch);
    expect(() => buildTimeoutSeconds({ ...BASE, BuildTimeoutSeconds: '0' })).toThrow(/property BuildTimeoutSeconds is "0", expected an integer from 60 to 3300.*construct and handler versions differ/);
    expect(() => buildTimeoutSeconds({ ...BASE, BuildTimeoutSeconds: 'abc' })).toThrow(mismatch);
    expect(() => buildTimeoutSeconds({ ...BASE, BuildTimeoutSeconds: undefined as any })).toThrow(/BuildTimeoutSeconds is missing/);
    expect(buildTimeoutSeconds({ ...BASE, BuildTimeoutSeconds: '600' })).toBe(600);
    expect(() => keepVersions({ ...BASE, KeepVersions: '0' })).toThrow(/property KeepVersions is "0", expected an integer from 1 to 50/);
    expect(keepVersions(BASE)).toBeUndefined();
  });

  test('only build properties decide whether a build is needed', () => {
    expect(buildChanged(BASE, { ...BASE, Tags: { a: 'b' }, BuildTimeoutSeconds: '900', KeepVersions: '3' })).toBe(false);
    expect(buildChanged(BASE, { ...BASE, CodeObjectVersion: 'v2' })).toBe(true);
    expect(buildChanged(BASE, { ...BASE, Environment: { A: '1' } })).toBe(true);
  });
});
