/**
 * The container runtime over the Docker Engine API (dockerode), which Docker
 * serves and Podman serves too (`podman system service`). One client drives
 * both, so the agent needs neither CLI nor a CLI's output format; the few
 * places they differ are here: Podman's compatible pull has no way to say
 * "plain HTTP", so images are pulled through Podman's own endpoint on the
 * same socket, with TLS verification off for loopback registries only
 * (Docker treats 127.0.0.0/8 as insecure by itself).
 *
 * Every container runs unprivileged on the engine's bridge network (never
 * the host's), with its port published on 127.0.0.1 at a port the engine
 * picks free, the three Peerway labels, an init process as PID 1 (so SIGTERM
 * stops apps that ignore it, like busybox httpd, at once instead of after
 * the stop timeout), no restart policy (the agent decides restarts), and
 * ulimits at or under this machine's hard limits.
 */
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { Readable } from 'node:stream';
import { RuntimeError, engineMessage, engineNoSuchContainer, engineStatus } from './errors';
import {
  assertRegistryAllowed,
  isLoopbackRegistry,
  parseImageRef,
  type ImageRef,
} from './image-ref';
import { demuxLogs } from './log-frames';
import { defaultUlimits } from './ulimits';
import {
  LABEL_ALLOCATION,
  LABEL_DEPLOYMENT,
  LABEL_NODE,
  peerwayLabels,
  type ContainerRecord,
  type Detection,
  type RunSpec,
  type RuntimeEvent,
  type RuntimeInfo,
} from './types';

/** How long a pull may take before it is abandoned, in ms. */
export const DEFAULT_PULL_TIMEOUT_MS = 10 * 60_000;
/** Seconds between SIGTERM and SIGKILL when a container is stopped. */
export const DEFAULT_STOP_TIMEOUT_S = 5;

export interface DockerRuntimeOptions {
  docker: Dockerode;
  /** Registries images may come from (host[:port], normalised); empty allows none. */
  allowedRegistries: readonly string[];
  /** More registries reached over plain HTTP besides loopback ones (Podman only). */
  insecureRegistries?: readonly string[];
  /** Where the socket is, for messages. */
  where?: string;
  pullTimeoutMs?: number;
  log?: Logger;
}

/** Which containers `list()` and `watch()` see; all given labels must match. */
export interface LabelFilter {
  node?: string;
  deployment?: string;
  allocation?: string;
  /** Other labels that must match exactly (e.g. `peerway.test`). */
  labels?: Record<string, string>;
}

/** A running `watch()`; `close()` ends it. */
export interface Watch {
  close(): void;
}

/** The container runtime the agent's deployment code uses. */
export interface ContainerRuntime {
  detect(): Promise<Detection>;
  hasImage(image: string): Promise<boolean>;
  /** Pulls an image from an allowed registry; resolves with the time it took. */
  pull(image: string): Promise<{ ms: number }>;
  /** Creates and starts a container; its image must be present. */
  run(spec: RunSpec): Promise<ContainerRecord>;
  inspect(id: string): Promise<ContainerRecord>;
  stop(id: string, timeoutS?: number): Promise<void>;
  /** Removes a container, running or not; false when it was already gone. */
  remove(id: string): Promise<boolean>;
  /** Containers carrying the Peerway labels (all of them, or those matching the filter). */
  list(filter?: LabelFilter): Promise<ContainerRecord[]>;
  /** The last lines of a container's stdout and stderr. */
  logs(id: string, tail?: number): Promise<string>;
  /** Streams start/exit/oom/remove events of matching containers; resolves once listening. */
  watch(
    filter: LabelFilter,
    onEvent: (e: RuntimeEvent) => void,
    onEnd?: (err?: Error) => void,
  ): Promise<Watch>;
}

/** The runtime over one engine socket. */
export class DockerRuntime implements ContainerRuntime {
  private info: RuntimeInfo | null = null;
  private readonly docker: Dockerode;

