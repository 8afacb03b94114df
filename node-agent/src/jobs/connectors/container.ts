/**
 * `container`: runs an image once, as a batch job. The image must be one
 * its owner allows (exact references, or `registry/name:*` for any tag)
 * and comes only from the allowed registries (pulled when it is not on the
 * node). The container gets no network unless the owner configured one,
 * the per-job CPU and memory limits, an init process, no privileges; the
 * job's files are unpacked under `/in` before it starts, its stdin is
 * written to it, and once it exits what it left in `/out` comes back as
 * the job's files (bounded in bytes; `files` in the output pairs each
 * path under /out with its upload name), with its exit code and its stdout
 * and stderr (each bounded; `truncated` says when cut). The container is
 * removed after, whatever happened; an aborted job's is killed.
 *
 * A non-zero exit code is a result, not a failure: the job ran, and the
 * submitter reads `exitCode` (as a batch system reports it). An
 * out-of-memory kill fails the attempt (retryable).
 */
import net from 'node:net';
import type Dockerode from 'dockerode';
import { imageAllowed, type ContainerInput, type WorkerConnector } from '@peerway/protocol';
import type { DockerRuntime } from '../../runtime/docker-api';
import { engineMessage } from '../../runtime/errors';
import { parseImageRef } from '../../runtime/image-ref';
import { defaultUlimits } from '../../runtime/ulimits';
import { LABEL_NODE } from '../../runtime/types';
import { JobError, abortReason } from '../errors';
import type { ContainerConnectorSettings } from '../settings';
import { TarTooLarge, packTar, unpackTar } from './tar';
import {
  uploadNames,
  type Connector,
  type JobContext,
  type JobFile,
  type JobOutcome,
} from './types';

/** The label naming the job a container runs for (with `peerway.node`). */
export const LABEL_JOB = 'peerway.job';
export const LABEL_ATTEMPT = 'peerway.attempt';

export interface ContainerConnectorOptions {
  settings: ContainerConnectorSettings;
  /** Pulls and image checks, with the connector's registries as its allow-list. */
  runtime: DockerRuntime;
  /** The same engine, for what a batch run needs beyond a replica's (archives, wait, attach). */
  docker: Dockerode;
  /** This node's short ID (the `peerway.node` label). */
  node: string;
  /** More labels on every job container (tests: `peerway.test`). */
  extraLabels?: Record<string, string>;
}

const CONTENT_TYPES: Record<string, string> = {
  txt: 'text/plain; charset=utf-8',
  json: 'application/json',
  csv: 'text/csv',
  html: 'text/html',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  pdf: 'application/pdf',
};

function contentType(name: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(name)?.[1]?.toLowerCase();
  return (ext && CONTENT_TYPES[ext]) || 'application/octet-stream';
}

/** A file's content from the input: UTF-8, or base64 after `base64:`. */
function fileData(content: string): Buffer {
  return content.startsWith('base64:')
    ? Buffer.from(content.slice('base64:'.length), 'base64')
    : Buffer.from(content, 'utf8');
}

