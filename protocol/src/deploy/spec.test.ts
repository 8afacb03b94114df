import { describe, expect, it } from 'vitest';
import { DEPLOYMENT_DEFAULTS, MAX_REPLICAS, parseDeploymentSpec, type SpecResult } from './spec';
import { parseDeploymentYaml } from './spec-yaml';

const MiB = 1024 ** 2;
const base = { name: 'blog', image: 'registry.example/blog:1.2', port: 8080 };

function spec(r: SpecResult) {
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}
function errors(r: SpecResult) {
  if (r.ok) throw new Error('expected errors, the spec was accepted');
  return r.errors;
}
/** The message at one path, failing when there is none. */
function errorAt(r: SpecResult, path: string): string {
  const e = errors(r).find((x) => x.path === path);
  if (!e) throw new Error(`no error at ${path}: ${JSON.stringify(errors(r))}`);
  return e.message;
}

describe('parseDeploymentSpec', () => {
  it('fills in every default, visibly', () => {
    expect(spec(parseDeploymentSpec(base))).toEqual({
      ...base,
      command: null,
      args: null,
      env: {},
      replicas: 1,
      maxPerNode: 1,
      resources: { cpuMillis: 250, memoryBytes: 256 * MiB, gpu: 0 },
      constraints: { labels: {}, nodes: [] },
      placement: 'binpack',
      health: { path: null, intervalS: 5, timeoutS: 2 },
      access: 'private',
      restart: 'always',
    });
    expect(DEPLOYMENT_DEFAULTS.restart).toBe('always');
  });

  it('takes the example from the design, normalising sizes and CPU', () => {
    const s = spec(
      parseDeploymentSpec({
        ...base,
        replicas: 2,
        resources: { cpu: 0.5, memory: '256MiB', gpu: 0 },
        env: { LOG_LEVEL: 'info' },
        command: ['node', 'server.js'],
        args: ['--port', '8080'],
        constraints: { labels: { region: 'home' }, nodes: ['4F2A8B', '9c1d2e', '4f2a8b'] },
        placement: 'spread',
        health: { path: '/healthz', intervalS: 5, timeoutS: 2 },
        access: 'public',
        restart: 'on-failure',
      }),
    );
    expect(s.resources).toEqual({ cpuMillis: 500, memoryBytes: 256 * MiB, gpu: 0 });
    expect(s.constraints).toEqual({ labels: { region: 'home' }, nodes: ['4f2a8b', '9c1d2e'] });
    expect(s.command).toEqual(['node', 'server.js']);
    expect(s.placement).toBe('spread');
    expect(s.health.path).toBe('/healthz');
  });

  it('gives the same spec when its own output is parsed again', () => {
    const once = spec(
      parseDeploymentSpec({
        ...base,
        resources: { cpu: '1500m', memory: '1GiB', gpu: 1 },
        env: { A: 1 },
      }),
    );
    expect(once.resources).toEqual({ cpuMillis: 1500, memoryBytes: 1024 ** 3, gpu: 1 });
    expect(spec(parseDeploymentSpec(once))).toEqual(once);
    expect(spec(parseDeploymentSpec(JSON.parse(JSON.stringify(once))))).toEqual(once);
  });

  it('reports every problem at once, each at its path', () => {
    const r = parseDeploymentSpec({
      name: 'API',
      image: 'Foo',
      port: 0,
      replica: 2,
      resources: { memory: '1 parsec', cpu: 'lots', gpu: -1, disk: 1 },
      env: { '1A': 'x', OK: 'y', B: null },
      constraints: { nodes: ['4f2a8b', 'zzz'], labels: { 'bad key!': 'x' } },
      placement: 'pack',
      access: 'everyone',
      restart: 'sometimes',
      command: 'node server.js',
      args: ['ok', { a: 1 }],
    });
    const paths = errors(r).map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'name',
        'image',
        'port',
        'replica',
        'resources.memory',
        'resources.cpu',
        'resources.gpu',
        'resources.disk',
        'env.1A',
        'env.B',
        'constraints.nodes[1]',
        'constraints.labels.bad key!',
        'placement',
        'access',
        'restart',
        'command',
        'args[1]',
      ]),
    );
    expect(paths).not.toContain('env.OK');
    expect(errorAt(r, 'replica')).toContain('did you mean "replicas"?');
    expect(errorAt(r, 'resources.disk')).toContain('resources takes cpu, memory, gpu');
    expect(errorAt(r, 'placement')).toBe('must be one of binpack, spread, not "pack"');
    expect(errorAt(r, 'access')).toContain('private, public, shared');
    expect(errorAt(r, 'restart')).toContain('always, on-failure, never');
    expect(errorAt(r, 'command')).toContain('must be a list of strings');
    expect(errorAt(r, 'resources.memory')).toContain('MiB');
    expect(errorAt(r, 'constraints.nodes[1]')).toContain('6 hex characters');
  });

  it('says what is missing', () => {
    const r = parseDeploymentSpec({});
    expect(errorAt(r, 'name')).toContain('is required');
    expect(errorAt(r, 'image')).toContain('is required');
    expect(errorAt(r, 'port')).toContain('is required');
  });

  it('refuses a spec that is not a mapping, saying what one needs', () => {
    for (const input of [null, 42, 'name: blog', [base]]) {
      const m = errorAt(parseDeploymentSpec(input), '');
      expect(m).toContain('name, image and port');
    }
  });

  it('keeps the gateway names and DNS rules for the service name', () => {
    expect(errorAt(parseDeploymentSpec({ ...base, name: 'api' }), 'name')).toContain(
      'kept for the gateway',
    );
    expect(errorAt(parseDeploymentSpec({ ...base, name: '-blog' }), 'name')).toContain(
      'not a service name',
    );
    expect(errorAt(parseDeploymentSpec({ ...base, name: 'a'.repeat(64) }), 'name')).toContain('63');
    expect(spec(parseDeploymentSpec({ ...base, name: 'my-blog-2' })).name).toBe('my-blog-2');
  });

  it('bounds replicas, port and sizes, naming the range and the unit', () => {
    expect(errorAt(parseDeploymentSpec({ ...base, replicas: 0 }), 'replicas')).toContain(
      `from 1 to ${MAX_REPLICAS}`,
    );
    expect(errorAt(parseDeploymentSpec({ ...base, replicas: 1.5 }), 'replicas')).toContain(
      'whole number',
    );
    expect(errorAt(parseDeploymentSpec({ ...base, port: 70000 }), 'port')).toContain('1 to 65535');
    expect(errorAt(parseDeploymentSpec({ ...base, port: '8080' }), 'port')).toContain('not "8080"');
    const tiny = errorAt(
      parseDeploymentSpec({ ...base, resources: { memory: 256 } }),
      'resources.memory',
    );
    expect(tiny).toContain('did you mean 256MiB?');
    expect(
      errorAt(parseDeploymentSpec({ ...base, resources: { cpu: 0.001 } }), 'resources.cpu'),
    ).toContain('from 0.01');
    expect(
      errorAt(parseDeploymentSpec({ ...base, resources: { gpu: 17 } }), 'resources.gpu'),
    ).toContain('GPUs');
  });

  it('refuses both spellings of one resource', () => {
    const r = parseDeploymentSpec({
      ...base,
      resources: { cpu: 1, cpuMillis: 1000, memory: '1GiB', memoryBytes: 1 },
    });
    expect(errorAt(r, 'resources.cpuMillis')).toContain('not both');
    expect(errorAt(r, 'resources.memoryBytes')).toContain('not both');
  });

  it('checks health: a path from "/", a timeout within the interval', () => {
    expect(
      errorAt(parseDeploymentSpec({ ...base, health: { path: 'healthz' } }), 'health.path'),
    ).toContain('start with "/"');
    expect(
      errorAt(
        parseDeploymentSpec({ ...base, health: { intervalS: 2, timeoutS: 5 } }),
        'health.timeoutS',
      ),
    ).toContain('intervalS');
    expect(
      errorAt(parseDeploymentSpec({ ...base, health: { intervalS: 0 } }), 'health.intervalS'),
    ).toContain('seconds');
    expect(spec(parseDeploymentSpec({ ...base, health: { path: '/up' } })).health).toEqual({
      path: '/up',
      intervalS: 5,
      timeoutS: 2,
    });
  });

  it('turns numbers and booleans meant as text into strings', () => {
    const s = spec(
      parseDeploymentSpec({ ...base, env: { PORT: 8080, DEBUG: true }, args: ['--port', 80] }),
    );
    expect(s.env).toEqual({ PORT: '8080', DEBUG: 'true' });
    expect(s.args).toEqual(['--port', '80']);
  });

  it('checks label constraints by key and value', () => {
    const r = parseDeploymentSpec({ ...base, constraints: { labels: { region: 'home base' } } });
    expect(errorAt(r, 'constraints.labels.region')).toContain('label value');
    expect(
      errorAt(parseDeploymentSpec({ ...base, constraints: { zone: 'a' } }), 'constraints.zone'),
    ).toContain('constraints takes labels, nodes');
  });
});

