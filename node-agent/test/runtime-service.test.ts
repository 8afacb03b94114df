/**
 * The Podman API service a `peerway-agent run --deployments` starts for
 * itself (no DOCKER_HOST, no system engine socket) ends with the agent: on
 * Ctrl-C (SIGINT) and on SIGTERM. A `kill -9` of the agent cannot stop it;
 * the next run uses that service as one it did not start and leaves it
 * running when it ends. Real agent processes, real Podman.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerwayServer } from '@peerway/signaling-server';
import { startPodmanService } from '../src/runtime';
import { Fixture, type AgentProcess } from './helpers';
import { until } from '../../signaling-server/test/cluster-fixtures';

const f = new Fixture();
let server: PeerwayServer;
let token = '';
const savedDockerHost = process.env.DOCKER_HOST;
/** Services this file caused and must end itself (left by a kill -9). */
const orphans = new Set<number>();

beforeAll(async () => {
  delete process.env.DOCKER_HOST;
  server = await f.server();
  ({ token } = await f.user(server));
}, 60_000);

afterAll(async () => {
  if (savedDockerHost !== undefined) process.env.DOCKER_HOST = savedDockerHost;
  for (const pid of orphans) if (running(pid)) process.kill(pid, 'SIGTERM');
  await f.cleanup();
});

/** The PIDs of `podman … system service … unix://<socket>` processes. */
function servicesOn(socket: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let cmd: string[];
    try {
      cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (cmd.includes('service') && cmd.includes(`unix://${socket}`) && running(Number(d)))
      out.push(Number(d));
  }
  return out;
}

/** Alive and not a zombie. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function startAgent(home?: string): Promise<AgentProcess> {
  const a = await f.agent({
    serverUrl: server.config.publicUrl,
    token,
    services: [],
    ...(home ? { home } : {}),
    waitFor: /Connected to/,
    extraArgs: ['--deployments'],
  });
  await a.waitFor(/container runtime: podman \d/, 30_000);
  return a;
}

/** How soon after the agent's exit its service must be gone. */
const ENDS_WITHIN_MS = 4000;

describe("the agent's own Podman service", () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`ends with the agent on ${signal}`, async () => {
      const a = await startAgent();
      const socket = join(a.home, 'podman.sock');
      const [pid, ...more] = servicesOn(socket);
      expect(pid, `a podman service on ${socket}`).toBeDefined();
      expect(more).toEqual([]);
      expect(a.stdout).toContain(socket);
      await a.kill(signal);
      expect(a.proc.exitCode).toBe(0);
      // stopped by the agent it is gone at once (0.2-0.6 s here); left alone it ends only when
      // it next writes to its log pipe, whose reader is gone (about 8 s later here)
      await until(
        () => !running(pid!),
        `the podman service (pid ${pid}) gone after ${signal}`,
        ENDS_WITHIN_MS,
      );
    });
  }

  it('leaves running a service it did not start (one answering on its socket already)', async () => {
    const home = f.tmp('pw-agent-');
    const socket = join(home, 'podman.sock');
    const ours = await startPodmanService({ socketPath: socket });
    try {
      const [pid] = servicesOn(socket);
      expect(pid).toBeDefined();
      const a = await startAgent(home);
      expect(servicesOn(socket)).toEqual([pid]);
      await a.kill('SIGINT');
      expect(a.proc.exitCode).toBe(0);
      expect(running(pid!)).toBe(true);
    } finally {
      await ours.stop();
    }
  });

  it('outlives a kill -9 of the agent; the next run still gets an engine and ends its own', async () => {
    const first = await startAgent();
    const socket = join(first.home, 'podman.sock');
    const [pid] = servicesOn(socket);
    expect(pid).toBeDefined();
    orphans.add(pid!);
    await first.kill('SIGKILL');
    expect(running(pid!), 'no code runs on a kill -9: the service is still there').toBe(true);

    // the orphan's log pipe (to the dead agent) is closed: its first answer ends it, and the
    // next run starts a service of its own in its place, which ends with that run
    const second = await startAgent(first.home);
    await second.kill('SIGINT');
    expect(second.proc.exitCode).toBe(0);
    await until(() => servicesOn(socket).length === 0, 'no service left on the socket', 20_000);
  });
});