/** Collects a stream up to `max` bytes, counting what it drops. */
class Bounded {
  private readonly chunks: Buffer[] = [];
  bytes = 0;
  constructor(private readonly max: number) {}
  push(b: Buffer): void {
    const room = this.max - Math.min(this.max, this.kept);
    if (room > 0) this.chunks.push(b.subarray(0, room));
    this.bytes += b.length;
  }
  private get kept(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }
  get truncated(): boolean {
    return this.bytes > this.max;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export class ContainerConnector implements Connector {
  readonly type = 'container' as const;

  constructor(private readonly o: ContainerConnectorOptions) {}

  describe(): Promise<WorkerConnector> {
    return Promise.resolve({
      type: 'container',
      services: [],
      models: [],
      images: [...this.o.settings.images],
    });
  }

  async run(raw: unknown, ctx: JobContext): Promise<JobOutcome> {
    const input = raw as ContainerInput;
    const s = this.o.settings;
    if (!imageAllowed(input.image, s.images))
      throw new JobError(
        `this node does not allow image ${input.image} (it allows ${s.images.join(', ')})`,
        false,
      );
    let ref;
    try {
      ref = parseImageRef(input.image);
    } catch (err) {
      throw new JobError((err as Error).message, false);
    }
    const image = `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ref.digest ? '' : ':latest'}${ref.digest ? `@${ref.digest}` : ''}`;
    try {
      if (!(await this.o.runtime.hasImage(input.image))) {
        ctx.progress({ message: `pulling ${ref.canonical}` });
        await this.o.runtime.pull(input.image);
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new JobError(
        (err as Error).message,
        !(code === 'registry_not_allowed' || code === 'image_not_found' || code === 'bad_image'),
        { cause: err },
      );
    }
    if (ctx.signal.aborted) throw new JobError(abortReason(ctx.signal), true);

    const docker = this.o.docker;
    let container: Dockerode.Container;
    try {
      container = await docker.createContainer({
        name: `peerway-job-${ctx.id}-${ctx.attempt}`.replace(/[^a-zA-Z0-9_.-]+/g, '-'),
        Image: image,
        ...(input.command ? { Entrypoint: input.command } : {}),
        ...(input.args ? { Cmd: input.args } : {}),
        Env: Object.entries(input.env).map(([k, v]) => `${k}=${v}`),
        Labels: {
          ...this.o.extraLabels,
          [LABEL_NODE]: this.o.node,
          [LABEL_JOB]: ctx.id,
          [LABEL_ATTEMPT]: String(ctx.attempt),
        },
        ...(input.stdin !== undefined
          ? { OpenStdin: true, StdinOnce: true, AttachStdin: true }
          : {}),
        HostConfig: {
          NetworkMode: s.network ? 'bridge' : 'none',
          Privileged: false,
          Init: true,
          RestartPolicy: { Name: 'no' },
          SecurityOpt: ['no-new-privileges'],
          Ulimits: defaultUlimits().map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
          ...(s.memoryBytes !== null ? { Memory: s.memoryBytes, MemorySwap: s.memoryBytes } : {}),
          ...(s.cpuCores !== null ? { NanoCpus: Math.round(s.cpuCores * 1e9) } : {}),
        },
      });
    } catch (err) {
      throw new JobError(
        `the engine refused to create the container: ${engineMessage(err)}`,
        true,
        {
          cause: err,
        },
      );
    }
    const kill = () => void container.remove({ force: true }).catch(() => undefined);
    ctx.signal.addEventListener('abort', kill, { once: true });
    try {
      const entries = [
        { name: 'in/' },
        { name: 'out/' },
        ...Object.entries(input.files).map(([name, content]) => ({
          name: `in/${name}`,
          data: fileData(content),
        })),
      ];
      // parent folders of nested files first
      const dirs = new Set<string>();
      for (const name of Object.keys(input.files)) {
        const parts = name.split('/').slice(0, -1);
        for (let i = 1; i <= parts.length; i++) dirs.add(`in/${parts.slice(0, i).join('/')}/`);
      }
      await container.putArchive(
        packTar([
          entries[0]!,
          entries[1]!,
          ...[...dirs].map((name) => ({ name })),
          ...entries.slice(2),
        ]),
        { path: '/' },
      );
      const stdin = input.stdin !== undefined ? await attachStdin(docker, container.id) : null;
      const waited = container.wait({ condition: 'next-exit' }) as Promise<{ StatusCode: number }>;
      waited.catch(() => undefined);
      await container.start();
      ctx.log.info({ id: container.id, image: ref.canonical }, 'job container started');
      if (stdin) stdin.end(Buffer.from(input.stdin ?? ''));
      const { StatusCode } = await waited;
      stdin?.destroy();
      if (ctx.signal.aborted) throw new JobError(abortReason(ctx.signal), true);
      const state = await container.inspect();
      if (state.State.OOMKilled)
        throw new JobError(
          `the container ran out of memory (limit ${s.memoryBytes ?? 'none'} bytes) and was killed`,
          true,
        );
      const [logs, files] = await Promise.all([this.logs(container), this.out(container)]);
      return {
        output: {
          exitCode: StatusCode,
          stdout: logs.stdout.text(),
          stderr: logs.stderr.text(),
          ...(logs.stdout.truncated ? { stdoutTruncated: true } : {}),
          ...(logs.stderr.truncated ? { stderrTruncated: true } : {}),
          files: files.map((f) => ({ path: f.path, name: f.name })),
        },
        files,
      };
    } catch (err) {
      if (ctx.signal.aborted) throw new JobError(abortReason(ctx.signal), true);
      if (err instanceof JobError) throw err;
      throw new JobError(`the job's container failed: ${engineMessage(err)}`, true, { cause: err });
    } finally {
      ctx.signal.removeEventListener('abort', kill);
      await container.remove({ force: true }).catch(() => undefined);
    }
  }

  /**
   * Its stdout and stderr, each bounded (the multiplexed stream read as it
   * comes). The container has exited, so the log is read without following:
   * Podman's `follow` on a stopped container's k8s-file log can end at a
   * random place (podman#21914), which showed here as a job's stdout cut short.
   */
  private async logs(c: Dockerode.Container): Promise<{ stdout: Bounded; stderr: Bounded }> {
    const max = this.o.settings.maxLogBytes;
    const stdout = new Bounded(max);
    const stderr = new Bounded(max);
    // without follow, dockerode answers with the whole body (a Buffer)
    const body = (await c.logs({ stdout: true, stderr: true, follow: false })) as
      Buffer | NodeJS.ReadableStream;
    const chunks: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(body)
      ? [body]
      : (body as AsyncIterable<Buffer>);
    let buf = Buffer.alloc(0);
    for await (const chunk of chunks) {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 8) {
        const len = buf.readUInt32BE(4);
        if (buf.length < 8 + len) break;
        (buf[0] === 2 ? stderr : stdout).push(buf.subarray(8, 8 + len));
        buf = buf.subarray(8 + len);
      }
    }
    return { stdout, stderr };
  }

  /** The files under /out, bounded in total bytes. */
  private async out(c: Dockerode.Container): Promise<(JobFile & { path: string })[]> {
    const max = this.o.settings.maxOutBytes;
    let stream: NodeJS.ReadableStream;
    try {
      stream = await c.getArchive({ path: '/out' });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return [];
      throw err;
    }
    try {
      const files = (await unpackTar(stream as AsyncIterable<Buffer>, max))
        .map((f) => ({ ...f, name: f.name.replace(/^\.?\/?out\//, '') }))
        .filter((f) => f.name && !f.name.split('/').some((x) => x === '..' || x === ''));
      const names = uploadNames(files.map((f) => f.name));
      return files.map((f, i) => ({
        name: names[i]!,
        path: f.name,
        contentType: contentType(f.name),
        data: f.data,
      }));
    } catch (err) {
      if (err instanceof TarTooLarge)
        throw new JobError(
          `the container left more than ${max} bytes in /out (the container connector's maxOutBytes)`,
          false,
        );
      throw err;
    } finally {
      (stream as unknown as { destroy?: () => void }).destroy?.();
    }
  }
}

/**
 * The container's stdin, attached before it starts (Docker API attach,
 * hijacked into a raw stream). Done by hand: docker-modem sends the attach
 * options as the request's body, which the engine takes for the first
 * bytes of stdin, and with no body Node never sends the request at all.
 * Ending the returned socket closes the container's stdin (StdinOnce).
 */
function attachStdin(docker: Dockerode, id: string): Promise<net.Socket> {
  const m = docker.modem as unknown as { socketPath?: string; host?: string; port?: number };
  return new Promise((resolve, reject) => {
    const sock = m.socketPath
      ? net.connect(m.socketPath)
      : net.connect(Number(m.port ?? 2375), m.host ?? '127.0.0.1');
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      if (!/^HTTP\/1\.[01] (101|200)/.test(head)) {
        sock.destroy();
        return reject(new Error(`attach answered ${head.split('\r\n')[0]}`));
      }
      // what the container writes comes from the logs; this socket only carries stdin
      sock.resume();
      resolve(sock);
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.once('connect', () =>
      sock.write(
        `POST /containers/${encodeURIComponent(id)}/attach?stream=1&stdin=1&stdout=0&stderr=0 HTTP/1.1\r\n` +
          'Host: engine\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n',
      ),
    );
  });
}
