/** The job store contract on the SQLite store (a file per test). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { runJobStoreContract } from '../src/store/jobs-contract';
import { SqliteStore } from '../src/store/sqlite';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

runJobStoreContract(
  'SQLite',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerway-jobs-'));
    dirs.push(dir);
    const s = new SqliteStore(dir);
    await s.migrate();
    return s;
  },
  // another connection to the same file, as another process would open it
  async () => {
    const s = new SqliteStore(dirs.at(-1)!);
    await s.migrate();
    return s;
  },
);
