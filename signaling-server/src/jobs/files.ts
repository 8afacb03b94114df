/**
 * A job's files on disk (`--job-files-dir`, default `<data dir>/job-files`):
 * what an attempt uploaded (`PUT /api/agent/jobs/:id/files/:name`) and an
 * uploaded output waiting for its `job-result`. The store keeps the list
 * (name, bytes, content type); the bytes live here, one folder per job.
 * Several instances need this folder shared (or the agent's uploads and the
 * submitter's downloads reaching the same instance).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { JOB_FILE_NAME_RE, PeerwayError } from '@peerway/protocol';

export { JOB_FILE_NAME_RE };
/** Job IDs as the broker makes them (and the protocol's `id` allows). */
const JOB_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

export class JobFiles {
  constructor(
    private readonly dir: string,
    /** Bytes all of one job's files may take together. */
    readonly maxBytesPerJob: number,
  ) {}

  private folder(jobId: string): string {
    if (!JOB_ID_RE.test(jobId)) throw new PeerwayError('bad_request', 'not a job ID');
    return join(this.dir, jobId);
  }

  /** Bytes the job's files take now. */
  async used(jobId: string): Promise<number> {
    let total = 0;
    let names: string[] = [];
    try {
      names = await readdir(this.folder(jobId));
    } catch {
      return 0;
    }
    for (const n of names)
      if (!n.startsWith('.')) total += (await stat(join(this.folder(jobId), n))).size;
    return total;
  }

  /**
   * Writes one file from a stream, within what the job has left; a file
   * that would go over is removed and a 413 thrown. Returns its size.
   */
  async save(jobId: string, name: string, body: Readable): Promise<number> {
    if (!JOB_FILE_NAME_RE.test(name))
      throw new PeerwayError(
        'bad_request',
        `file name ${JSON.stringify(name).slice(0, 140)}: letters, digits, ".", "_", "-" (up to 128, not starting with ".")`,
      );
    const folder = this.folder(jobId);
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const path = join(folder, name);
    const before = await stat(path).then(
      (s) => s.size,
      () => 0,
    );
    const room = this.maxBytesPerJob - ((await this.used(jobId)) - before);
    let bytes = 0;
    const tmp = join(folder, `.upload-${name}-${randomBytes(6).toString('hex')}`);
    const limit = this.maxBytesPerJob;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        if (bytes <= room) return cb(null, chunk);
        cb(
          new PeerwayError(
            'message_too_large',
            `the job's files may take ${Math.max(0, room)} more bytes (the server keeps at most ${sizeText(limit)} of files per job: --job-files-max)`,
          ),
        );
      },
    });
    try {
      await pipeline(body, counter, createWriteStream(tmp, { mode: 0o600 }));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await rename(tmp, path);
    return bytes;
  }

  /** The file's bytes as a stream, or null when it is not there. */
  async open(jobId: string, name: string): Promise<{ stream: Readable; bytes: number } | null> {
    if (!JOB_FILE_NAME_RE.test(name)) return null;
    const path = join(this.folder(jobId), name);
    const s = await stat(path).catch(() => null);
    if (!s?.isFile()) return null;
    return { stream: createReadStream(path), bytes: s.size };
  }

  /** Keeps an attempt's uploaded output (JSON text) until its `job-result`. */
  async saveOutput(jobId: string, attempt: number, json: string): Promise<void> {
    const folder = this.folder(jobId);
    await mkdir(folder, { recursive: true, mode: 0o700 });
    await writeFile(join(folder, `.output-${attempt}.json`), json, { mode: 0o600 });
  }

  /** The attempt's uploaded output (JSON text), or null when none arrived. */
  async readOutput(jobId: string, attempt: number): Promise<string | null> {
    return readFile(join(this.folder(jobId), `.output-${attempt}.json`), 'utf8').catch(() => null);
  }

  /** Removes every file of the job (it was removed from the store). */
  async removeJob(jobId: string): Promise<void> {
    await rm(this.folder(jobId), { recursive: true, force: true });
  }

  async dropOutput(jobId: string, attempt: number): Promise<void> {
    // unlink, not rm({ force }): Node 20's rm stats the path synchronously
    // first, on the event loop, once for every job that ends.
    await unlink(join(this.folder(jobId), `.output-${attempt}.json`)).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
  }
}

/** Bytes in words, for messages. */
export function sizeText(n: number): string {
  return n >= 1024 ** 2 ? `${Math.round(n / 1024 ** 2)} MiB` : `${n} bytes`;
}
