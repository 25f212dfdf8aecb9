/** One object per name, so that equal values are the same object in every jsii language. */
function interned<T>(registry: Map<string, T>, name: string, make: () => T): T {
  let value = registry.get(name);
  if (value === undefined) {
    value = make();
    registry.set(name, value);
  }
  return value;
}
const ARCHITECTURES = new Map<string, MicroVmArchitecture>();
const OS_CAPABILITIES = new Map<string, OsCapability>();

/** The CPU architecture of a MicroVM image. */
export class MicroVmArchitecture {
  /** ARM64 (AWS Graviton): the only architecture the service offers. */
  public static readonly ARM_64 = MicroVmArchitecture.of('ARM_64');

  /**
   * An architecture by the service's name. A known name returns the same object as its constant
   * (`MicroVmArchitecture.of('ARM_64') === MicroVmArchitecture.ARM_64`, `==` in Python, `equals`
   * in Java).
   */
  public static of(name: string): MicroVmArchitecture {
    return interned(ARCHITECTURES, name, () => new MicroVmArchitecture(name));
  }

  private constructor(
    /** The service's name for it, e.g. `ARM_64`. */
    public readonly name: string,
  ) {}

  /** The service's name, e.g. `ARM_64`. */
  public toString(): string {
    return this.name;
  }
}

/** Additional Linux capabilities granted to a MicroVM image. */
export class OsCapability {
  /** Every elevated capability: mounts and FUSE, network namespaces, eBPF, nested containers. */
  public static readonly ALL = OsCapability.of('ALL');

  /**
   * A capability by the service's name. A known name returns the same object as its constant
   * (`OsCapability.of('ALL') === OsCapability.ALL`).
   */
  public static of(name: string): OsCapability {
    return interned(OS_CAPABILITIES, name, () => new OsCapability(name));
  }

  private constructor(
    /** The service's name for it, e.g. `ALL`. */
    public readonly name: string,
  ) {}

  /** The service's name, e.g. `ALL`. */
  public toString(): string {
    return this.name;
  }
}