  constructor(private readonly opts: DockerRuntimeOptions) {
    this.docker = opts.docker;
  }

  /** Asks the engine who it is; never throws. */
  async detect(): Promise<Detection> {
    try {
      const v = (await this.docker.version()) as Dockerode.DockerVersion & {
        Components?: { Name: string; Version: string }[];
      };
      const podman = v.Components?.find((c) => c.Name === 'Podman Engine');
      this.info = podman
        ? { name: 'podman', version: podman.Version, apiVersion: v.ApiVersion }
        : { name: 'docker', version: v.Version, apiVersion: v.ApiVersion };
      return { ok: true, runtime: this.info };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'no socket there'
          : code === 'ECONNREFUSED'
            ? 'connection refused'
            : engineMessage(err);
      return {
        ok: false,
        reason: `no container engine answers at ${this.opts.where ?? 'the engine socket'}: ${why}`,
      };
    }
  }

  async hasImage(image: string): Promise<boolean> {
    const ref = this.allowedRef(image);
    try {
      await this.docker.getImage(pullName(ref)).inspect();
      return true;
    } catch (err) {
      if (engineStatus(err) === 404) return false;
      throw new RuntimeError(
        'runtime_unavailable',
        `could not look up image ${ref.canonical}: ${engineMessage(err)}`,
        { cause: err },
      );
    }
  }

