/**
 * The little of the tar format the container connector needs: writing a
 * job's input files into an archive the engine unpacks at `/`
 * (PUT /containers/:id/archive), and reading the archive the engine makes
 * of `/out` (GET /containers/:id/archive), with a byte bound as it
 * streams. POSIX ustar records, with a PAX `path` record for long names on
 * both sides; GNU long names (`L`) are read too.
 */

const BLOCK = 512;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, size: number, type: '0' | '5' | 'x', mode: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write(octal(mode, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(Math.floor(Date.now() / 1000), 12), 136);
  h.write('        ', 148); // the checksum counts itself as spaces
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148);
  return h;
}

const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

function paxRecord(key: string, value: string): Buffer {
  // "<length> key=value\n", the length counting its own digits
  const body = ` ${key}=${value}\n`;
  const n = Buffer.byteLength(body);
  let len = n + 1;
  while (String(len).length + n !== len) len = String(len).length + n;
  return Buffer.from(`${len}${body}`);
}

export interface TarEntry {
  /** A relative path; directories end in "/". */
  name: string;
  data?: Buffer;
  mode?: number;
}

/** An archive of these entries (directories and regular files). */
export function packTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const dir = e.name.endsWith('/');
    const data = dir ? Buffer.alloc(0) : (e.data ?? Buffer.alloc(0));
    if (Buffer.byteLength(e.name) > 100) {
      const pax = paxRecord('path', e.name);
      parts.push(header('PaxHeader', pax.length, 'x', 0o644), pax, pad(pax.length));
    }
    parts.push(header(e.name, data.length, dir ? '5' : '0', e.mode ?? (dir ? 0o777 : 0o644)));
    if (data.length) parts.push(data, pad(data.length));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

export interface UntarredFile {
  name: string;
  data: Buffer;
}

/** Thrown when the archive's files add up to more than the bound. */
export class TarTooLarge extends Error {}

function readString(b: Buffer, at: number, len: number): string {
  const s = b.subarray(at, at + len);
  const nul = s.indexOf(0);
  return (nul < 0 ? s : s.subarray(0, nul)).toString('utf8');
}

/**
 * The regular files of an archive stream (directories, links and devices
 * are skipped), stopping with TarTooLarge once their bytes pass `maxBytes`.
 */
export async function unpackTar(
  stream: AsyncIterable<Buffer | string>,
  maxBytes: number,
): Promise<UntarredFile[]> {
  const files: UntarredFile[] = [];
  let buf = Buffer.alloc(0);
  let total = 0;
  let nextName: string | null = null;
  // the entry being read: its header is parsed, its data not all here yet
  let current: { name: string; type: string; size: number } | null = null;
  const take = (): boolean => {
    for (;;) {
      if (!current) {
        if (buf.length < BLOCK) return false;
        const h = buf.subarray(0, BLOCK);
        if (h.every((x) => x === 0)) return true; // the end blocks
        const size = parseInt(readString(h, 124, 12).trim() || '0', 8);
        const prefix = readString(h, 345, 155);
        const name = readString(h, 0, 100);
        current = {
          name: prefix && readString(h, 257, 6).startsWith('ustar') ? `${prefix}/${name}` : name,
          type: String.fromCharCode(h[156] || 48),
          size,
        };
        buf = buf.subarray(BLOCK);
        if (current.type === '0' || current.type === '7') {
          total += size;
          if (total > maxBytes) throw new TarTooLarge(`more than ${maxBytes} bytes`);
        }
      }
      const padded = current.size + ((BLOCK - (current.size % BLOCK)) % BLOCK);
      if (buf.length < padded) return false;
      const data = Buffer.from(buf.subarray(0, current.size));
      buf = buf.subarray(padded);
      const e = current;
      current = null;
      if (e.type === 'x') {
        const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
        if (m) nextName = m[1]!;
      } else if (e.type === 'L') {
        nextName = readString(data, 0, data.length);
      } else {
        const name = nextName ?? e.name;
        nextName = null;
        if (e.type === '0' || e.type === '7' || e.type === '\0') files.push({ name, data });
      }
    }
  };
  for await (const chunk of stream) {
    buf = Buffer.concat([buf, typeof chunk === 'string' ? Buffer.from(chunk) : chunk]);
    if (take()) break;
  }
  return files;
}
