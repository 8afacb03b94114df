import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  parseJobSubmission,
  parseRequirementKey,
  requirementKey,
  unmetRequirement,
  type JobRequirements,
  type WorkerProfile,
} from '../index';
import { parseAgentToServer, parseServerToAgent } from '../signaling-agent';

const resources = {
  capacity: {
    cpuCores: 8,
    memoryBytes: 16 * 1024 ** 3,
    diskFreeBytes: 1e11,
    gpus: [{ model: 'RTX 3060', memoryBytes: 12 * 1024 ** 3 }],
    os: 'linux',
    arch: 'x64',
    runtime: null,
  },
  offer: { cpuCores: null, memoryBytes: null },
  labels: { region: 'home' },
  deployments: false,
};

describe('job submissions', () => {
  it('fills in defaults', () => {
    const r = parseJobSubmission({ type: 'simulation' });
    expect(r).toEqual({
      ok: true,
      job: {
        type: 'simulation',
        input: { delayMs: 0, fail: false, progressSteps: 0 },
        requirements: { models: [], labels: {} },
        priority: 0,
        timeoutS: 600,
        maxAttempts: 3,
        backoff: { type: 'exponential', delayMs: 1000, maxDelayMs: 300000 },
      },
    });
  });

  it('names every bad field by its path', () => {
    const r = parseJobSubmission({
      type: 'simulation',
      priority: 1.5,
      requirements: { memory: 'lots', labels: { 'bad key!': 'x' } },
      input: { delayMs: -1 },
      extra: 1,
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const paths = r.errors.map((e) => e.path).sort();
    expect(paths).toEqual(
      expect.arrayContaining(['priority', 'requirements.memory', 'requirements.labels.bad key!']),
    );
    expect(r.errors.some((e) => e.path === '' && /extra/.test(e.message))).toBe(true);
  });

  it('checks the input against its type', () => {
    const r = parseJobSubmission({ type: 'simulation', input: { delayMs: -1 } });
    expect(r).toMatchObject({ ok: false, errors: [{ path: 'input.delayMs' }] });
    const c = parseJobSubmission({ type: 'container', input: { image: 'http://x/y' } });
    expect(c).toMatchObject({ ok: false, errors: [{ path: 'input.image' }] });
  });

  it('refuses an unknown type and an http job without its service', () => {
    expect(parseJobSubmission({ type: 'gpu-magic' })).toMatchObject({
      ok: false,
      errors: [
        { path: 'type', message: expect.stringMatching(/http, container, comfyui, simulation/) },
      ],
    });
    expect(parseJobSubmission({ type: 'http', input: {} })).toMatchObject({
      ok: false,
      errors: [{ path: 'requirements.service' }],
    });
    expect(parseJobSubmission({ type: 'http', requirements: { service: 'api-x' } }).ok).toBe(true);
  });

  it('refuses http paths that could leave the origin', () => {
    for (const path of [
      '\\\\evil.com/x',
      '//evil.com',
      'http://evil.com',
      '/a\u0000b',
      '/\\evil',
    ]) {
      const r = parseJobSubmission({
        type: 'http',
        requirements: { service: 's' },
        input: { path },
      });
      expect(r.ok, path).toBe(false);
    }
  });

  it("keeps a container job's input files under /in", () => {
    for (const name of ['../etc/passwd', 'a/../../b', './x', 'a//b', '/abs']) {
      const r = parseJobSubmission({
        type: 'container',
        input: { image: 'busybox', files: { [name]: 'x' } },
      });
      expect(r.ok, name).toBe(false);
    }
    expect(
      parseJobSubmission({
        type: 'container',
        input: { image: 'busybox', files: { 'a/b.txt': 'x' } },
      }).ok,
    ).toBe(true);
  });

  it('backs off exponentially up to the cap', () => {
    const b = { type: 'exponential' as const, delayMs: 1000, maxDelayMs: 5000 };
    expect([1, 2, 3, 4, 5].map((a) => backoffDelayMs(b, a))).toEqual([
      1000, 2000, 4000, 5000, 5000,
    ]);
    expect(backoffDelayMs({ ...b, type: 'fixed' }, 4)).toBe(1000);
  });
});

describe('matching a worker', () => {
  const worker: WorkerProfile = {
    connectors: [
      { type: 'comfyui', services: [], models: ['sdxl.safetensors'], images: [] },
      { type: 'container', services: [], models: [], images: ['127.0.0.1:5000/batch:*'] },
    ],
    resources,
  };
  const req = (r: Partial<JobRequirements>): JobRequirements => ({ models: [], labels: {}, ...r });

  it('meets what it has and says why not otherwise', () => {
    expect(
      unmetRequirement('comfyui', req({ models: ['sdxl.safetensors'], gpu: 1 }), worker),
    ).toBeNull();
    expect(unmetRequirement('simulation', req({}), worker)).toMatch(/no simulation connector/);
    expect(unmetRequirement('comfyui', req({ models: ['flux'] }), worker)).toMatch(/model "flux"/);
    expect(unmetRequirement('comfyui', req({ gpu: 2 }), worker)).toMatch(/1 GPUs, needs 2/);
    expect(unmetRequirement('comfyui', req({ memory: 32 * 1024 ** 3 }), worker)).toMatch(/memory/);
    expect(unmetRequirement('comfyui', req({ labels: { region: 'work' } }), worker)).toMatch(
      /region/,
    );
    expect(unmetRequirement('container', req({}), worker, '127.0.0.1:5000/batch:1')).toBeNull();
    expect(unmetRequirement('container', req({}), worker, '127.0.0.1:5000/other:1')).toMatch(
      /image/,
    );
  });

  it('keys equal requirements equally, whatever their order, and reads the key back', () => {
    const a = requirementKey('comfyui', req({ models: ['b', 'a'], labels: { y: '1', x: '2' } }));
    const b = requirementKey('comfyui', req({ models: ['a', 'b'], labels: { x: '2', y: '1' } }));
    expect(a).toBe(b);
    expect(parseRequirementKey(a)).toEqual({
      type: 'comfyui',
      requirements: { models: ['a', 'b'], labels: { x: '2', y: '1' } },
    });
  });
});

describe('job messages on the agent channel', () => {
  it('parses a lease and a result, refuses a malformed one', () => {
    const lease = parseServerToAgent(
      JSON.stringify({
        type: 'job-lease',
        id: 'j1',
        attempt: 1,
        jobType: 'simulation',
        input: { delayMs: 1 },
        requirements: { models: [], labels: {} },
        timeoutS: 10,
        leaseMs: 30000,
        leaseToken: 'tok',
      }),
    );
    expect(lease).toMatchObject({ ok: true, value: { type: 'job-lease', jobType: 'simulation' } });
    expect(
      parseAgentToServer(JSON.stringify({ type: 'job-result', id: 'j1', attempt: 1 })),
    ).toMatchObject({
      ok: true,
      value: { outputUploaded: false },
    });
    expect(parseAgentToServer(JSON.stringify({ type: 'job-pull', free: -1 }))).toMatchObject({
      ok: false,
    });
  });
});