  async pull(image: string): Promise<{ ms: number }> {
    const ref = this.allowedRef(image);
    const info = await this.engine();
    const started = performance.now();
    const abort = new AbortController();
    const timeoutMs = this.opts.pullTimeoutMs ?? DEFAULT_PULL_TIMEOUT_MS;
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const stream =
        info.name === 'podman'
          ? await this.podmanPull(ref, abort.signal)
          : await this.docker.pull(pullName(ref), { abortSignal: abort.signal });
      const error = await firstError(stream);
      if (error) throw pullError(ref, error);
    } catch (err) {
      if (err instanceof RuntimeError) throw err;
      if (abort.signal.aborted) {
        throw new RuntimeError(
          'pull_failed',
          `pulling ${ref.canonical} took over ${Math.round(timeoutMs / 1000)} s: abandoned`,
        );
      }
      const fromEngine = (err as { json?: unknown }).json != null;
      if (!fromEngine && engineStatus(err) !== undefined) {
        // an answer without a body: the endpoint, not the image, is missing
        throw new RuntimeError(
          'pull_failed',
          `could not pull ${ref.canonical}: the engine answered HTTP ${engineStatus(err)} to the pull request`,
          { cause: err },
        );
      }
      throw pullError(ref, engineMessage(err), err);
    } finally {
      clearTimeout(timer);
    }
    const ms = Math.round(performance.now() - started);
    this.opts.log?.info({ image: ref.canonical, ms }, 'image pulled');
    return { ms };
  }

  private podmanPull(ref: ImageRef, signal: AbortSignal): Promise<NodeJS.ReadableStream> {
    const insecure =
      isLoopbackRegistry(ref.registry) ||
      (this.opts.insecureRegistries ?? []).includes(ref.registry);
    return new Promise((resolve, reject) => {
      this.docker.modem.dial(
        {
          // Podman serves its own API only under a version prefix
          path: '/v4.0.0/libpod/images/pull?',
          method: 'POST',
          options: {
            reference: pullName(ref),
            tlsVerify: !insecure,
            quiet: true,
            policy: 'always',
          },
          abortSignal: signal,
          isStream: true,
          statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' },
        },
        (err, stream) => (err ? reject(err) : resolve(stream as NodeJS.ReadableStream)),
      );
    });
  }

  async run(spec: RunSpec): Promise<ContainerRecord> {
    const ref = this.allowedRef(spec.image);
    const options = createOptions(spec, ref);
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer(options);
    } catch (err) {
      const status = engineStatus(err);
      if (status === 404) {
        throw new RuntimeError(
          'image_not_found',
          `image ${ref.canonical} is not on this node: pull it first`,
          { cause: err },
        );
      }
      // Docker answers 409; Podman 500 with "…is already in use"
      if (status === 409 || /already in use/.test(engineMessage(err))) {
        throw new RuntimeError(
          'conflict',
          `a container named ${options.name} already exists (allocation ${spec.labels.allocation} runs here already: adopt or remove it)`,
          { cause: err },
        );
      }
      throw new RuntimeError(
        'run_failed',
        `the engine refused to create the container: ${engineMessage(err)}`,
        { cause: err },
      );
    }
    try {
      await container.start();
    } catch (err) {
      await this.remove(container.id).catch(() => undefined);
      throw new RuntimeError('run_failed', `the container did not start: ${engineMessage(err)}`, {
        cause: err,
      });
    }
    const record = await this.inspect(container.id);
    this.opts.log?.info(
      { id: record.id, name: record.name, hostPort: record.hostPort },
      'container started',
    );
    return record;
  }

  async inspect(id: string): Promise<ContainerRecord> {
    try {
      return toRecord(await this.docker.getContainer(id).inspect());
    } catch (err) {
      if (engineNoSuchContainer(err))
        throw new RuntimeError('not_found', `no container ${id}`, { cause: err });
      throw new RuntimeError(
        'runtime_unavailable',
        `could not inspect container ${id}: ${engineMessage(err)}`,
        { cause: err },
      );
    }
  }

  async stop(id: string, timeoutS = DEFAULT_STOP_TIMEOUT_S): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: timeoutS });
    } catch (err) {
      const status = engineStatus(err);
      if (status === 304) return; // already stopped
      if (engineNoSuchContainer(err))
        throw new RuntimeError('not_found', `no container ${id}`, { cause: err });
      throw new RuntimeError(
        'runtime_unavailable',
        `could not stop container ${id}: ${engineMessage(err)}`,
        { cause: err },
      );
    }
  }

  async remove(id: string): Promise<boolean> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
      return true;
    } catch (err) {
      if (engineNoSuchContainer(err)) return false;
      throw new RuntimeError(
        'runtime_unavailable',
        `could not remove container ${id}: ${engineMessage(err)}`,
        { cause: err },
      );
    }
  }

  async list(filter: LabelFilter = {}): Promise<ContainerRecord[]> {
    const summaries = await this.docker.listContainers({
      all: true,
      filters: { label: labelFilters(filter) },
    });
    const records: ContainerRecord[] = [];
    for (const s of summaries) {
      try {
        records.push(await this.inspect(s.Id));
      } catch (err) {
        // removed between the list and the inspect: it is not there any more
        if (!(err instanceof RuntimeError && err.code === 'not_found')) throw err;
      }
    }
    return records;
  }

  async logs(id: string, tail = 50): Promise<string> {
    try {
      const out: unknown = await this.docker
        .getContainer(id)
        .logs({ stdout: true, stderr: true, tail, follow: false });
      return demuxLogs(Buffer.isBuffer(out) ? out : await readAll(out as NodeJS.ReadableStream));
    } catch (err) {
      if (engineStatus(err) === 404)
        throw new RuntimeError('not_found', `no container ${id}`, { cause: err });
      throw new RuntimeError(
        'runtime_unavailable',
        `could not read the logs of ${id}: ${engineMessage(err)}`,
        { cause: err },
      );
    }
  }

  async watch(
    filter: LabelFilter,
    onEvent: (e: RuntimeEvent) => void,
    onEnd?: (err?: Error) => void,
  ): Promise<Watch> {
    const stream = (await this.docker.getEvents({
      filters: { type: ['container'], label: labelFilters(filter) },
    })) as unknown as Readable;
    let closed = false;
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        const event = toEvent(line);
        if (event) onEvent(event);
      }
    });
    stream.on('error', (err: Error) => {
      if (!closed) onEnd?.(err);
      closed = true;
    });
    stream.on('end', () => {
      if (!closed) onEnd?.();
      closed = true;
    });
    return {
      close: () => {
        closed = true;
        stream.destroy();
      },
    };
  }

  private allowedRef(image: string): ImageRef {
    const ref = parseImageRef(image);
    assertRegistryAllowed(ref, this.opts.allowedRegistries);
    return ref;
  }

  private async engine(): Promise<RuntimeInfo> {
    if (this.info) return this.info;
    const d = await this.detect();
    if (!d.ok) throw new RuntimeError('runtime_unavailable', d.reason);
    return d.runtime;
  }
}

