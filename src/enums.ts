/** The CPU architecture of a MicroVM image. */
export class MicroVmArchitecture {
  /** ARM64 (AWS Graviton): the only architecture the service offers. */
  public static readonly ARM_64 = new MicroVmArchitecture('ARM_64');

  /** An architecture this library does not know yet. */
  public static of(name: string): MicroVmArchitecture {
    return new MicroVmArchitecture(name);
  }

  private constructor(
    /** The service's name for it. */
    public readonly name: string,
  ) {}
}

/** Additional Linux capabilities granted to a MicroVM image. */
export class OsCapability {
  /** Every elevated capability: mounts and FUSE, network namespaces, eBPF, nested containers. */
  public static readonly ALL = new OsCapability('ALL');

  /** A capability this library does not know yet. */
  public static of(name: string): OsCapability {
    return new OsCapability(name);
  }

  private constructor(
    /** The service's name for it. */
    public readonly name: string,
  ) {}
}
