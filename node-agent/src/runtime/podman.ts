/**
 * Finding a container engine, and starting Podman's Docker-compatible API
 * service when there is none. The order: an engine the owner named
 * (`host`), then `DOCKER_HOST`, then the sockets of a system Podman or
 * Docker service, then `podman system service` started by the agent itself
 * on a socket in its state directory.
 *
 * Podman's machine settings are passed as flags on the service's command
 * line, never written to /etc/containers: when the machine has no
 * containers.conf of its own, the service runs with `--cgroup-manager
 * cgroupfs --events-backend file` (they work without systemd) and
 * `--runtime runc` when runc is installed (crun fails on hosts with hybrid
 * cgroups). A machine whose owner wrote a containers.conf keeps its own
 * settings. Containers outlive the service (conmon supervises them), so an
 * agent that restarts finds them again.
 *
 * A service the agent started ends with the agent: on `stop()`, and on the
 * process's exit however it comes (`process.exit` after SIGINT/SIGTERM, an
 * error, the end of the program). A `kill -9` of the agent runs no code,
 * so its service lives on; the next run finds it answering on the socket
 * and uses it, as one it did not start (and so leaves it running).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { RuntimeError } from './errors';
import { DockerRuntime } from './docker-api';
import type { Detection } from './types';

/** The sockets of engines run as system services, in the order tried. */
export const SYSTEM_SOCKETS = ['/run/podman/podman.sock', '/var/run/docker.sock'];
/** How long `podman system service` may take to listen, in ms. */
export const PODMAN_START_TIMEOUT_MS = 15_000;

/** Finds an executable on PATH; null when absent. */
export function findOnPath(name: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/** The containers.conf files whose settings are the owner's own. */
function ownContainersConf(): string | null {
  const candidates = [
    process.env.CONTAINERS_CONF,
    '/etc/containers/containers.conf',
    join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'containers/containers.conf'),
  ];
  return candidates.find((p): p is string => !!p && existsSync(p)) ?? null;
}

