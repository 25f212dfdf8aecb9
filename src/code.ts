import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Arn, ArnFormat, Aws, Stack, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecr_assets from 'aws-cdk-lib/aws-ecr-assets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3_assets from 'aws-cdk-lib/aws-s3-assets';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import { acknowledgeEcrAuthorizationToken } from './private/nag';

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
   * A container image in Amazon ECR, built on by a generated zip whose Dockerfile is only
   * `FROM <repository URI>:<tag>` (or `@<digest>`): the pattern AWS documents for images in ECR.
   * The build role may pull exactly this repository (ecr:BatchCheckLayerAvailability,
   * ecr:GetDownloadUrlForLayer, ecr:BatchGetImage) and get an ECR authorization token.
   *
   * The image must be for arm64 (Graviton), and the repository in the image's account (the
   * service pulls only from the public internet or ECR in the same account). The Dockerfile is
   * written at synth, so the repository's name, account and Region must be known then: a stack
   * with an explicit `env`, and a repository with a `repositoryName`.
   *
   * @param tagOrDigest a tag such as `v1.2.0`, or a digest `sha256:<64 hex digits>` (pins the content)
   * @throws if `tagOrDigest` is neither, or the repository URI is unknown at synth
   */
  public static fromEcrImage(repository: ecr.IRepository, tagOrDigest: string): MicroVmCode {
    return new EcrImageCode(repository, tagOrDigest);
  }

  /**
   * A Docker image asset (`aws-cdk-lib/aws-ecr-assets`), built and pushed by `cdk deploy`, then
   * used as with `fromEcrImage`. Build it for arm64: `platform: ecr_assets.Platform.LINUX_ARM64`.
   */
  public static fromDockerImageAsset(asset: ecr_assets.DockerImageAsset): MicroVmCode {
    return new EcrImageCode(asset.repository, asset.imageTag);
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

  constructor(protected readonly directory: string, private readonly options: s3_assets.AssetOptions) {
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

/** A tag (Docker's grammar) or a digest. */
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * An ECR image behind a generated thin zip (`FROM <uri>`). The zip is an ordinary S3 asset, so
 * a new tag or digest is a new object and rebuilds the image.
 */
class EcrImageCode extends MicroVmCode {
  private readonly codes = new Map<Stack, AssetCode>();

  constructor(private readonly repository: ecr.IRepository, private readonly tagOrDigest: string) {
    super();
    if (!Token.isUnresolved(tagOrDigest) && !TAG.test(tagOrDigest) && !DIGEST.test(tagOrDigest)) {
      throw new Error('MicroVmCode.fromEcrImage: tagOrDigest must be a tag (1-128 letters, digits, \'_\', \'.\', \'-\', not starting with \'.\' or \'-\') ' +
        `or a digest sha256:<64 hex digits>, got '${tagOrDigest}': pass the tag or digest only, not the repository URI`);
    }
  }

  public bind(scope: Construct, buildRole?: iam.IGrantable): MicroVmCodeConfig {
    const stack = Stack.of(scope);
    let code = this.codes.get(stack);
    if (!code) {
      code = new AssetCode(thinZipDirectory(`FROM ${this.imageUri(stack)}\n`), {});
      this.codes.set(stack, code);
    }
    if (buildRole) {
      // ecr.IRepository.grantPull: the three pull actions on exactly this repository, and
      // ecr:GetAuthorizationToken on `*` (it has no resource type in IAM: the token is per registry).
      this.repository.grantPull(buildRole);
      if (Construct.isConstruct(buildRole)) acknowledgeEcrAuthorizationToken(buildRole);
    }
    return code.bind(scope, buildRole);
  }

  /** `<account>.dkr.ecr.<region>.<domain>/<name>:<tag>` or `@<digest>`, as literal text. */
  private imageUri(stack: Stack): string {
    const name = this.repository.repositoryName;
    // A repository imported by a literal ARN is where its ARN says; any other is in its env.
    const repositoryArn = this.repository.repositoryArn;
    const literalArn = Token.isUnresolved(repositoryArn) ? undefined : Arn.split(repositoryArn, ArnFormat.SLASH_RESOURCE_NAME);
    const account = literalArn?.account ?? this.repository.env.account;
    const region = literalArn?.region ?? this.repository.env.region;
    const unknown = [['repository name', name], ['account', account], ['Region', region], ['tag or digest', this.tagOrDigest]]
      .filter(([, v]) => Token.isUnresolved(v)).map(([what]) => what);
    if (unknown.length) {
      throw new Error(`MicroVmCode.fromEcrImage: the Dockerfile (FROM <repository URI>) is written at synth, but the ${unknown.join(', ')} ` +
        `of repository ${this.repository.node.path} is only known at deploy time: give the stack an explicit env (account and Region) ` +
        'and import the repository by name (ecr.Repository.fromRepositoryName: a repository created in the stack is empty when the image builds)');
    }
    if (!Token.isUnresolved(stack.account) && account !== stack.account) {
      throw new Error(`MicroVmCode.fromEcrImage: repository ${name} is in account ${account}, the image in ${stack.account}: ` +
        'the service pulls container images only from the public internet or ECR in the image\'s own account: replicate the image into this account');
    }
    const domain = RegionInfo.get(region).domainSuffix ?? 'amazonaws.com';
    const ref = DIGEST.test(this.tagOrDigest) ? `@${this.tagOrDigest}` : `:${this.tagOrDigest}`;
    return `${account}.dkr.ecr.${region}.${domain}/${name}${ref}`;
  }
}

/**
 * A directory holding only a Dockerfile with `content`, named by its hash so that every synth
 * of the same content finds the same directory (and the asset hash stays stable).
 */
function thinZipDirectory(content: string): string {
  const hash = crypto.createHash('sha256').update(content).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), 'cdk-lambda-microvms-thin-zip', hash);
  const dockerfile = path.join(dir, 'Dockerfile');
  if (!fs.existsSync(dockerfile) || fs.readFileSync(dockerfile, 'utf8') !== content) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(dockerfile, content);
  }
  return dir;
}