/** The name an engine pulls and stores: registry/repository with a tag (latest if none) or digest. */
function pullName(ref: ImageRef): string {
  const name = `${ref.registry}/${ref.repository}`;
  if (ref.digest) return `${name}${ref.tag ? `:${ref.tag}` : ''}@${ref.digest}`;
  return `${name}:${ref.tag ?? 'latest'}`;
}

function pullError(ref: ImageRef, message: string, cause?: unknown): RuntimeError {
  if (
    /manifest unknown|name unknown|not found|no such image|repository does not exist/i.test(message)
  ) {
    return new RuntimeError(
      'image_not_found',
      `image ${ref.canonical} was not found in registry ${ref.registry} (it answered: ${message})`,
      { cause },
    );
  }
  return new RuntimeError(
    'pull_failed',
    `could not pull ${ref.canonical} from ${ref.registry}: ${message}`,
    { cause },
  );
}

/** Reads a pull's JSON-lines answer to its end; the first `error` field, if any. */
async function firstError(stream: NodeJS.ReadableStream): Promise<string | null> {
  const text = (await readAll(stream)).toString('utf8');
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    try {
      const obj = JSON.parse(line) as { error?: unknown; errorDetail?: { message?: unknown } };
      if (typeof obj.error === 'string' && obj.error) return obj.error;
      if (typeof obj.errorDetail?.message === 'string') return obj.errorDetail.message;
    } catch {
      // a progress line cut in an odd place: progress is not needed
    }
  }
  return null;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer | string>) {
    chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  }
  return Buffer.concat(chunks);
}

function labelFilters(filter: LabelFilter): string[] {
  const out: string[] = [];
  if (filter.node) out.push(`${LABEL_NODE}=${filter.node}`);
  if (filter.deployment) out.push(`${LABEL_DEPLOYMENT}=${filter.deployment}`);
  if (filter.allocation) out.push(`${LABEL_ALLOCATION}=${filter.allocation}`);
  for (const [k, v] of Object.entries(filter.labels ?? {})) out.push(`${k}=${v}`);
  if (out.length === 0) out.push(LABEL_ALLOCATION);
  return out;
}

const NAME_UNSAFE = /[^a-zA-Z0-9_.-]+/g;

