import {
  CreateMicrovmImageCommand,
  GetMicrovmImageCommand,
  GetMicrovmImageVersionCommand,
  ListMicrovmImagesCommand,
  ListMicrovmsCommand,
  ListTagsCommand,
  UpdateMicrovmImageCommand,
} from '@aws-sdk/client-lambda-microvms';
import type { ChaosAdapter, ChaosContext } from './harness';
import { FleetHandler } from '../../lambda/fleet/fleet-handler';
import { MemoryInventory } from '../../lambda/fleet/inventory';
import { imageConfig, ImageWire, sameConfig } from '../../lambda/image/image-config';
import { ImageHandler } from '../../lambda/image/image-handler';
import { pinnedVersions } from '../../lambda/image/pins';
import { ImageVersionHandler } from '../../lambda/image-version/image-version-handler';
import { NetworkConnectorHandler } from '../../lambda/network-connector/network-connector-handler';
import { isLive, listMicrovms } from '../../lambda/shared/microvm-states';
import { FleetProps, ImageVersionProps, NetworkConnectorProps, ResourceType } from '../../src/private/wire';
import { imageProps, TEST_ACCOUNT } from '../support/image-props';

const CODE = ['s3://assets/code-v1.zip', 's3://assets/code-v2.zip', 's3://assets/code-v3.zip'];

export const imageAdapter: ChaosAdapter<ImageWire> = {
  name: 'image',
  resourceType: ResourceType.IMAGE,
  handler: (ctx) => new ImageHandler(ctx.microvms, { clock: ctx.handlerClock, stepBudgetMs: ctx.stepBudgetMs }),
  props(ctx, kind, previous) {
    const { rng } = ctx;
    const name = kind === 'create' || !previous ? `chaos-img-${rng.int(3)}`
      : kind === 'rename' ? `${previous.Name}-r${rng.int(9)}` : previous.Name;
    return imageProps(name, {
      CodeUri: rng.pick(CODE),
      MemoryMiB: rng.pick(['2048', '4096']),
      BuildTimeoutSeconds: rng.chance(0.15) ? '60' : '1800',
      TerminateMicroVmsOnDelete: 'true',
      KeepVersions: rng.chance(0.3) ? '1' : undefined,
      Tags: rng.chance(0.5) ? { team: rng.pick(['a', 'b']) } : undefined,
    });
  },
  injectFault(ctx, next) {
    ctx.emu.faults.failNextBuild({ imageName: next.Name, reasonCode: 'CONTAINER_BUILD_FAILED' });
    return 'buildFailure';
  },
  async checkLive(ctx, physicalId, asked) {
    const image = await ctx.microvms.send(new GetMicrovmImageCommand({ imageIdentifier: physicalId }));
    if (image.name !== asked.Name) throw new Error(`image ${physicalId} is named ${image.name}, the stack asked for ${asked.Name}`);
    const active = image.latestActiveImageVersion;
    if (!active) throw new Error(`image ${asked.Name} has no active version`);
    const version = await ctx.microvms.send(new GetMicrovmImageVersionCommand({ imageIdentifier: physicalId, imageVersion: active }));
    if (!sameConfig(imageConfig(asked), version)) {
      throw new Error(`image ${asked.Name} runs version ${active} (${version.codeArtifact?.uri}, ${version.resources?.[0]?.minimumMemoryInMiB} MiB); the stack asked for ${asked.CodeUri}, ${asked.MemoryMiB} MiB`);
    }
  },
  async checkNothingLeft(ctx) {
    const images = (await ctx.microvms.send(new ListMicrovmImagesCommand({}))).items ?? [];
    if (images.length) throw new Error(`images ${images.map((i) => `${i.name} (${i.state})`).join(', ')}`);
    const vms = ((await ctx.microvms.send(new ListMicrovmsCommand({}))).items ?? []).filter((vm) => isLive(vm.state));
    if (vms.length) throw new Error(`MicroVMs ${vms.map((v) => v.microvmId).join(', ')}`);
  },
};

const FIXTURE = 'chaos-fixture';
const fixtureArn = (ctx: ChaosContext) => `arn:aws:lambda:${ctx.emu.region}:${TEST_ACCOUNT}:microvm-image:${FIXTURE}`;