describe('parseDeploymentYaml', () => {
  const design = `
name: blog                    # the service name
image: registry.example/blog:1.2
port: 8080
replicas: 2
resources: { cpu: 0.5, memory: 256MiB, gpu: 0 }
env: { LOG_LEVEL: info, VERSION: 1.10 }
command: ["node", "server.js"]
constraints: { labels: { region: home }, nodes: [4f2a8b, 123456, 123e45] }
placement: binpack
health: { path: /healthz, intervalS: 5, timeoutS: 2 }
access: private
`;

  it("reads the design's example", () => {
    const s = spec(parseDeploymentYaml(design));
    expect(s.replicas).toBe(2);
    expect(s.resources).toEqual({ cpuMillis: 500, memoryBytes: 256 * MiB, gpu: 0 });
    expect(s.constraints.nodes).toEqual(['4f2a8b', '123456', '123e45']);
    expect(s.health.path).toBe('/healthz');
  });

  it('keeps the text of scalars meant as strings (VERSION: 1.10 is not 1.1)', () => {
    expect(spec(parseDeploymentYaml(design)).env.VERSION).toBe('1.10');
  });

  it('reads JSON too', () => {
    expect(spec(parseDeploymentYaml(JSON.stringify(base))).name).toBe('blog');
  });

  it('reports syntax errors with line and column', () => {
    const e = errors(parseDeploymentYaml('name: blog\nimage: x\nport: 80\nenv:\n  A: b: c\n'));
    expect(e[0]).toMatchObject({ path: '', line: 5, column: 6 });
    expect(e[0]!.message).toMatch(/^YAML syntax: Nested mappings/);
    const dup = errors(parseDeploymentYaml('name: blog\nname: other\n'));
    expect(dup[0]).toMatchObject({ line: 2, column: 1 });
    expect(dup[0]!.message).toContain('unique');
  });

  it('places validation errors at their line and column', () => {
    const r = parseDeploymentYaml('name: blog\nimage: x\nport: 80\nresources:\n  memory: 512m\n');
    expect(errors(r)).toEqual([
      expect.objectContaining({ path: 'resources.memory', line: 5, column: 11 }),
    ]);
    const missing = errors(parseDeploymentYaml('name: blog\nimage: x\n'));
    expect(missing).toEqual([{ path: 'port', message: expect.stringContaining('required') }]);
  });

  it('refuses an empty file, a bare scalar and several documents', () => {
    expect(errorAt(parseDeploymentYaml(''), '')).toContain('empty');
    expect(errorAt(parseDeploymentYaml('just words'), '')).toContain('mapping');
    expect(errors(parseDeploymentYaml('name: a\n---\nname: b\n'))[0]!.message).toContain('YAML');
  });

  it('refuses a file too large before parsing it', () => {
    expect(errorAt(parseDeploymentYaml('#'.repeat(300 * 1024)), '')).toContain(
      'larger than 256 KiB',
    );
  });

  it('refuses alias bombs', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) {
      bomb.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
          .fill('*' + String.fromCharCode(96 + i))
          .join(', ')}]`,
      );
    }
    const r = parseDeploymentYaml(`name: blog\nimage: x\nport: 1\nenv:\n  ${bomb.join('\n  ')}\n`);
    expect(errorAt(r, '')).toContain('alias');
  });
});
