import { Duration, RemovalPolicy, TagManager, Token } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IConstruct } from 'constructs';
import { ManagedNetworkConnector, NetworkConnectorDirection } from '../managed-connectors';

/**
 * Synth-time checks. Each message names the property, the value, what is allowed and the fix.
 * Unresolved tokens are skipped: their values are only known at deploy time.
 */
export function checkRange(prop: string, value: number | undefined, min: number, max: number, fix: string): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${prop} must be an integer from ${min} to ${max}, got ${value}: ${fix}`);
  }
}

export function checkPattern(prop: string, value: string | undefined, pattern: RegExp, minLength: number, maxLength: number, fix: string): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (value.length < minLength || value.length > maxLength || !pattern.test(value)) {
    throw new Error(`${prop} must be ${minLength} to ${maxLength} characters matching ${pattern}, got '${value}' (${value.length} characters): ${fix}`);
  }
}

export function checkMaxItems(prop: string, items: readonly unknown[] | undefined, max: number, fix: string, min = 0): void {
  if (items === undefined || Token.isUnresolved(items)) return;
  if (items.length > max || items.length < min) {
    throw new Error(`${prop} takes ${min === 0 ? 'at most' : `${min} to`} ${max} item(s), got ${items.length}: ${fix}`);
  }
}

export function checkOneOf<T>(prop: string, value: T | undefined, allowed: readonly T[], fix: string): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!allowed.includes(value)) {
    throw new Error(`${prop} must be one of ${allowed.join(', ')}, got ${String(value)}: ${fix}`);
  }
}

/**
 * A Duration as whole seconds in [min, max]. `Duration.millis(500)` would make aws-cdk-lib throw
 * its own error without the property's name: this one names it.
 */
export function checkDurationSeconds(prop: string, value: Duration | undefined, min: number, max: number, fix: string): void {
  if (value === undefined) return;
  const seconds = value.toSeconds({ integral: false });
  if (Token.isUnresolved(seconds)) return;
  if (!Number.isInteger(seconds) || seconds < min || seconds > max) {
    throw new Error(`${prop} must be a whole number of seconds from ${min} to ${max}, got ${value.toHumanString()} (${seconds} seconds): ${fix}`);
  }
}

/** CloudFormation and CloudWatch Logs: a log stream name is 1-512 characters without ':' or '*'. */
export function checkLogStreamName(prop: string, value: string | undefined): void {
  checkPattern(prop, value, /^[^:*]+$/, 1, 512, "CloudWatch Logs stream names cannot contain ':' or '*': pick another name, or leave it out to let the service name the streams");
}

/** The maximum number of tags, and the key and value lengths, of a Lambda resource (TagResource). */
const MAX_TAGS = 50;
const MAX_TAG_KEY = 128;
const MAX_TAG_VALUE = 256;

/**
 * Tags as TagResource takes them: at most 50, keys 1-128 characters not starting with `aws:`
 * (reserved for AWS), values at most 256 characters.
 */
export function checkTags(prop: string, tags: { [key: string]: string } | undefined): void {
  if (tags === undefined || Token.isUnresolved(tags)) return;
  const keys = Object.keys(tags);
  checkMaxItems(prop, keys, MAX_TAGS, `a Lambda resource takes at most ${MAX_TAGS} tags: drop or merge some`);
  for (const [key, value] of Object.entries(tags)) {
    if (Token.isUnresolved(key)) continue;
    checkPattern(`${prop} key`, key, /^[\s\S]+$/, 1, MAX_TAG_KEY, `shorten the key to ${MAX_TAG_KEY} characters`);
    if (key.toLowerCase().startsWith('aws:')) {
      throw new Error(`${prop} key '${key}' starts with 'aws:', a prefix reserved for tags AWS sets: rename the key (any other prefix is allowed)`);
    }
    checkPattern(`${prop} '${key}' value`, value, /^[\s\S]*$/, 0, MAX_TAG_VALUE, `shorten the value to ${MAX_TAG_VALUE} characters`);
  }
}

/**
 * Removal policies a custom resource of this library takes: SNAPSHOT is for resources
 * CloudFormation can snapshot (databases, volumes), and a custom resource is none of them.
 */
export function checkRemovalPolicy(prop: string, value: RemovalPolicy | undefined, what: string): void {
  if (value === undefined) return;
  const allowed = [RemovalPolicy.DESTROY, RemovalPolicy.RETAIN, RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE];
  if (!allowed.includes(value)) {
    throw new Error(`${prop} must be RemovalPolicy.DESTROY, RETAIN or RETAIN_ON_UPDATE_OR_DELETE, got ${value}: ${what} has no snapshot CloudFormation could take`);
  }
}

/**
 * jsii languages type-check interfaces loosely: from Python, an L1 `CfnMicrovmImage` (or any
 * object) passes where an `IMicroVmImage` is expected and renders `undefined:*` into policies.
 */
export function checkImage(prop: string, image: { readonly imageArn?: unknown } | undefined): void {
  if (image === undefined) return;
  if (lambda.CfnMicrovmImage.isCfnMicrovmImage(image)) {
    throw new Error(`${prop}: got the L1 CfnMicrovmImage ${(image as unknown as IConstruct).node.path}, which is not an IMicroVmImage: ` +
      "import it with MicroVmImage.fromImageArn(scope, 'Image', cfnImage.attrImageArn) and pass that");
  }
  if (typeof image.imageArn !== 'string') {
    throw new Error(`${prop}: got an object without an imageArn string, which is not an IMicroVmImage: pass a MicroVmImage, or import one with MicroVmImage.fromImageArn`);
  }
}

/**
 * Checks the tags as rendered at synth, `Tags.of()` included (aspects run before validations).
 */
export function addTagValidation(scope: IConstruct, tags: TagManager): void {
  scope.node.addValidation({
    validate: () => {
      try {
        checkTags(`tags of ${scope.node.path}`, tags.renderTags());
        return [];
      } catch (e) {
        return [(e as Error).message];
      }
    },
  });
}

/** An AWS-managed connector's ARN, with its name (`...:aws:network-connector:aws-network-connector:<NAME>`). */
const MANAGED_CONNECTOR_ARN = /:aws:network-connector:aws-network-connector:([A-Z0-9_]+)$/;

/**
 * Egress connectors must be egress: an AWS-managed ingress connector (ALL_INGRESS, NO_INGRESS,
 * SHELL_INGRESS, HTTP_INGRESS or any `*_INGRESS`) is refused, whether it comes from
 * `ManagedNetworkConnector.refIn` or as a literal ARN.
 */
export function checkEgressConnectors(prop: string, connectors: readonly lambda.INetworkConnectorRef[] | undefined): void {
  for (const c of connectors ?? []) {
    const arn = c.networkConnectorRef.networkConnectorArn;
    const literal = Token.isUnresolved(arn) ? undefined : MANAGED_CONNECTOR_ARN.exec(arn)?.[1];
    const managed = ManagedNetworkConnector.fromRef(c);
    const name = managed
      ? (managed.direction === NetworkConnectorDirection.INGRESS ? managed.connectorName : undefined)
      : (literal?.endsWith('_INGRESS') ? literal : undefined);
    if (name) {
      throw new Error(`${prop}: ${name} is an INGRESS connector: pass it in the fleet's \`ingress\` (as ManagedNetworkConnector.${name}), ` +
        'and only egress connectors (a NetworkConnector, or ManagedNetworkConnector.INTERNET_EGRESS.refIn(this)) here');
    }
  }
}
