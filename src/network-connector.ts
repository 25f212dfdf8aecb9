import {
  ArnFormat,
  CustomResource,
  Duration,
  IResource,
  ITaggable,
  Lazy,
  Names,
  RemovalPolicy,
  Resource,
  Stack,
  TagManager,
  TagType,
  Token,
} from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { grantOnResourceAndVersions } from './private/grants';
import { acknowledgeWildcards } from './private/nag';
import { MicroVmsProvider, PROVIDER_TOTAL_TIMEOUT } from './private/provider';
import { addTagValidation, checkMaxItems, checkPattern, checkRemovalPolicy, checkTags } from './private/validation';
import { CONNECTOR_TIMEOUT_SECONDS, HANDLER_ROLE_ARN, NetworkConnectorAttr, NetworkConnectorProps as NetworkConnectorWire, ResourceType } from './private/wire';

const NAME_PATTERN = /^[a-zA-Z0-9_-]+$/;
/** Provisioning "typically takes up to 10 minutes"; the handler gives up well within the hour CloudFormation allows. */
const CONNECTOR_TIMEOUT = Duration.seconds(CONNECTOR_TIMEOUT_SECONDS);
/** The compute type this library's connectors serve. */
const COMPUTE_TYPE_MICRO_VM = 'MicroVm';
/** The principal the Lambda service uses to assume a connector's operator role (see createOperatorRole). */
const OPERATOR_ROLE_PRINCIPAL = 'lambda.amazonaws.com';
/** The value EC2 sees in ec2:ManagedResourceOperator for the network interfaces a connector manages. */
const MANAGED_RESOURCE_OPERATOR = 'network-connectors.lambda.amazonaws.com';

/** A Lambda network connector, created here or imported. */
export interface INetworkConnector extends IResource, lambda.INetworkConnectorRef, ec2.IConnectable {
  /**
   * The connector's unqualified ARN (`arn:...:network-connector:<id>`).
   * @attribute
   */
  readonly networkConnectorArn: string;
  /**
   * The connector's service-assigned id (the last segment of its ARN).
   * @attribute
   */
  readonly networkConnectorId: string;

  /** Grants `actions` on this connector (and its versions) to `grantee`. */
  grant(grantee: iam.IGrantable, ...actions: string[]): iam.Grant;

  /** Grants lambda:PassNetworkConnector: attaching this connector to an image or a MicroVM. */
  grantPass(grantee: iam.IGrantable): iam.Grant;

  /** Grants reading the connector and its tags. */
  grantRead(grantee: iam.IGrantable): iam.Grant;
}

/** What a connector is imported by. */
export interface NetworkConnectorAttributes {
  /** The connector's unqualified ARN. */
  readonly networkConnectorArn: string;
  /**
   * The security groups of the connector's network interfaces, so `connections` can open paths
   * from them.
   * @default - none: reading `connections` throws
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
}

/** Shared by created and imported connectors. */
export abstract class NetworkConnectorBase extends Resource implements INetworkConnector {
  public abstract readonly networkConnectorArn: string;
  public abstract readonly networkConnectorId: string;
  public abstract readonly connections: ec2.Connections;

  public get networkConnectorRef(): lambda.NetworkConnectorReference {
    return { networkConnectorArn: this.networkConnectorArn };
  }

  public grant(grantee: iam.IGrantable, ...actions: string[]): iam.Grant {
    return grantOnResourceAndVersions(grantee, actions, this.networkConnectorArn);
  }

  public grantPass(grantee: iam.IGrantable): iam.Grant {
    return this.grant(grantee, 'lambda:PassNetworkConnector');
  }

  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return this.grant(grantee, 'lambda:GetNetworkConnector', 'lambda:ListTags');
  }
}

