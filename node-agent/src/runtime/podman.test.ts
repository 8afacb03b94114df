import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { defaultPodmanFlags, dockerFor, openRuntime } from './podman';

describe('finding an engine', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'pw-podman-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the settings of a machine that has its own containers.conf', () => {
    const conf = join(dir, 'containers.conf');
    writeFileSync(conf, '[engine]\n');
    const before = process.env.CONTAINERS_CONF;
    process.env.CONTAINERS_CONF = conf;
    try {
      expect(defaultPodmanFlags()).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.CONTAINERS_CONF;
      else process.env.CONTAINERS_CONF = before;
    }
  });

  it('reads engine addresses and refuses the ones it cannot use', () => {
    const socketOf = (host: string) =>
      (dockerFor(host).modem as { socketPath?: string }).socketPath;
    expect(socketOf('unix:///run/x.sock')).toBe('/run/x.sock');
    expect(socketOf('/run/y.sock')).toBe('/run/y.sock');
    expect(dockerFor('tcp://127.0.0.1:2375').modem).toMatchObject({
      host: '127.0.0.1',
      port: 2375,
    });
    expect(() => dockerFor('ssh://me@box')).toThrow(/not supported/);
  });

  it('says why there is no runtime when the engine named in DOCKER_HOST is not there', async () => {
    const sock = join(dir, 'nothing.sock');
    const opened = await openRuntime({
      stateDir: dir,
      allowedRegistries: [],
      env: { DOCKER_HOST: `unix://${sock}` },
    });
    expect(opened.runtime).toBeNull();
    expect(opened.detection).toEqual({
      ok: false,
      reason: `no container engine answers at unix://${sock}: no socket there`,
    });
    await opened.close();
  });
});
