import { Resource, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct, IConstruct } from 'constructs';

/** Which way traffic flows through a network connector. */
export enum NetworkConnectorDirection {
  /** Into the MicroVM (its HTTPS endpoint, shell access). */
  INGRESS = 'INGRESS',
  /** Out of the MicroVM (the internet, or a VPC through a customer connector). */
  EGRESS = 'EGRESS',
}

/**
 * The network connectors AWS manages for every account (account `aws`), which MicroVM images
 * and MicroVMs name by ARN: `arn:<partition>:lambda:<region>:aws:network-connector:aws-network-connector:<NAME>`.
 *
 * A value, not a construct: `arnIn(scope)` gives the ARN in the scope's partition and Region,
 * and `refIn(scope)` a connector reference that goes wherever aws-cdk-lib or this library takes
 * an `INetworkConnectorRef`, e.g. `MicroVmImage.egressConnectors`.
 */
export class ManagedNetworkConnector {
  /** Ingress on every port the MicroVM listens on, through its HTTPS endpoint. */
  public static readonly ALL_INGRESS = new ManagedNetworkConnector('ALL_INGRESS', NetworkConnectorDirection.INGRESS);
  /** No ingress at all: the MicroVM cannot be reached. */
  public static readonly NO_INGRESS = new ManagedNetworkConnector('NO_INGRESS', NetworkConnectorDirection.INGRESS);
  /** Interactive shell access (CreateMicrovmShellAuthToken). */
  public static readonly SHELL_INGRESS = new ManagedNetworkConnector('SHELL_INGRESS', NetworkConnectorDirection.INGRESS);
  /** Egress to the public internet: what MicroVMs get when no egress connector is named. */
  public static readonly INTERNET_EGRESS = new ManagedNetworkConnector('INTERNET_EGRESS', NetworkConnectorDirection.EGRESS);

  /**
   * A managed connector by name, such as one this library does not know yet (the service adds
   * them over time). A known name returns its constant (`of('ALL_INGRESS', INGRESS) === ALL_INGRESS`).
   */
  public static of(connectorName: string, direction: NetworkConnectorDirection): ManagedNetworkConnector {
    if (!/^[A-Z0-9_]+$/.test(connectorName)) {
      throw new Error(`ManagedNetworkConnector.of: connectorName must be upper-case letters, digits and underscores like INTERNET_EGRESS, got '${connectorName}'`);
    }
    const m = ManagedNetworkConnector;
    const known = [m.ALL_INGRESS, m.NO_INGRESS, m.SHELL_INGRESS, m.INTERNET_EGRESS]
      .find((c) => c.connectorName === connectorName && c.direction === direction);
    return known ?? new ManagedNetworkConnector(connectorName, direction);
  }

  /** Every managed connector in the scope's Region, as one IAM resource pattern. */
  public static allArnsIn(scope: IConstruct): string {
    return ManagedNetworkConnector.arnFor(scope, '*');
  }

  /** Whether `connector` is a reference made by `refIn` (an AWS-managed connector). */
  public static isManaged(connector: lambda.INetworkConnectorRef): boolean {
    return connector instanceof ManagedNetworkConnectorRef;
  }

  /** The managed connector behind a reference made by `refIn`, or undefined for any other connector. */
  public static fromRef(connector: lambda.INetworkConnectorRef): ManagedNetworkConnector | undefined {
    return connector instanceof ManagedNetworkConnectorRef ? connector.managed : undefined;
  }

  /** The direction of `connector`: its own for a managed one, EGRESS for any other (customer connectors are VPC egress). */
  public static directionOf(connector: lambda.INetworkConnectorRef): NetworkConnectorDirection {
    return connector instanceof ManagedNetworkConnectorRef ? connector.managed.direction : NetworkConnectorDirection.EGRESS;
  }

  private static arnFor(scope: IConstruct, name: string): string {
    const stack = Stack.of(scope);
    return `arn:${stack.partition}:lambda:${stack.region}:aws:network-connector:aws-network-connector:${name}`;
  }

  private constructor(
    /** The connector's name, e.g. INTERNET_EGRESS. */
    public readonly connectorName: string,
    /** Ingress or egress. */
    public readonly direction: NetworkConnectorDirection,
  ) {}

  /** The connector's ARN in the partition and Region of the scope's stack. */
  public arnIn(scope: IConstruct): string {
    return ManagedNetworkConnector.arnFor(scope, this.connectorName);
  }

  /**
   * A reference to this connector in the scope's stack (one per stack and connector), for
   * `MicroVmImage.egressConnectors`, fleets, or any aws-cdk-lib API that takes an `INetworkConnectorRef`.
   */
  public refIn(scope: IConstruct): lambda.INetworkConnectorRef {
    const stack = Stack.of(scope);
    const id = `cdk-lambda-microvms.managed-connector.${this.connectorName}`;
    const existing = stack.node.tryFindChild(id);
    if (existing) return existing as ManagedNetworkConnectorRef;
    return new ManagedNetworkConnectorRef(stack, id, this);
  }

  /** The connector's name. */
  public toString(): string {
    return this.connectorName;
  }
}

/** The construct behind `ManagedNetworkConnector.refIn`: no CloudFormation resource. */
class ManagedNetworkConnectorRef extends Resource implements lambda.INetworkConnectorRef {
  public readonly networkConnectorRef: lambda.NetworkConnectorReference;

  constructor(scope: Construct, id: string, public readonly managed: ManagedNetworkConnector) {
    // AWS owns these connectors: account `aws`, in the stack's Region.
    super(scope, id, { account: 'aws' });
    this.networkConnectorRef = { networkConnectorArn: managed.arnIn(this) };
  }
}
