import * as fs from 'node:fs';
import * as path from 'node:path';
import { Aws, Stack, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3_assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';

/** Where a MicroVM image's code artifact lives once bound. */
export interface MicroVmCodeConfig {
  /** The S3 URI the service builds from (`s3://bucket/key`). */
  readonly uri: string;
  /** The bucket name. */
  readonly bucketName: string;
  /** The object key. */
  readonly objectKey: string;
  /**
   * The object version the stack expects, if one was given.
   * @default - none
   */
  readonly objectVersion?: string;
}

/**
 * The code of a MicroVM image: a zip with a Dockerfile at its root and the files it uses.
 */
export abstract class MicroVmCode {
  /**
   * A local directory with a `Dockerfile` at its root, zipped and uploaded as an S3 asset.
   * The build role may read exactly that object.
   */
  public static fromAsset(directory: string, options: s3_assets.AssetOptions = {}): MicroVmCode {
    return new AssetCode(directory, options);
  }

  /**
   * A zip already in S3 (same Region as the image).
   *
   * @param objectVersion the S3 object version you expect the build to read. The service reads
   * the object's current version: a new `objectVersion` makes the stack rebuild the image after
   * you uploaded a new one.
   */
  public static fromBucket(bucket: s3.IBucket, key: string, objectVersion?: string): MicroVmCode {
    return new BucketCode(bucket, key, objectVersion);
  }

  /**
   * Binds the code to an image, and lets `buildRole` (when given) read exactly its object.
   */
  public abstract bind(scope: Construct, buildRole?: iam.IGrantable): MicroVmCodeConfig;
}

function grantObjectRead(grantee: iam.IGrantable | undefined, bucketName: string, key: string, versioned: boolean): void {
  if (!grantee) return;
  iam.Grant.addToPrincipal({
    grantee,
    actions: versioned ? ['s3:GetObject', 's3:GetObjectVersion'] : ['s3:GetObject'],
    resourceArns: [`arn:${Aws.PARTITION}:s3:::${bucketName}/${key}`],
  });
}

class AssetCode extends MicroVmCode {
  private asset?: s3_assets.Asset;

  constructor(private readonly directory: string, private readonly options: s3_assets.AssetOptions) {
    super();
    const stat = fs.existsSync(directory) ? fs.statSync(directory) : undefined;
    if (!stat?.isDirectory()) {
      throw new Error(`MicroVmCode.fromAsset needs a directory, got '${directory}': pass the directory that holds your Dockerfile`);
    }
    if (!fs.existsSync(path.join(directory, 'Dockerfile'))) {
      throw new Error(`MicroVmCode.fromAsset: '${directory}' has no Dockerfile at its root; the service builds from <zip root>/Dockerfile: add one or point at the directory that has it`);
    }
  }

  public bind(scope: Construct, buildRole?: iam.IGrantable): MicroVmCodeConfig {
    if (!this.asset) {
      this.asset = new s3_assets.Asset(scope, 'Code', { ...this.options, path: this.directory });
    } else if (Stack.of(this.asset) !== Stack.of(scope)) {
      throw new Error(`MicroVmCode.fromAsset('${this.directory}') is already used in stack ${Stack.of(this.asset).node.path}: create one MicroVmCode per stack`);
    }
    grantObjectRead(buildRole, this.asset.s3BucketName, this.asset.s3ObjectKey, false);
    return { uri: this.asset.s3ObjectUrl, bucketName: this.asset.s3BucketName, objectKey: this.asset.s3ObjectKey };
  }
}

class BucketCode extends MicroVmCode {
  constructor(private readonly bucket: s3.IBucket, private readonly key: string, private readonly objectVersion?: string) {
    super();
    if (!Token.isUnresolved(key) && (key.length === 0 || !key.endsWith('.zip'))) {
      throw new Error(`MicroVmCode.fromBucket: key must name a .zip object, got '${key}': zip the Dockerfile directory and upload it`);
    }
  }

  public bind(_scope: Construct, buildRole?: iam.IGrantable): MicroVmCodeConfig {
    grantObjectRead(buildRole, this.bucket.bucketName, this.key, this.objectVersion !== undefined);
    return {
      uri: `s3://${this.bucket.bucketName}/${this.key}`,
      bucketName: this.bucket.bucketName,
      objectKey: this.key,
      objectVersion: this.objectVersion,
    };
  }
}
