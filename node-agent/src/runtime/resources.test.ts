import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { NodeCapacitySchema } from '@peerway/protocol';
import { detectGpus, nodeCapacity, parseNvidiaSmi } from './resources';

// This machine has no GPU and no nvidia-smi: the GPU path is tested with the
// output format `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader`
// prints (mocked, captured from a two-GPU machine), and a stand-in executable.
const CAPTURED = 'NVIDIA GeForce RTX 3090, 24576 MiB\nNVIDIA A100-SXM4-80GB, 81920 MiB\n';
const MiB = 1024 * 1024;

describe('node capacity', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'pw-resources-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses nvidia-smi output (mocked: no GPU here)', () => {
    expect(parseNvidiaSmi(CAPTURED)).toEqual([
      { model: 'NVIDIA GeForce RTX 3090', memoryBytes: 24576 * MiB },
      { model: 'NVIDIA A100-SXM4-80GB', memoryBytes: 81920 * MiB },
    ]);
    // nounits, a comma in the model name, junk lines
    expect(
      parseNvidiaSmi('Tesla T4, 15360\nModel, with comma, 8 GiB\n\nNo devices were found\n'),
    ).toEqual([
      { model: 'Tesla T4', memoryBytes: 15360 * MiB },
      { model: 'Model, with comma', memoryBytes: 8 * 1024 * MiB },
    ]);
  });

  it('runs nvidia-smi where there is one, and reports none where it is absent or fails', async () => {
    const fake = join(dir, 'nvidia-smi');
    writeFileSync(
      fake,
      `#!/bin/sh\n[ "$1" = "--query-gpu=name,memory.total" ] || exit 2\nprintf '${CAPTURED.replace(/\n/g, '\\n')}'\n`,
    );
    chmodSync(fake, 0o755);
    expect((await detectGpus(undefined, fake)).map((g) => g.model)).toEqual([
      'NVIDIA GeForce RTX 3090',
      'NVIDIA A100-SXM4-80GB',
    ]);
    expect(await detectGpus(undefined, join(dir, 'absent'))).toEqual([]);
    const broken = join(dir, 'broken-smi');
    writeFileSync(broken, '#!/bin/sh\necho "NVIDIA-SMI has failed" >&2\nexit 9\n');
    chmodSync(broken, 0o755);
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    expect(await detectGpus(log, broken)).toEqual([]);
    expect(lines.join('')).toMatch(/nvidia-smi failed/);
  });

  it('reports cores, memory, free disk of the data dir, os/arch and the runtime', async () => {
    const cap = await nodeCapacity({
      dataDir: join(dir, 'not-made-yet/data'),
      runtime: { ok: true, runtime: { name: 'podman', version: '4.3.1', apiVersion: '1.41' } },
      nvidiaSmi: join(dir, 'absent'),
    });
    const fs = statfsSync(dir);
    expect(cap.cpuCores).toBe(os.availableParallelism());
    expect(cap.memoryBytes).toBe(os.totalmem());
    expect(cap.diskFreeBytes).toBeGreaterThan(0);
    // the same file system, give or take what others wrote meanwhile
    expect(Math.abs(cap.diskFreeBytes - fs.bavail * fs.bsize)).toBeLessThan(512 * MiB);
    expect(cap).toMatchObject({ gpus: [], os: process.platform, arch: process.arch });
    expect(cap.runtime).toEqual({ name: 'podman', version: '4.3.1' });
    // the report is what the protocol's schema takes
    expect(NodeCapacitySchema.parse(cap)).toEqual(cap);
    const none = await nodeCapacity({
      dataDir: dir,
      runtime: { ok: false, reason: 'no engine' },
      nvidiaSmi: join(dir, 'absent'),
    });
    expect(none.runtime).toBeNull();
  });
});