/** MicroVmImageVersion over a fixture image with versions 1.0 to 3.0, and sometimes 4.0 still building. */
export const versionAdapter: ChaosAdapter<ImageVersionProps> = {
  name: 'image-version',
  resourceType: ResourceType.IMAGE_VERSION,
  async setup(ctx) {
    const base = imageProps(FIXTURE);
    const config = imageConfig(base);
    await ctx.microvms.send(new CreateMicrovmImageCommand({ ...config, name: FIXTURE, clientToken: 'fixture-1' }));
    for (const [i, code] of [[2, CODE[1]], [3, CODE[2]]] as const) {
      ctx.clock.advance(3600_000);
      await ctx.microvms.send(new UpdateMicrovmImageCommand({ ...config, codeArtifact: { uri: code }, imageIdentifier: fixtureArn(ctx), clientToken: `fixture-${i}` }));
    }
    ctx.clock.advance(3600_000);
    // A build still running: adopting 4.0 waits; status changes meet the recorded 409 meanwhile.
    if (ctx.rng.chance(0.5)) {
      await ctx.microvms.send(new UpdateMicrovmImageCommand({ ...config, codeArtifact: { uri: 's3://assets/code-v4.zip' }, imageIdentifier: fixtureArn(ctx), clientToken: 'fixture-4' }));
    }
  },
  handler: (ctx) => new ImageVersionHandler(ctx.microvms, { clock: ctx.handlerClock, stepBudgetMs: ctx.stepBudgetMs }),
  props(ctx, kind, previous) {
    const { rng } = ctx;
    const version = kind === 'update' && previous ? previous.ImageVersion : rng.pick(['1.0', '2.0', '3.0', '4.0']);
    return { ImageArn: fixtureArn(ctx), ImageVersion: version, Status: rng.pick(['ACTIVE', 'INACTIVE']), RemovalPolicy: 'retain' };
  },
  async checkLive(ctx, _physicalId, asked) {
    const tags = (await ctx.microvms.send(new ListTagsCommand({ Resource: asked.ImageArn }))).Tags ?? {};
    if (!pinnedVersions(tags).has(asked.ImageVersion)) throw new Error(`version ${asked.ImageVersion} is not pinned`);
    const v = await ctx.microvms.send(new GetMicrovmImageVersionCommand({ imageIdentifier: asked.ImageArn, imageVersion: asked.ImageVersion }));
    if (v.status !== asked.Status) throw new Error(`version ${asked.ImageVersion} is ${v.status}, the stack asked for ${asked.Status}`);
  },
  async checkNothingLeft(ctx) {
    const tags = (await ctx.microvms.send(new ListTagsCommand({ Resource: fixtureArn(ctx) }))).Tags ?? {};
    const pins = [...pinnedVersions(tags)];
    if (pins.length) throw new Error(`pin tags for ${pins.join(', ')}`);
  },
};

const SUBNETS = ['subnet-0a', 'subnet-0b', 'subnet-0c'];
const OPERATOR_ROLE = `arn:aws:iam::${TEST_ACCOUNT}:role/connector-operator`;

export const connectorAdapter: ChaosAdapter<NetworkConnectorProps> = {
  name: 'network-connector',
  resourceType: ResourceType.NETWORK_CONNECTOR,
  handler: (ctx) => new NetworkConnectorHandler(ctx.lambdaCore, { clock: ctx.handlerClock, stepBudgetMs: ctx.stepBudgetMs }),
  props(ctx, kind, previous) {
    const { rng } = ctx;
    const name = kind === 'create' || !previous ? `chaos-conn-${rng.int(3)}`
      : kind === 'rename' ? `${previous.Name}-r${rng.int(9)}` : previous.Name;
    return {
      Name: name,
      SubnetIds: SUBNETS.slice(0, 1 + rng.int(SUBNETS.length)),
      SecurityGroupIds: rng.chance(0.5) ? ['sg-0a'] : ['sg-0a', 'sg-0b'],
      NetworkProtocol: rng.pick(['IPv4', 'DualStack']),
      ComputeType: 'MicroVm',
      OperatorRoleArn: OPERATOR_ROLE,
      Tags: rng.chance(0.5) ? { team: rng.pick(['a', 'b']) } : undefined,
      TimeoutSeconds: '1800',
    };
  },
  injectFault(ctx, next) {
    ctx.emu.faults.failNextConnector({ operation: ctx.rng.pick(['create', 'update'] as const), name: next.Name, reasonCode: 'InvalidSubnet', reason: 'injected' });
    return 'connectorFailure';
  },
  async checkLive(ctx, physicalId, asked) {
    const c = await ctx.lambdaCore.getNetworkConnector({ Identifier: physicalId });
    const have = c.Configuration?.VpcEgressConfiguration;
    const same = c.Name === asked.Name && c.State === 'ACTIVE'
      && [...(have?.SubnetIds ?? [])].sort().join() === [...asked.SubnetIds].sort().join()
      && [...(have?.SecurityGroupIds ?? [])].sort().join() === [...(asked.SecurityGroupIds ?? [])].sort().join()
      && have?.NetworkProtocol === asked.NetworkProtocol;
    if (!same) throw new Error(`connector ${c.Name} (${c.State}) has ${JSON.stringify(have)}; the stack asked for ${asked.Name} ${JSON.stringify(asked)}`);
  },
  async checkNothingLeft(ctx) {
    const left = await ctx.lambdaCore.listAllNetworkConnectors();
    if (left.length) throw new Error(`connectors ${left.map((c) => `${c.Name} (${c.State})`).join(', ')}`);
  },
};

