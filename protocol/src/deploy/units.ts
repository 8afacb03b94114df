/**
 * Sizes and CPU amounts as people write them ("256MiB", "1GiB", "512M",
 * "500m", 0.5) turned into integers (bytes, millicores), and back into
 * words for messages. Shared by the deployment spec, the agent's flags
 * (`--deploy-memory 4GiB`) and whatever shows resources to a person.
 */

/** A value, or a message that says what was wrong with the input. */
export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

const KIB = 1024;
const MIB = 1024 ** 2;
const GIB = 1024 ** 3;
const TIB = 1024 ** 4;

/** Multipliers by unit, upper case: decimal without `i`, binary with it. */
const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  B: 1,
  K: 1e3,
  KB: 1e3,
  M: 1e6,
  MB: 1e6,
  G: 1e9,
  GB: 1e9,
  T: 1e12,
  TB: 1e12,
  KI: KIB,
  KIB: KIB,
  MI: MIB,
  MIB: MIB,
  GI: GIB,
  GIB: GIB,
  TI: TIB,
  TIB: TIB,
};

const SIZE_RE = /^(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)$/;

/** The units a size may carry, for messages. */
export const SIZE_UNITS_HELP =
  'a number of bytes, or a number with a unit: KiB, MiB, GiB, TiB (1024-based) or KB, MB, GB, TB (1000-based), e.g. 256MiB';

/**
 * Bytes from a size: a non-negative integer (bytes) or a string such as
 * "256MiB", "1.5GiB", "512M", "1048576". Units are case-insensitive, except
 * that a bare lower-case "m" is refused: Docker reads it as MiB and
 * Kubernetes as milli, so either reading would surprise someone.
 */
export function parseSize(input: unknown): Checked<number> {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      return { ok: false, message: `${input} is not a whole number of bytes; ${SIZE_UNITS_HELP}` };
    }
    return { ok: true, value: input };
  }
  if (typeof input !== 'string') {
    return { ok: false, message: `must be a size: ${SIZE_UNITS_HELP}` };
  }
  const m = SIZE_RE.exec(input.trim());
  if (!m) return { ok: false, message: `"${input}" is not a size: ${SIZE_UNITS_HELP}` };
  const [, num = '', unit = ''] = m;
  if (unit === 'm') {
    return {
      ok: false,
      message: `"${input}": the unit "m" is ambiguous (MiB to Docker, milli to Kubernetes); write ${num}MiB or ${num}MB`,
    };
  }
  const mult = SIZE_UNITS[unit.toUpperCase()];
  if (mult === undefined) {
    return { ok: false, message: `"${input}": unknown unit "${unit}"; ${SIZE_UNITS_HELP}` };
  }
  const bytes = Math.round(Number(num) * mult);
  if (!Number.isSafeInteger(bytes)) return { ok: false, message: `"${input}" is too large` };
  return { ok: true, value: bytes };
}

const CPU_RE = /^(\d+(?:\.\d+)?|\.\d+)(m?)$/;

/** How CPU may be written, for messages. */
export const CPU_HELP = 'CPU cores as a number (0.5, 2) or millicores as a string ("500m")';

/**
 * Millicores from a CPU amount: a number of cores (0.5, 2), a string of
 * cores ("0.5") or of millicores ("500m"). Rounded to whole millicores.
 */
export function parseCpu(input: unknown): Checked<number> {
  let cores: number;
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) {
      return { ok: false, message: `${input} is not a CPU amount; ${CPU_HELP}` };
    }
    cores = input;
  } else if (typeof input === 'string') {
    const m = CPU_RE.exec(input.trim());
    if (!m) return { ok: false, message: `"${input}" is not a CPU amount; ${CPU_HELP}` };
    cores = m[2] === 'm' ? Number(m[1]) / 1000 : Number(m[1]);
  } else {
    return { ok: false, message: `must be a CPU amount: ${CPU_HELP}` };
  }
  return { ok: true, value: Math.round(cores * 1000) };
}

function trimNumber(n: number, digits: number): string {
  return Number(n.toFixed(digits)).toString();
}

/** A byte count in words, 1024-based: "512 MiB", "1.5 GiB", "300 B". */
export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs >= TIB) return `${trimNumber(bytes / TIB, 1)} TiB`;
  if (abs >= GIB) return `${trimNumber(bytes / GIB, 1)} GiB`;
  if (abs >= MIB) return `${trimNumber(bytes / MIB, 1)} MiB`;
  if (abs >= KIB) return `${trimNumber(bytes / KIB, 1)} KiB`;
  return `${bytes} B`;
}

/** Millicores in words, as cores: "0.5 CPU", "2 CPU", "0.025 CPU". */
export function formatCpu(millis: number): string {
  return `${trimNumber(millis / 1000, 3)} CPU`;
}
