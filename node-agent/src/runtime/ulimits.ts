/**
 * Default ulimits for containers. An engine's own defaults can exceed what
 * this machine lets a process raise its limits to (Podman asks for nofile
 * 1048576, and without CAP_SYS_RESOURCE runc fails with "setrlimit
 * RLIMIT_NOFILE: Operation not permitted"), so every container gets nofile and
 * nproc at or under this process's hard limits.
 */
import { readFileSync } from 'node:fs';
import type { Ulimit } from './types';

/**
 * The most a container gets by default, even where the hard limit is higher
 * or unlimited. nproc counts every process of the user on the host (root in a
 * container is root outside without a user namespace), so it stays high; but
 * Podman lowers its own hard nproc limit to 32768 when it starts (measured:
 * 96362 for its parent, 32768 for the service), and a container may not
 * exceed its engine's.
 */
export const DEFAULT_ULIMIT_CAPS = { nofile: 65_536, nproc: 32_768 } as const;

/** Hard limits by their /proc name ("Max open files" → nofile), null for unlimited. */
export function parseProcLimits(text: string): { nofile?: number | null; nproc?: number | null } {
  const out: { nofile?: number | null; nproc?: number | null } = {};
  for (const line of text.split('\n')) {
    // "Max open files            20000                20000                files"
    const m = /^(Max open files|Max processes)\s+(\S+)\s+(\S+)/.exec(line);
    if (!m) continue;
    const hard = m[3] === 'unlimited' ? null : Number(m[3]);
    if (hard !== null && !Number.isFinite(hard)) continue;
    if (m[1] === 'Max open files') out.nofile = hard;
    else out.nproc = hard;
  }
  return out;
}

/** nofile and nproc, each min(hard limit, cap), soft = hard. */
export function defaultUlimits(
  limitsText: string | null = readProcLimits(),
  caps: { nofile: number; nproc: number } = DEFAULT_ULIMIT_CAPS,
): Ulimit[] {
  const hard = limitsText ? parseProcLimits(limitsText) : {};
  const pick = (h: number | null | undefined, cap: number) => (h == null ? cap : Math.min(h, cap));
  const nofile = pick(hard.nofile, caps.nofile);
  const nproc = pick(hard.nproc, caps.nproc);
  return [
    { name: 'nofile', soft: nofile, hard: nofile },
    { name: 'nproc', soft: nproc, hard: nproc },
  ];
}

function readProcLimits(): string | null {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    // not Linux: the engine runs elsewhere (a VM), its defaults apply there
    return null;
  }
}
