import { BaseImage, FleetUpdatePolicy, ManagedNetworkConnector, MicroVmArchitecture, MicroVmImageVersionStatus, NetworkConnectorDirection, OsCapability } from '../src';

/** Enum-like classes read well from Python and Java: a readable toString, and known names give the constant. */
describe('enum-like classes', () => {
  test('toString is the service\'s name', () => {
    expect(String(MicroVmArchitecture.ARM_64)).toBe('ARM_64');
    expect(String(OsCapability.ALL)).toBe('ALL');
    expect(String(MicroVmImageVersionStatus.INACTIVE)).toBe('INACTIVE');
    expect(String(ManagedNetworkConnector.SHELL_INGRESS)).toBe('SHELL_INGRESS');
    expect(String(FleetUpdatePolicy.rolling({ batchSize: 2 }))).toBe('ROLLING(batchSize=2)');
    expect(String(FleetUpdatePolicy.replaceAll())).toBe('REPLACE_ALL');
    expect(String(BaseImage.fromArn('arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1', '1.0'))).toBe('arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1@1.0');
  });

  test('of(known name) is the constant itself, so equal values compare equal (identity in Python and Java)', () => {
    expect(MicroVmArchitecture.of('ARM_64')).toBe(MicroVmArchitecture.ARM_64);
    expect(OsCapability.of('ALL')).toBe(OsCapability.ALL);
    expect(MicroVmArchitecture.of('X86_64')).toBe(MicroVmArchitecture.of('X86_64'));
    expect(ManagedNetworkConnector.of('ALL_INGRESS', NetworkConnectorDirection.INGRESS)).toBe(ManagedNetworkConnector.ALL_INGRESS);
    expect(ManagedNetworkConnector.of('HTTP_INGRESS', NetworkConnectorDirection.INGRESS).connectorName).toBe('HTTP_INGRESS');
  });
});
