import { engineNoSuchContainer } from './errors';
import { describe, expect, it } from 'vitest';
import type Dockerode from 'dockerode';
import { createOptions, toEvent, toRecord } from './docker-api';
import { parseImageRef } from './image-ref';
import type { RunSpec } from './types';

const REF = parseImageRef('127.0.0.1:5000/team/web:1');
const SPEC: RunSpec = {
  image: '127.0.0.1:5000/team/web:1',
  port: 8080,
  labels: { node: '4f2a8b', deployment: 'blog', allocation: 'a1' },
  memoryBytes: 256 * 1024 * 1024,
  cpu: 0.5,
  env: { LOG_LEVEL: 'info' },
  command: ['node', 'server.js'],
  ulimits: [{ name: 'nofile', soft: 100, hard: 200 }],
};

describe('create request', () => {
  it('publishes on 127.0.0.1 only, at a port the engine picks, unprivileged, with the labels and limits', () => {
    const o = createOptions(SPEC, REF);
    expect(o).toMatchObject({
      name: 'peerway-blog-a1',
      Image: '127.0.0.1:5000/team/web:1',
      Cmd: ['node', 'server.js'],
      Env: ['LOG_LEVEL=info'],
      Labels: {
        'peerway.node': '4f2a8b',
        'peerway.deployment': 'blog',
        'peerway.allocation': 'a1',
      },
      ExposedPorts: { '8080/tcp': {} },
    });
    expect(o.HostConfig).toMatchObject({
      PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
      NetworkMode: 'bridge',
      Privileged: false,
      Init: true,
      Memory: 268435456,
      MemorySwap: 268435456,
      NanoCpus: 500_000_000,
      RestartPolicy: { Name: 'no' },
      Ulimits: [{ Name: 'nofile', Soft: 100, Hard: 200 }],
    });
  });

  it("takes the spec's command as the entrypoint and its args as the command", () => {
    const o = createOptions(
      { ...SPEC, entrypoint: ['/bin/app'], command: ['--port', '8080'] },
      REF,
    );
    expect(o.Entrypoint).toEqual(['/bin/app']);
    expect(o.Cmd).toEqual(['--port', '8080']);
    expect(createOptions({ ...SPEC, command: undefined }, REF)).not.toHaveProperty('Entrypoint');
  });

  it('pins an untagged image to latest and keeps a digest', () => {
    expect(createOptions({ ...SPEC, image: 'nginx' }, parseImageRef('nginx')).Image).toBe(
      'docker.io/library/nginx:latest',
    );
    const d = `sha256:${'b'.repeat(64)}`;
    expect(createOptions(SPEC, parseImageRef(`ghcr.io/o/a@${d}`)).Image).toBe(`ghcr.io/o/a@${d}`);
  });

  it('refuses values no engine would take, in words', () => {
    expect(() => createOptions({ ...SPEC, port: 0 }, REF)).toThrow(/port 0 is not a TCP port/);
    expect(() => createOptions({ ...SPEC, memoryBytes: 1024 }, REF)).toThrow(
      /under the engines' minimum/,
    );
    expect(() => createOptions({ ...SPEC, cpu: -1 }, REF)).toThrow(
      /not a positive number of cores/,
    );
    expect(() => createOptions({ ...SPEC, env: { 'BAD-NAME': 'x' } }, REF)).toThrow(/BAD-NAME/);
    expect(() =>
      createOptions({ ...SPEC, extraLabels: { 'peerway.allocation': 'other' } }, REF),
    ).toThrow(/set by the agent/);
  });

  it('makes a safe container name from any deployment and allocation id', () => {
    const o = createOptions({ ...SPEC, labels: { ...SPEC.labels, allocation: 'a/b c' } }, REF);
    expect(o.name).toBe('peerway-blog-a-b-c');
  });
});

describe('engine answers', () => {
  it('reads the exit code from a die event, Docker and Podman alike', () => {
    const attrs = { 'peerway.node': 'n', 'peerway.deployment': 'd', 'peerway.allocation': 'a' };
    const podman = JSON.stringify({
      status: 'die',
      id: 'c1',
      Type: 'container',
      Action: 'die',
      Actor: { ID: 'c1', Attributes: { ...attrs, containerExitCode: '3', exitCode: '3' } },
    });
    expect(toEvent(podman)).toEqual({
      type: 'exited',
      id: 'c1',
      exitCode: 3,
      peerway: { node: 'n', deployment: 'd', allocation: 'a' },
    });
    const docker = JSON.stringify({
      Action: 'die',
      Actor: { ID: 'c2', Attributes: { exitCode: '137' } },
    });
    expect(toEvent(docker)).toMatchObject({
      type: 'exited',
      id: 'c2',
      exitCode: 137,
      peerway: null,
    });
    expect(toEvent(JSON.stringify({ Action: 'exec_create', Actor: { ID: 'c3' } }))).toBeNull();
    expect(toEvent('not json')).toBeNull();
  });

  it('reads a record from an inspect answer: the loopback port while running, the exit code after', () => {
    const base = {
      Id: 'c1',
      Name: '/peerway-blog-a1',
      Config: {
        Image: 'x',
        Labels: { 'peerway.node': 'n', 'peerway.deployment': 'd', 'peerway.allocation': 'a' },
      },
      NetworkSettings: { Ports: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '41000' }] } },
    };
    const running = toRecord({
      ...base,
      State: {
        Status: 'running',
        Running: true,
        ExitCode: 0,
        OOMKilled: false,
        StartedAt: '2026-01-01T00:00:00Z',
      },
    } as unknown as Dockerode.ContainerInspectInfo);
    expect(running).toMatchObject({
      name: 'peerway-blog-a1',
      running: true,
      hostPort: 41000,
      exitCode: null,
    });
    expect(running.peerway).toEqual({ node: 'n', deployment: 'd', allocation: 'a' });
    const exited = toRecord({
      ...base,
      State: {
        Status: 'exited',
        Running: false,
        ExitCode: 137,
        OOMKilled: true,
        StartedAt: '2026-01-01T00:00:00Z',
      },
    } as unknown as Dockerode.ContainerInspectInfo);
    expect(exited).toMatchObject({
      running: false,
      hostPort: null,
      exitCode: 137,
      oomKilled: true,
    });
  });
});

describe('a container that is gone', () => {
  it("is Docker's 404 and Podman's 500 'no such container' (a container removed mid-list), nothing else", () => {
    // the error docker-modem raised here for Podman 4.3, captured in a deploy-agent test run
    const podman = Object.assign(new Error('(HTTP code 500) server error'), {
      statusCode: 500,
      json: {
        cause: 'no such container',
        message: 'container dd2c1c31c3ee does not exist in database: no such container',
        response: 500,
      },
    });
    expect(engineNoSuchContainer(podman)).toBe(true);
    expect(engineNoSuchContainer({ statusCode: 404 })).toBe(true);
    expect(engineNoSuchContainer({ statusCode: 500, json: { message: 'disk full' } })).toBe(false);
    expect(engineNoSuchContainer(new Error('socket hang up'))).toBe(false);
  });
});
