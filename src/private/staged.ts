import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Annotations, AssetHashType } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { StagedPropertiesWire, STAGED_PROPERTY_NAMES } from './wire';

/** The construct id of the asset that holds a resource's staged properties. */
const STAGED_ID = 'StagedProperties';

/** A resource's sensitive values, staged as an S3 object of the stack's file assets. */
export interface StagedProperties {
  /** The `StagedProperties` property of the custom resource: the object's bucket and key. */
  readonly wire: StagedPropertiesWire;
  /** s3:GetObject on exactly that object, for the resource's handler role. */
  readonly statement: iam.PolicyStatement;
  /**
   * A path segment of the handler role made of the object's content hash: new values make a new
   * role, so the old role, which may read the old object, stays until CloudFormation's cleanup or
   * rollback (an Update back to the old values reads the old object) is done.
   */
  readonly roleIdentity: string;
}

/**
 * Writes `values` (wire properties, JSON) into a file and stages it as a file asset of the stack
 * (aws-s3-assets: the CLI uploads it to the bootstrap bucket at deploy time). The asset hash is the
 * SHA-256 of the content, so the key changes exactly when a value does and CloudFormation then
 * sends an Update. The values are in the cloud assembly (`cdk.out`) and the asset bucket, never in
 * the template.
 *
 * No KMS grant is needed: the bootstrap bucket is encrypted with the AWS managed key aws/s3 or with
 * the bootstrap's own key, whose policy lets every principal of the account decrypt through S3.
 */
export function stageProperties(scope: Construct, values: Record<string, unknown>): StagedProperties {
  for (const name of Object.keys(values)) {
    if (!STAGED_PROPERTY_NAMES.includes(name)) throw new Error(`internal: ${name} is not a property the handlers read from StagedProperties`);
  }
  const content = JSON.stringify(values);
  const hash = createHash('sha256').update(content).digest('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk-lambda-microvms-staged-'));
  const file = path.join(dir, 'properties.json');
  fs.writeFileSync(file, content, { mode: 0o600 });
  const asset = new s3assets.Asset(scope, STAGED_ID, { path: file, assetHash: hash, assetHashType: AssetHashType.CUSTOM });
  // Staged: the asset is a copy in the cloud assembly; the temporary file can go. With staging
  // disabled (`aws:cdk:disable-asset-staging`, as SAM sets it) the asset is the file itself.
  if (asset.assetPath !== file) fs.rmSync(dir, { recursive: true, force: true });
  return {
    wire: { Bucket: asset.s3BucketName, Key: asset.s3ObjectKey },
    statement: new iam.PolicyStatement({
      // The handler reads the values of this resource's current deploy.
      actions: ['s3:GetObject'],
      resources: [asset.bucket.arnForObjects(asset.s3ObjectKey)],
    }),
    roleIdentity: `staged-${asset.assetHash.slice(0, 16)}`,
  };
}

/**
 * The warning for values that cannot be staged: they are only known at deploy time, so they are
 * resource properties, which CloudFormation events and the Provider framework's waiter execution
 * history (and, on a local deploy, the framework functions' logs) show.
 */
export function warnUnstaged(scope: Construct, id: string, what: string, fix: string): void {
  Annotations.of(scope).addWarningV2(`cdk-lambda-microvms:${id}`,
    `${what} holds a token (a value known only at deploy time), so it cannot be staged as an asset object at synth: it travels in the ` +
    'custom resource\'s properties, which the template, CloudFormation events and the Provider framework\'s Step Functions execution ' +
    `history show (README "What is in the template"). ${fix}`);
}