/** Properties of a NetworkConnector. */
export interface NetworkConnectorProps {
  /** The VPC the connector's network interfaces live in. */
  readonly vpc: ec2.IVpc;
  /**
   * The subnets to place network interfaces in: 1 to 16, in the VPC. Pick subnets in the
   * Availability Zones of what the MicroVMs must reach.
   * @default - the VPC's default selection (its private subnets)
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * The security groups of the network interfaces: 1 to 5. Their outbound rules decide what the
   * MicroVMs reach; the connector only initiates connections, so inbound rules do not matter.
   * @default - one security group with no outbound rules: open paths with `connections.allowTo`
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /**
   * The IP protocol of the network interfaces.
   * @default lambda.NetworkConnectorProtocol.IPV4
   */
  readonly networkProtocol?: lambda.NetworkConnectorProtocol;
  /**
   * The role the Lambda service assumes to create the connector's network interfaces. A role you
   * pass is not modified: it must trust lambda.amazonaws.com and carry the permissions of the AWS
   * managed policy AWSLambdaNetworkConnectorOperatorPolicy (or narrower ones, like the default
   * role's). Use a role dedicated to connectors.
   * @default - a role trusted by lambda.amazonaws.com that may create network interfaces only in
   * the selected subnets with the connector's security groups
   */
  readonly operatorRole?: iam.IRole;
  /**
   * Place the network interfaces in public subnets. The connector's interfaces get no public IP
   * addresses, so from a public subnet MicroVMs reach neither the internet nor anything through an
   * internet gateway: like aws-cdk-lib's Lambda functions, the connector refuses public subnets
   * unless you set this.
   * @default false
   */
  readonly allowPublicSubnet?: boolean;
  /**
   * The connector name: 1-64 letters, digits, hyphens and underscores, unique in the account and
   * Region. Changing it replaces the connector.
   * @default - a stable name derived from the construct path
   */
  readonly networkConnectorName?: string;
  /**
   * Tags on the connector. `Tags.of()` works too; a tags-only change never touches the network
   * interfaces.
   * @default - none
   */
  readonly tags?: { [key: string]: string };
  /**
   * What happens to the connector (and the role and security group created for it) when it
   * leaves the stack.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A Lambda network connector for MicroVMs: network interfaces in your subnets, behind your
 * security groups, through which MicroVMs reach private resources (databases, caches, internal
 * APIs). Pass it as an egress connector of a MicroVmImage or a fleet, and open paths with
 * `connector.connections.allowTo(database, ec2.Port.tcp(5432))`.
 *
 * @resource Custom::LambdaNetworkConnector
 */
export class NetworkConnector extends NetworkConnectorBase implements ITaggable {
  /** Imports a connector by its unqualified ARN. */
  public static fromNetworkConnectorArn(scope: Construct, id: string, networkConnectorArn: string): INetworkConnector {
    return NetworkConnector.fromNetworkConnectorAttributes(scope, id, { networkConnectorArn });
  }

  /** Imports a connector. */
  public static fromNetworkConnectorAttributes(scope: Construct, id: string, attrs: NetworkConnectorAttributes): INetworkConnector {
    const arn = attrs.networkConnectorArn;
    if (!Token.isUnresolved(arn) && !/^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:network-connector:[a-zA-Z0-9_-]+$/.test(arn)) {
      throw new Error(`NetworkConnector.fromNetworkConnectorAttributes(${id}): networkConnectorArn must be an unqualified connector ARN ` +
        `like arn:aws:lambda:us-east-1:123456789012:network-connector:nc-0123abcd, got '${arn}': drop any :<version> suffix`);
    }
    const connectorId = Stack.of(scope).splitArn(arn, ArnFormat.COLON_RESOURCE_NAME).resourceName!;
    class Import extends NetworkConnectorBase {
      public readonly networkConnectorArn = arn;
      public readonly networkConnectorId = connectorId;
      private readonly _connections = attrs.securityGroups ? new ec2.Connections({ securityGroups: attrs.securityGroups }) : undefined;

      public get connections(): ec2.Connections {
        if (!this._connections) {
          throw new Error(`imported network connector ${id} has no security groups: pass securityGroups to NetworkConnector.fromNetworkConnectorAttributes to use connections`);
        }
        return this._connections;
      }
    }
    return new Import(scope, id, { environmentFromArn: Token.isUnresolved(arn) ? undefined : arn });
  }

  public readonly networkConnectorArn: string;
  public readonly networkConnectorId: string;
  /**
   * The connector name.
   * @attribute
   */
  public readonly networkConnectorName: string;
  /** The network interfaces' security groups. `allowTo` opens egress paths. */
  public readonly connections: ec2.Connections;
  /** The role the Lambda service assumes to manage the network interfaces. */
  public readonly operatorRole: iam.IRole;
  /** The security group created when none was given. */
  public readonly securityGroup?: ec2.ISecurityGroup;
  public readonly tags: TagManager;

