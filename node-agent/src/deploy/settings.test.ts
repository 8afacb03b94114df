import { describe, expect, it } from 'vitest';
import { AgentConfigSchema } from '../home';
import { deploySettings, parseLabelFlags, parseRegistry } from './settings';
import { nodeResources, reportChanged } from './report';

const cfg = (raw: Record<string, unknown>) => AgentConfigSchema.parse(raw);

describe('deployment settings', () => {
  it('reads the config keys, and each flag given replaces its key', () => {
    const c = cfg({
      deployments: true,
      deployCpu: '500m',
      deployMemory: '1GiB',
      labels: { region: 'home' },
      registries: ['Registry.Example', 'index.docker.io'],
    });
    expect(deploySettings(c)).toEqual({
      enabled: true,
      cpuCores: 0.5,
      memoryBytes: 1024 ** 3,
      labels: { region: 'home' },
      registries: ['registry.example', 'docker.io'],
    });
    expect(
      deploySettings(c, {
        deployCpu: '2',
        deployMemory: '256MiB',
        label: ['gpu=none', 'zone=attic'],
        registry: ['127.0.0.1:5000', '127.0.0.1:5000'],
      }),
    ).toEqual({
      enabled: true,
      cpuCores: 2,
      memoryBytes: 256 * 1024 ** 2,
      labels: { gpu: 'none', zone: 'attic' },
      registries: ['127.0.0.1:5000'],
    });
    expect(deploySettings(cfg({})).enabled).toBe(false);
    expect(deploySettings(cfg({}), { deployments: true }).enabled).toBe(true);
  });

  it('says in words what is wrong with a flag or a key', () => {
    expect(() => deploySettings(cfg({}), { deployCpu: '0' })).toThrow(
      /--deploy-cpu: must be more than 0 cores/,
    );
    expect(() => deploySettings(cfg({}), { deployMemory: '4m' })).toThrow(
      /--deploy-memory: "4m": the unit "m" is ambiguous/,
    );
    expect(() => parseLabelFlags(['region'])).toThrow(/--label region: .*must be key=value/);
    expect(() => parseLabelFlags(['-x=1'])).toThrow(/label name "-x" must be/);
    expect(() => parseLabelFlags(['a=1', 'a=2'])).toThrow(/"a" is given twice/);
    expect(() => parseRegistry('http://127.0.0.1:5000/v2', '--registry')).toThrow(
      /leave out the scheme.*--registry 127\.0\.0\.1:5000$/,
    );
    expect(() => parseRegistry('not a host', '--registry')).toThrow(/is not a registry/);
    expect(AgentConfigSchema.safeParse({ deployMemory: 'lots' }).error?.issues[0]?.message).toMatch(
      /"lots" is not a size/,
    );
    expect(AgentConfigSchema.safeParse({ labels: { 'a b': 'c' } }).success).toBe(false);
  });
});

describe('resources report', () => {
  const capacity = {
    cpuCores: 2,
    memoryBytes: 4 * 1024 ** 3,
    diskFreeBytes: 10 * 1024 ** 3,
    gpus: [],
    os: 'linux',
    arch: 'x64',
    runtime: { name: 'podman', version: '4.3.1' },
  };
  const settings = deploySettings(cfg({ deployments: true, deployCpu: 1, labels: { a: 'b' } }));

  it('carries the offer, labels and the deployments switch', () => {
    expect(nodeResources(capacity, settings)).toEqual({
      capacity,
      offer: { cpuCores: 1, memoryBytes: null },
      labels: { a: 'b' },
      deployments: true,
    });
  });

  it('changes with the runtime or a step of free disk, not with a few bytes written', () => {
    const r = nodeResources(capacity, settings);
    const disk = (d: number) => nodeResources({ ...capacity, diskFreeBytes: d }, settings);
    expect(reportChanged(r, disk(capacity.diskFreeBytes - 4096))).toBe(false);
    expect(reportChanged(r, disk(capacity.diskFreeBytes - 1024 ** 3))).toBe(true);
    expect(reportChanged(r, nodeResources({ ...capacity, runtime: null }, settings))).toBe(true);
  });
});
