import { CustomResource, Fn, IResource, RemovalPolicy, Resource, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { IMicroVmImage, MicroVmImage } from './image';
import { acknowledgeWildcards } from './private/nag';
import { imageNameOf, MicroVmsProvider, PROVIDER_TOTAL_TIMEOUT } from './private/provider';
import { checkImage, checkPattern } from './private/validation';
import { HANDLER_ROLE_ARN, ImageVersionAttr, ImageVersionProps, ResourceType } from './private/wire';

/** Whether an image version may launch new MicroVMs. */
export class MicroVmImageVersionStatus {
  /** May launch new MicroVMs (Lambda's default for a new version). */
  public static readonly ACTIVE = new MicroVmImageVersionStatus('ACTIVE');
  /** Blocked from launching new MicroVMs. */
  public static readonly INACTIVE = new MicroVmImageVersionStatus('INACTIVE');

  private constructor(
    /** The service's name for it: `ACTIVE` or `INACTIVE`. */
    public readonly name: string,
  ) {}

  /** The service's name: `ACTIVE` or `INACTIVE`. */
  public toString(): string {
    return this.name;
  }
}

/** One version of a MicroVM image, adopted here or imported. */
export interface IMicroVmImageVersion extends IResource {
  /** The image the version belongs to. */
  readonly image: IMicroVmImage;
  /**
   * The version, e.g. `2.0` (what RunMicrovm takes as `imageVersion`).
   * @attribute
   */
  readonly imageVersion: string;
  /**
   * The version-qualified image ARN: `<image arn>:<version>`.
   * @attribute
   */
  readonly imageVersionArn: string;

  /**
   * Grants RunMicrovm from this version's image (IAM cannot narrow RunMicrovm to one version),
   * lambda:PassNetworkConnector on the connectors it uses, and iam:PassRole on exactly
   * `executionRole` when given.
   */
  grantRun(grantee: iam.IGrantable, executionRole?: iam.IRole): iam.Grant;
}

/** What an image version is imported by. */
export interface MicroVmImageVersionAttributes {
  /** The image. */
  readonly image: IMicroVmImage;
  /** The version, e.g. `2.0`. */
  readonly imageVersion: string;
}

/** Properties of a MicroVmImageVersion. */
export interface MicroVmImageVersionProps {
  /** The image. */
  readonly image: IMicroVmImage;
  /**
   * The version to adopt, e.g. `2.0`. Pinning one keeps it deployed while the image moves on.
   * @default - the version the image's current deploy produced (`MicroVmImage.imageVersion`);
   * required for an imported image
   */
  readonly imageVersion?: string;
  /**
   * Whether the version may launch new MicroVMs.
   * @default MicroVmImageVersionStatus.ACTIVE
   */
  readonly status?: MicroVmImageVersionStatus;
  /**
   * What happens to the version when the resource leaves the stack (or moves to another version).
   * RETAIN leaves it (the image's `keepVersions` can prune it later); DESTROY deletes it, unless
   * the service refuses (MicroVMs still run from it, or it is the image's last version): then it is
   * left in place and the delete succeeds. Either way the pin is released.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * One version of a Lambda MicroVM image, as a resource: the deploy waits until the version is
 * SUCCESSFUL (and fails with each build's reason if it FAILED), sets its status (ACTIVE or
 * INACTIVE), and pins it so that the image's `keepVersions` pruning never deletes it.
 *
 * @resource Custom::LambdaMicroVmImageVersion
 */
export class MicroVmImageVersion extends Resource implements IMicroVmImageVersion {
  /** Imports a version of an image. */
  public static fromVersionAttributes(scope: Construct, id: string, attrs: MicroVmImageVersionAttributes): IMicroVmImageVersion {
    checkImage(`MicroVmImageVersion.fromVersionAttributes(${id}) image`, attrs.image);
    checkVersion(attrs.imageVersion);
    class Import extends Resource implements IMicroVmImageVersion {
      public readonly image = attrs.image;
      public readonly imageVersion = attrs.imageVersion;
      public readonly imageVersionArn = `${attrs.image.imageArn}:${attrs.imageVersion}`;
      public grantRun(grantee: iam.IGrantable, executionRole?: iam.IRole): iam.Grant {
        return this.image.grantRun(grantee, executionRole);
      }
    }
    return new Import(scope, id, { environmentFromArn: attrs.image.imageArn });
  }

  public readonly image: IMicroVmImage;
  public readonly imageVersion: string;
  public readonly imageVersionArn: string;
  /**
   * The version's state (SUCCESSFUL once deployed).
   * @attribute
   */
  public readonly versionState: string;
  /**
   * The version's status: ACTIVE or INACTIVE.
   * @attribute
   */
  public readonly versionStatus: string;
  /**
   * The ids of the version's builds, one per architecture and chipset generation.
   * @attribute
   */
  public readonly buildIds: string[];
  /**
   * The memory snapshot size in bytes (the largest across the version's builds).
   * @attribute
   */
  public readonly memorySnapshotSizeBytes: number;
  /**
   * The disk snapshot size in bytes (the largest across the version's builds).
   * @attribute
   */
  public readonly diskSnapshotSizeBytes: number;
  /**
   * The installed code size in bytes (the largest across the version's builds).
   * @attribute
   */
  public readonly codeInstallSizeBytes: number;

  private readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: MicroVmImageVersionProps) {
    super(scope, id);
    checkImage(`MicroVmImageVersion ${this.node.path} image`, props.image);
    const version = props.imageVersion ?? (props.image instanceof MicroVmImage ? props.image.imageVersion : undefined);
    if (version === undefined) {
      throw new Error(`MicroVmImageVersion ${this.node.path}: imageVersion is required for an imported image: pass the version to adopt, e.g. imageVersion: '2.0'`);
    }
    checkVersion(version);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    if (removalPolicy !== RemovalPolicy.RETAIN && removalPolicy !== RemovalPolicy.DESTROY) {
      throw new Error(`MicroVmImageVersion ${this.node.path}: removalPolicy must be RemovalPolicy.RETAIN or RemovalPolicy.DESTROY, got ${removalPolicy}: image versions have no snapshot to take`);
    }
    this.image = props.image;

    const provider = MicroVmsProvider.getOrCreate(this);
    const handlerRole = provider.handlerRole(this, {
      identity: ['image-version', imageNameOf(props.image.imageArn)],
      statements: [
        new iam.PolicyStatement({
          actions: [
            'lambda:GetMicrovmImageVersion', 'lambda:UpdateMicrovmImageVersion',
            'lambda:ListMicrovmImageBuilds', 'lambda:GetMicrovmImageBuild',
            ...(removalPolicy === RemovalPolicy.DESTROY ? ['lambda:DeleteMicrovmImageVersion'] : []),
            // The pin is a tag on the image: read (ListTags), set and removed by this handler.
            'lambda:ListTags', 'lambda:TagResource', 'lambda:UntagResource',
          ],
          // The image (tags) and its version-qualified ARNs (<image arn>:<version>, and builds under
          // it): IAM does not document which of them each version action is authorized on.
          resources: [props.image.imageArn, `${props.image.imageArn}:*`],
        }),
        new iam.PolicyStatement({
          // ListMicrovms has no resource type in IAM; it is filtered by this image in the call
          // (only to name the MicroVMs that keep a version from being deleted).
          actions: ['lambda:ListMicrovms'],
          resources: ['*'],
        }),
      ],
      description: 'the handler of a MicroVM image version',
    });
    const wire: ImageVersionProps = {
      ImageArn: props.image.imageArn,
      ImageVersion: version,
      Status: (props.status ?? MicroVmImageVersionStatus.ACTIVE).name,
      RemovalPolicy: removalPolicy === RemovalPolicy.DESTROY ? 'destroy' : 'retain',
    };
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: ResourceType.IMAGE_VERSION,
      properties: { ...wire, [HANDLER_ROLE_ARN]: handlerRole.roleArn } as any,
      // Always Delete in CloudFormation: the handler must see the Delete to release the pin; it
      // honours `removalPolicy` itself (the RemovalPolicy property).
      removalPolicy: RemovalPolicy.DESTROY,
      serviceTimeout: PROVIDER_TOTAL_TIMEOUT,
    });
    acknowledgeWildcards(handlerRole, 'ListMicrovms has no IAM resource type, so only * matches it; the other statement is scoped to this image and its own version-qualified ARNs (<image arn>:*).',
      '*', `${props.image.imageArn}:*`);

    this.imageVersion = this.resource.getAttString(ImageVersionAttr.IMAGE_VERSION);
    this.imageVersionArn = this.resource.getAttString(ImageVersionAttr.IMAGE_VERSION_ARN);
    this.versionState = this.resource.getAttString(ImageVersionAttr.VERSION_STATE);
    this.versionStatus = this.resource.getAttString(ImageVersionAttr.VERSION_STATUS);
    this.buildIds = Fn.split(',', this.resource.getAttString(ImageVersionAttr.BUILD_IDS));
    this.memorySnapshotSizeBytes = Token.asNumber(this.resource.getAtt(ImageVersionAttr.MEMORY_SNAPSHOT_SIZE_BYTES));
    this.diskSnapshotSizeBytes = Token.asNumber(this.resource.getAtt(ImageVersionAttr.DISK_SNAPSHOT_SIZE_BYTES));
    this.codeInstallSizeBytes = Token.asNumber(this.resource.getAtt(ImageVersionAttr.CODE_INSTALL_SIZE_BYTES));
  }

  public grantRun(grantee: iam.IGrantable, executionRole?: iam.IRole): iam.Grant {
    return this.image.grantRun(grantee, executionRole);
  }
}

function checkVersion(version: string): void {
  checkPattern('imageVersion', version, /^[^\s]+$/, 1, 2048, "pass a version the image has, e.g. '2.0'");
}
