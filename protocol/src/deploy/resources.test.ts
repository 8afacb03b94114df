import { describe, expect, it } from 'vitest';
import { NodeResourcesSchema, deployableResources, type NodeResources } from './resources';
import { parseLabelArg } from './labels';

const GiB = 1024 ** 3;
const report: NodeResources = {
  capacity: {
    cpuCores: 8,
    memoryBytes: 16 * GiB,
    diskFreeBytes: 100 * GiB,
    gpus: [{ model: 'NVIDIA GeForce RTX 3060', memoryBytes: 12 * GiB }],
    os: 'linux',
    arch: 'x64',
    runtime: { name: 'podman', version: '4.3.1' },
  },
  offer: { cpuCores: 2, memoryBytes: 4 * GiB },
  labels: { region: 'home', 'peerway.io/tier': 'gpu' },
  deployments: true,
};

describe('NodeResourcesSchema', () => {
  it('accepts a full report and one without a runtime or caps', () => {
    expect(NodeResourcesSchema.parse(report)).toEqual(report);
    const bare = {
      ...report,
      capacity: { ...report.capacity, gpus: [], runtime: null },
      offer: { cpuCores: null, memoryBytes: null },
      labels: {},
      deployments: false,
    };
    expect(NodeResourcesSchema.parse(bare)).toEqual(bare);
  });

  it.each([
    ['negative memory', { ...report, capacity: { ...report.capacity, memoryBytes: -1 } }],
    ['no CPUs', { ...report, capacity: { ...report.capacity, cpuCores: 0 } }],
    ['a bad label', { ...report, labels: { 'a b': 'c' } }],
    ['a missing offer', { ...report, offer: undefined }],
    [
      'a runtime without version',
      { ...report, capacity: { ...report.capacity, runtime: { name: 'podman' } } },
    ],
  ])('refuses %s', (_what, bad) => {
    expect(NodeResourcesSchema.safeParse(bad).success).toBe(false);
  });
});

describe('deployableResources', () => {
  it('is the smaller of capacity and the owner’s offer', () => {
    expect(deployableResources(report)).toEqual({ cpuMillis: 2000, memoryBytes: 4 * GiB, gpu: 1 });
  });
  it('is the whole machine without caps, and a cap above capacity changes nothing', () => {
    expect(
      deployableResources({ ...report, offer: { cpuCores: null, memoryBytes: 64 * GiB } }),
    ).toEqual({
      cpuMillis: 8000,
      memoryBytes: 16 * GiB,
      gpu: 1,
    });
  });
});

describe('parseLabelArg', () => {
  it('splits key=value', () => {
    expect(parseLabelArg('region=home')).toEqual({ ok: true, value: ['region', 'home'] });
    expect(parseLabelArg('peerway.io/gpu=rtx-3060')).toEqual({
      ok: true,
      value: ['peerway.io/gpu', 'rtx-3060'],
    });
  });
  it('says what is wrong', () => {
    expect(parseLabelArg('region')).toMatchObject({
      ok: false,
      message: expect.stringContaining('key=value'),
    });
    expect(parseLabelArg('region=')).toMatchObject({
      ok: false,
      message: expect.stringContaining('label value'),
    });
    expect(parseLabelArg('=home')).toMatchObject({
      ok: false,
      message: expect.stringContaining('label name'),
    });
  });
});