const FLEET_FIXTURE = 'chaos-fleet-fixture';
const fleetImageArn = (ctx: ChaosContext) => `arn:aws:lambda:${ctx.emu.region}:${TEST_ACCOUNT}:microvm-image:${FLEET_FIXTURE}`;

/** MicroVmFleet over a fixture image with versions 1.0 and 2.0: counts, versions, policies, warm pool. */
export const fleetAdapter: ChaosAdapter<FleetProps> = {
  name: 'fleet',
  resourceType: ResourceType.FLEET,
  async setup(ctx) {
    const config = imageConfig(imageProps(FLEET_FIXTURE));
    await ctx.microvms.send(new CreateMicrovmImageCommand({ ...config, name: FLEET_FIXTURE, clientToken: 'fleet-fixture-1' }));
    ctx.clock.advance(3600_000);
    await ctx.microvms.send(new UpdateMicrovmImageCommand({
      ...config, codeArtifact: { uri: CODE[1] }, imageIdentifier: fleetImageArn(ctx), clientToken: 'fleet-fixture-2',
    }));
    ctx.clock.advance(3600_000);
  },
  handler: (ctx) => {
    const inventory = new MemoryInventory();
    return new FleetHandler(ctx.microvms, () => inventory, { clock: ctx.handlerClock, random: () => ctx.rng.next() });
  },
  props(ctx, _kind, previous) {
    const { rng } = ctx;
    return {
      ImageArn: fleetImageArn(ctx),
      ImageVersion: rng.pick(['1.0', '2.0']),
      DesiredCount: String(rng.int(4)),
      MaximumDurationSeconds: '28800',
      UpdatePolicy: rng.pick(['ROLLING', 'REPLACE_ALL']),
      BatchSize: rng.chance(0.5) ? String(1 + rng.int(2)) : undefined,
      SuspendAfterLaunch: rng.chance(0.3) ? 'true' : previous?.SuspendAfterLaunch,
      LaunchRate: '5',
      TableName: 'inventory',
      TimeoutSeconds: '1800',
    };
  },
  injectFault(ctx) {
    const refusal = { operation: 'RunMicrovm', mode: 'error', errorType: 'ValidationException', status: 400, message: 'injected refusal', count: 1 } as const;
    ctx.emu.faults.operation(refusal);
    return 'runRefused';
  },
  async checkLive(ctx, _physicalId, asked) {
    const vms = await listMicrovms(ctx.microvms, { imageArn: asked.ImageArn });
    const want = asked.SuspendAfterLaunch === 'true' ? 'SUSPENDED' : 'RUNNING';
    const wrong = vms.filter((vm) => vm.imageVersion !== asked.ImageVersion || vm.state !== want);
    if (vms.length !== Number(asked.DesiredCount) || wrong.length) {
      throw new Error(`fleet runs ${vms.map((v) => `${v.imageVersion} ${v.state}`).join(', ') || 'nothing'}; the stack asked for ${asked.DesiredCount} x ${asked.ImageVersion} ${want}`);
    }
  },
  async checkNothingLeft(ctx) {
    const vms = await listMicrovms(ctx.microvms, { imageArn: fleetImageArn(ctx) });
    if (vms.length) throw new Error(`MicroVMs ${vms.map((v) => `${v.microvmId} (${v.state})`).join(', ')}`);
  },
};

export const ADAPTERS: ChaosAdapter[] = [imageAdapter, versionAdapter, connectorAdapter, fleetAdapter];
