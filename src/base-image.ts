import { Aws, Token } from 'aws-cdk-lib';
import type { IMicroVmImage } from './image';
import { checkImage, checkPattern } from './private/validation';

/**
 * The Lambda-managed MicroVM base image a MicroVM image is built on (not your Dockerfile's `FROM`).
 */
export class BaseImage {
  /** The current Amazon Linux 2023 managed base image, latest version. */
  public static readonly AL2023 = BaseImage.managed('al2023-1');

  /**
   * A Lambda-managed base image by name, such as `al2023-1`.
   *
   * @param version pin a base image version. Leave it out to build on the latest version: the
   * library then never sends a version, because the service rejects its own resolved version
   * echoed back on update.
   */
  public static managed(name: string, version?: string): BaseImage {
    checkPattern('BaseImage.managed name', name, /^[a-zA-Z0-9-_]+$/, 1, 64, 'use a name that ListManagedMicrovmImages returns, such as al2023-1');
    return new BaseImage(`arn:${Aws.PARTITION}:lambda:${Aws.REGION}:aws:microvm-image:${name}`, version);
  }

  /** A base image by ARN. */
  public static fromArn(arn: string, version?: string): BaseImage {
    if (!Token.isUnresolved(arn) && !/^arn:[a-z0-9-]+:lambda:[a-z0-9-]*:[a-z0-9]*:microvm-image:[a-zA-Z0-9-_]+$/.test(arn)) {
      throw new Error(`BaseImage.fromArn: '${arn}' is not a MicroVM image ARN (arn:aws:lambda:<region>:aws:microvm-image:<name>): pass the imageArn that ListManagedMicrovmImages returns`);
    }
    return new BaseImage(arn, version);
  }

  /**
   * Another MicroVM image (of this app, or imported) as the base: this image builds on its
   * snapshot's file system. A MicroVmImage of the app is built first (the reference orders them).
   *
   * @param version the base image's version to build on. Default: for a MicroVmImage of this app,
   * the version its current deploy produced (`imageVersion`), so a rebuild of the base rebuilds
   * this image; for an imported image, none: the service builds on its latest active version.
   */
  public static fromImage(image: IMicroVmImage, version?: string): BaseImage {
    checkImage('BaseImage.fromImage image', image);
    return new BaseImage(image.imageArn, version ?? (image as { imageVersion?: string }).imageVersion);
  }

  private constructor(
    /** The base image ARN. */
    public readonly imageArn: string,
    /** The pinned version, if any. */
    public readonly version?: string,
  ) {
    checkPattern('base image version', version, /^[^\s]+$/, 1, 2048, 'pass a version from ListManagedMicrovmImageVersions, or none for the latest');
  }

  /** The base image ARN, with `@<version>` when one is pinned. */
  public toString(): string {
    return this.version === undefined ? this.imageArn : `${this.imageArn}@${this.version}`;
  }
}