/** The engine's create request for a spec; throws `run_failed` on a value no engine would take. */
export function createOptions(spec: RunSpec, ref: ImageRef): Dockerode.ContainerCreateOptions {
  const bad = (why: string) =>
    new RuntimeError('run_failed', `cannot run ${ref.canonical}: ${why}`);
  if (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535) {
    throw bad(`port ${spec.port} is not a TCP port (1–65535)`);
  }
  if (
    spec.memoryBytes !== undefined &&
    (!Number.isInteger(spec.memoryBytes) || spec.memoryBytes < 6 * 1024 * 1024)
  ) {
    throw bad(`memory limit ${spec.memoryBytes} bytes is under the engines' minimum of 6 MiB`);
  }
  if (spec.cpu !== undefined && !(spec.cpu > 0))
    throw bad(`cpu limit ${spec.cpu} is not a positive number of cores`);
  const own = [LABEL_NODE, LABEL_DEPLOYMENT, LABEL_ALLOCATION];
  for (const k of Object.keys(spec.extraLabels ?? {})) {
    if (own.includes(k)) throw bad(`label ${k} is set by the agent, not by the spec`);
  }
  for (const k of Object.keys(spec.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      throw bad(`environment variable name "${k}" is not valid`);
  }
  const portKey = `${spec.port}/tcp`;
  const name =
    spec.name ??
    `peerway-${spec.labels.deployment}-${spec.labels.allocation}`.replace(NAME_UNSAFE, '-');
  return {
    name,
    Image: pullName(ref),
    ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
    ...(spec.command ? { Cmd: spec.command } : {}),
    Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: {
      ...spec.extraLabels,
      [LABEL_NODE]: spec.labels.node,
      [LABEL_DEPLOYMENT]: spec.labels.deployment,
      [LABEL_ALLOCATION]: spec.labels.allocation,
    },
    ExposedPorts: { [portKey]: {} },
    StopTimeout: spec.stopTimeoutS ?? DEFAULT_STOP_TIMEOUT_S,
    HostConfig: {
      // HostPort '' lets the engine pick a free port, so two agents never race for one
      PortBindings: { [portKey]: [{ HostIp: '127.0.0.1', HostPort: '' }] },
      NetworkMode: 'bridge',
      Privileged: false,
      ReadonlyRootfs: spec.readOnlyRootFs ?? false,
      Init: true,
      RestartPolicy: { Name: 'no' },
      SecurityOpt: ['no-new-privileges'],
      Ulimits: (spec.ulimits ?? defaultUlimits()).map((u) => ({
        Name: u.name,
        Soft: u.soft,
        Hard: u.hard,
      })),
      ...(spec.memoryBytes !== undefined
        ? { Memory: spec.memoryBytes, MemorySwap: spec.memoryBytes }
        : {}),
      ...(spec.cpu !== undefined ? { NanoCpus: Math.round(spec.cpu * 1e9) } : {}),
    },
  };
}

/** A container record from the engine's inspect answer. */
export function toRecord(c: Dockerode.ContainerInspectInfo): ContainerRecord {
  const labels = c.Config?.Labels ?? {};
  let hostPort: number | null = null;
  for (const bindings of Object.values(c.NetworkSettings?.Ports ?? {})) {
    const b = bindings?.find((x) => x.HostIp === '127.0.0.1' && x.HostPort);
    if (b) hostPort = Number(b.HostPort);
  }
  const running = c.State?.Running === true;
  return {
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    image: c.Config?.Image ?? '',
    peerway: peerwayLabels(labels),
    labels,
    state: c.State?.Status ?? 'unknown',
    running,
    exitCode: running || c.State?.Status === 'created' ? null : (c.State?.ExitCode ?? null),
    oomKilled: c.State?.OOMKilled === true,
    hostPort: running ? hostPort : null,
    startedAt:
      c.State?.StartedAt && !c.State.StartedAt.startsWith('0001') ? c.State.StartedAt : null,
  };
}

/** One line of the events stream as a runtime event; null for actions nobody needs. */
export function toEvent(line: string): RuntimeEvent | null {
  let e: {
    Action?: unknown;
    status?: unknown;
    id?: unknown;
    Actor?: { ID?: unknown; Attributes?: Record<string, string> };
  };
  try {
    e = JSON.parse(line) as typeof e;
  } catch {
    return null;
  }
  const id = typeof e.Actor?.ID === 'string' ? e.Actor.ID : typeof e.id === 'string' ? e.id : null;
  const action =
    typeof e.Action === 'string' ? e.Action : typeof e.status === 'string' ? e.status : null;
  if (!id || !action) return null;
  const attrs = e.Actor?.Attributes ?? {};
  const peerway = peerwayLabels(attrs);
  switch (action) {
    case 'start':
      return { type: 'started', id, peerway };
    case 'die': {
      const code = Number(attrs.exitCode ?? attrs.containerExitCode);
      return { type: 'exited', id, peerway, exitCode: Number.isFinite(code) ? code : null };
    }
    case 'oom':
      return { type: 'oom', id, peerway };
    case 'remove':
      return { type: 'removed', id, peerway };
    default:
      return null;
  }
}