  private readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: NetworkConnectorProps) {
    super(scope, id);
    const name = props.networkConnectorName ?? Names.uniqueResourceName(this, { maxLength: 64, separator: '-' });
    checkPattern('networkConnectorName', name, NAME_PATTERN, 1, 64, 'use letters, digits, hyphens and underscores only');
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;
    const protocol = props.networkProtocol ?? lambda.NetworkConnectorProtocol.IPV4;

    const subnetIds = props.vpc.selectSubnets(props.vpcSubnets).subnetIds;
    checkMaxItems('vpcSubnets', subnetIds, 16, 'select 1 to 16 subnets of the VPC (for example one per Availability Zone)', 1);
    if (!props.allowPublicSubnet) {
      const publicIds = new Set(props.vpc.publicSubnets.map((sn) => sn.subnetId));
      const chosen = subnetIds.filter((sid) => publicIds.has(sid));
      if (chosen.length) {
        throw new Error(`vpcSubnets: NetworkConnector ${this.node.path} would place network interfaces in public subnets (${chosen.join(', ')}), ` +
          'where they get no public IP, so MicroVMs reach nothing through the internet gateway: select private subnets ' +
          '(vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }), or set allowPublicSubnet: true if you only reach resources inside the VPC');
      }
    }
    checkTags('tags', props.tags);
    checkRemovalPolicy('removalPolicy', props.removalPolicy, 'a network connector');

    if (props.securityGroups) {
      checkMaxItems('securityGroups', props.securityGroups, 5, 'pass 1 to 5 security groups; with none, the network interfaces would fall back to the VPC\'s default security group', 1);
    }
    const securityGroups = props.securityGroups ?? [this.createSecurityGroup(props.vpc, protocol, removalPolicy)];
    this.securityGroup = props.securityGroups ? undefined : securityGroups[0];
    this.connections = new ec2.Connections({ securityGroups });

    this.operatorRole = props.operatorRole ?? this.createOperatorRole(subnetIds, securityGroups, removalPolicy);
    this.tags = new TagManager(TagType.MAP, ResourceType.NETWORK_CONNECTOR, props.tags);
    addTagValidation(this, this.tags);

    const provider = MicroVmsProvider.getOrCreate(this);
    const handlerRole = provider.handlerRole(this, {
      identity: ['network-connector', name],
      statements: this.providerStatements(),
      description: `the handler of network connector ${name}`,
    });
    const wire: NetworkConnectorWire = {
      Name: name,
      SubnetIds: subnetIds,
      SecurityGroupIds: securityGroups.map((sg) => sg.securityGroupId),
      NetworkProtocol: protocol,
      ComputeType: COMPUTE_TYPE_MICRO_VM,
      OperatorRoleArn: this.operatorRole.roleArn,
      Tags: Lazy.any({ produce: () => this.tags.renderTags() }) as any,
      TimeoutSeconds: String(CONNECTOR_TIMEOUT.toSeconds()),
    };
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: ResourceType.NETWORK_CONNECTOR,
      properties: { ...wire, [HANDLER_ROLE_ARN]: handlerRole.roleArn } as any,
      removalPolicy,
      serviceTimeout: PROVIDER_TOTAL_TIMEOUT,
    });
    // The role's policy must exist before the service checks the role (on create and update).
    this.resource.node.addDependency(this.operatorRole);
    const connectors = this.connectorsPattern();
    const serviceLinkedRoles = `arn:${Stack.of(this).partition}:iam::${Stack.of(this).account}:role/aws-service-role/${MANAGED_RESOURCE_OPERATOR}/*`;
    acknowledgeWildcards(handlerRole, 'A connector\'s id (the last segment of its ARN) is assigned by the service at creation, so the policy, which must ' +
      'exist before, covers network-connector:* in this account and Region (and their versions); EC2 Describe* actions have no resource-level ' +
      'permissions (*); iam:CreateServiceLinkedRole is limited to the network connectors service\'s own service-linked roles, whose names the service picks.', connectors, `${connectors}:*`, '*', serviceLinkedRoles);

    this.networkConnectorArn = this.resource.getAttString(NetworkConnectorAttr.NETWORK_CONNECTOR_ARN);
    this.networkConnectorId = this.resource.getAttString(NetworkConnectorAttr.NETWORK_CONNECTOR_ID);
    this.networkConnectorName = this.resource.getAttString(NetworkConnectorAttr.NETWORK_CONNECTOR_NAME);
  }

  private createSecurityGroup(vpc: ec2.IVpc, protocol: lambda.NetworkConnectorProtocol, removalPolicy: RemovalPolicy): ec2.SecurityGroup {
    const sg = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc,
      description: 'Lambda network connector: no egress until opened with connections.allowTo',
      allowAllOutbound: false,
      allowAllIpv6Outbound: protocol === lambda.NetworkConnectorProtocol.DUAL_STACK ? false : undefined,
    });
    sg.applyRemovalPolicy(removalPolicy);
    return sg;
  }

  /**
   * The default operator role.
   *
   * Trust: `lambda.amazonaws.com`, unconditioned. Sources disagree on the principal (Terraform's
   * tests and Pulumi's docs use network-connectors.lambda.amazonaws.com); we follow what AWS
   * itself ships (the SAM transform for AWS::Serverless::NetworkConnector and aws-cdk-lib's
   * NetworkConnector) and what CloudTrail shows assuming the role. The service presents no
   * source account or ARN, so aws:SourceAccount/aws:SourceArn conditions would break creation.
   *
   * Permissions: those of AWSLambdaNetworkConnectorOperatorPolicy, narrowed from any subnet and
   * security group in any Region to exactly this connector's subnets and security groups in this
   * Region. The service deletes and describes its network interfaces itself (the managed policy
   * grants neither).
   */
  private createOperatorRole(subnetIds: string[], securityGroups: ec2.ISecurityGroup[], removalPolicy: RemovalPolicy): iam.Role {
    const stack = Stack.of(this);
    const ec2Arn = (resource: string, account: string) => `arn:${stack.partition}:ec2:${stack.region}:${account}:${resource}`;
    const role = new iam.Role(this, 'OperatorRole', {
      description: 'Manages the network interfaces of a Lambda network connector (cdk-lambda-microvms)',
      assumedBy: new iam.ServicePrincipal(OPERATOR_ROLE_PRINCIPAL),
    });
    role.applyRemovalPolicy(removalPolicy);
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'CreateEniInConnectorSubnetsWithConnectorSecurityGroups',
      actions: ['ec2:CreateNetworkInterface'],
      // Exact subnets and security groups. The account is `*` because in a shared VPC the
      // subnets (and their security groups) belong to the VPC owner's account; ids are unique.
      resources: [
        ...subnetIds.map((id) => ec2Arn(`subnet/${id}`, '*')),
        ...securityGroups.map((sg) => ec2Arn(`security-group/${sg.securityGroupId}`, '*')),
      ],
    }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'CreateEniWithConnectorTagKeysOnly',
      actions: ['ec2:CreateNetworkInterface'],
      // network-interface/*: the interfaces do not exist yet, so their ids cannot be named.
      resources: [ec2Arn('network-interface/*', stack.account)],
      conditions: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['aws:lambda:networkConnectorName', 'aws:lambda:networkConnectorId'] } },
    }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'TagEniOnCreateOnly',
      actions: ['ec2:CreateTags'],
      // Only while creating an interface on behalf of network connectors (ids unknown, as above).
      resources: [ec2Arn('network-interface/*', stack.account)],
      conditions: {
        StringEquals: {
          'ec2:CreateAction': 'CreateNetworkInterface',
          'ec2:ManagedResourceOperator': MANAGED_RESOURCE_OPERATOR,
        },
      },
    }));
    acknowledgeWildcards(role, 'The network interfaces are created by the service later, so their ids cannot be named; creation is limited ' +
      'to the connector tag keys, and tagging to CreateNetworkInterface calls by network connectors.', ec2Arn('network-interface/*', stack.account));
    acknowledgeWildcards(role, 'Exact subnet and security group ids; the account is * because in a shared VPC they belong to the VPC owner\'s account.',
      ...subnetIds.map((id) => ec2Arn(`subnet/${id}`, '*')), ...securityGroups.map((sg) => ec2Arn(`security-group/${sg.securityGroupId}`, '*')));
    return role;
  }

  /** Every connector in this account and Region. */
  private connectorsPattern(): string {
    return Stack.of(this).formatArn({ service: 'lambda', resource: 'network-connector', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME });
  }

  /** What the provider needs for this connector. */
  private providerStatements(): iam.PolicyStatement[] {
    const stack = Stack.of(this);
    const connectors = this.connectorsPattern();
    return [
      new iam.PolicyStatement({
        actions: [
          'lambda:CreateNetworkConnector', 'lambda:GetNetworkConnector', 'lambda:UpdateNetworkConnector', 'lambda:DeleteNetworkConnector',
          // Tags also carry the owner and the request fence that stale waiters and rollbacks check.
          'lambda:TagResource', 'lambda:UntagResource', 'lambda:ListTags',
        ],
        // network-connector:* in this account and Region: the id in a connector's ARN is assigned
        // by the service at creation, so the policy (which must exist before) cannot name it.
        resources: [connectors, `${connectors}:*`],
      }),
      new iam.PolicyStatement({
        // The service validates the subnets and security groups with the caller's credentials;
        // EC2 Describe* actions support no resource-level permissions.
        actions: ['ec2:DescribeSubnets', 'ec2:DescribeSecurityGroups'],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.operatorRole.roleArn],
        // Either name the service may present for Lambda Core (see createOperatorRole).
        conditions: { StringEquals: { 'iam:PassedToService': [OPERATOR_ROLE_PRINCIPAL, MANAGED_RESOURCE_OPERATOR] } },
      }),
      new iam.PolicyStatement({
        // The service creates its service-linked role on first use (as AWS::Lambda::NetworkConnector's
        // handlers do): only that service's, by its exact name (service-linked roles live under
        // aws-service-role/<service name>/).
        actions: ['iam:CreateServiceLinkedRole'],
        resources: [`arn:${stack.partition}:iam::${stack.account}:role/aws-service-role/${MANAGED_RESOURCE_OPERATOR}/*`],
        conditions: { StringEquals: { 'iam:AWSServiceName': MANAGED_RESOURCE_OPERATOR } },
      }),
    ];
  }
}