/** Podman's global flags for this machine (see the module comment). */
export function defaultPodmanFlags(): string[] {
  if (ownContainersConf()) return [];
  const flags = ['--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  if (findOnPath('runc') || existsSync('/usr/sbin/runc')) flags.unshift('--runtime', 'runc');
  return flags;
}

export interface PodmanService {
  socketPath: string;
  /** False when a service from an earlier run already answered on the socket. */
  started: boolean;
  /** Stops the service if this process started it; containers keep running. */
  stop(): Promise<void>;
}

/**
 * Starts `podman [flags] system service --time=0 unix://<socketPath>` and
 * resolves once it listens. A service already answering there (left by an
 * earlier agent run) is used as it is.
 */
export async function startPodmanService(opts: {
  socketPath: string;
  podman?: string;
  flags?: string[];
  log?: Logger;
}): Promise<PodmanService> {
  const { socketPath } = opts;
  if (existsSync(socketPath)) {
    const docker = new Dockerode({ socketPath });
    const alive = await docker.ping().then(
      () => true,
      () => false,
    );
    if (alive) {
      opts.log?.info({ socketPath }, 'podman service already running');
      return { socketPath, started: false, stop: async () => {} };
    }
    rmSync(socketPath, { force: true });
  }
  const podman = opts.podman ?? findOnPath('podman');
  if (!podman)
    throw new RuntimeError('runtime_unavailable', 'podman is not installed (not on PATH)');
  const flags = opts.flags ?? defaultPodmanFlags();
  const args = [
    ...flags,
    '--log-level',
    'info',
    'system',
    'service',
    '--time=0',
    `unix://${socketPath}`,
  ];
  opts.log?.info({ podman, args }, 'starting podman system service');
  const child = spawn(podman, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const alive = () => child.exitCode === null && child.signalCode === null;
  // 'exit' handlers run synchronously: a signal is all there is time for
  const endWithUs = () => {
    if (alive()) child.kill('SIGTERM');
  };
  process.once('exit', endWithUs);
  try {
    await listening(child, socketPath);
  } catch (err) {
    process.off('exit', endWithUs);
    throw err;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => process.off('exit', endWithUs));
  child.stderr?.resume();
  return {
    socketPath,
    started: true,
    stop: async () => {
      if (!alive()) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Resolves when the service logs that it listens; rejects with its output if it exits first. */
function listening(child: ChildProcess, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const fail = (why: string) => {
      cleanup();
      child.kill('SIGKILL');
      reject(
        new RuntimeError(
          'runtime_unavailable',
          `podman system service ${why}: ${out.trim().slice(-600)}`,
        ),
      );
    };
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('API service listening on')) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null) =>
      fail(`exited (code ${code}) before listening on ${socketPath}`);
    const onError = (err: Error) => fail(`could not start (${err.message})`);
    const timer = setTimeout(
      () => fail(`did not listen within ${PODMAN_START_TIMEOUT_MS} ms`),
      PODMAN_START_TIMEOUT_MS,
    );
    const cleanup = () => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** A Docker client for `unix:///path`, `/path`, `tcp://host:port` or `http://host:port`. */
export function dockerFor(host: string): Dockerode {
  if (host.startsWith('/')) return new Dockerode({ socketPath: host });
  const url = new URL(host);
  if (url.protocol === 'unix:') return new Dockerode({ socketPath: url.pathname });
  if (url.protocol === 'tcp:' || url.protocol === 'http:') {
    return new Dockerode({ host: url.hostname, port: Number(url.port || 2375), protocol: 'http' });
  }
  throw new RuntimeError(
    'runtime_unavailable',
    `engine address "${host}" is not supported: use unix:///path/to.sock or tcp://host:port`,
  );
}

export interface OpenRuntimeOptions {
  /** The engine's address; else `DOCKER_HOST`, a system socket, or a Podman service of our own. */
  host?: string;
  /** Where the agent's own Podman socket goes (e.g. `$PEERWAY_HOME`). */
  stateDir: string;
  allowedRegistries: readonly string[];
  insecureRegistries?: readonly string[];
  /** Start Podman's service when no engine answers (default true). */
  startPodman?: boolean;
  podmanFlags?: string[];
  env?: NodeJS.ProcessEnv;
  log?: Logger;
}

export interface OpenedRuntime {
  /** null when no engine could be reached or started; `detection.reason` says why. */
  runtime: DockerRuntime | null;
  detection: Detection;
  /** Where the engine is. */
  where: string;
  /** Stops what this call started (the Podman service); containers keep running. */
  close(): Promise<void>;
}

/** Connects to a container engine, starting Podman's API service if needed; never throws. */
export async function openRuntime(opts: OpenRuntimeOptions): Promise<OpenedRuntime> {
  const env = opts.env ?? process.env;
  const tried: string[] = [];
  const make = (docker: Dockerode, where: string) =>
    new DockerRuntime({
      docker,
      where,
      allowedRegistries: opts.allowedRegistries,
      insecureRegistries: opts.insecureRegistries,
      log: opts.log,
    });
  const explicit = opts.host ?? env.DOCKER_HOST;
  if (explicit) {
    let runtime: DockerRuntime;
    try {
      runtime = make(dockerFor(explicit), explicit);
    } catch (err) {
      return none(`${(err as Error).message}`, explicit);
    }
    const detection = await runtime.detect();
    return {
      runtime: detection.ok ? runtime : null,
      detection,
      where: explicit,
      close: async () => {},
    };
  }
  for (const socketPath of SYSTEM_SOCKETS) {
    if (!existsSync(socketPath)) {
      tried.push(`no socket at ${socketPath}`);
      continue;
    }
    const runtime = make(new Dockerode({ socketPath }), socketPath);
    const detection = await runtime.detect();
    if (detection.ok) return { runtime, detection, where: socketPath, close: async () => {} };
    tried.push(detection.reason);
  }
  if (opts.startPodman === false)
    return none(`DOCKER_HOST is unset, ${tried.join(', ')}`, 'nowhere');
  const socketPath = join(opts.stateDir, 'podman.sock');
  let service: PodmanService;
  try {
    service = await startPodmanService({ socketPath, flags: opts.podmanFlags, log: opts.log });
  } catch (err) {
    return none(
      `DOCKER_HOST is unset, ${tried.join(', ')}, and ${(err as Error).message}`,
      socketPath,
    );
  }
  const runtime = make(new Dockerode({ socketPath }), socketPath);
  const detection = await runtime.detect();
  if (!detection.ok) await service.stop();
  return {
    runtime: detection.ok ? runtime : null,
    detection,
    where: socketPath,
    close: () => service.stop(),
  };
}

function none(reason: string, where: string): OpenedRuntime {
  return {
    runtime: null,
    detection: { ok: false, reason: `no container runtime: ${reason}` },
    where,
    close: async () => {},
  };
}
