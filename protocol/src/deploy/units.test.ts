import { describe, expect, it } from 'vitest';
import { formatBytes, formatCpu, parseCpu, parseSize } from './units';

const value = <T>(r: { ok: true; value: T } | { ok: false; message: string }) => {
  if (!r.ok) throw new Error(r.message);
  return r.value;
};
const message = (r: { ok: boolean; message?: string }) => (r.ok ? null : r.message);

describe('parseSize', () => {
  it.each([
    ['256MiB', 256 * 1024 ** 2],
    ['1GiB', 1024 ** 3],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['512M', 512e6],
    ['512MB', 512e6],
    ['2Gi', 2 * 1024 ** 3],
    ['64 mib', 64 * 1024 ** 2],
    ['1048576', 1048576],
    ['10k', 10_000],
    [' 3 TiB ', 3 * 1024 ** 4],
    [4096, 4096],
    [0, 0],
  ])('%j is %d bytes', (input, bytes) => {
    expect(value(parseSize(input))).toBe(bytes);
  });

  it('refuses a bare lower-case m, naming both readings and what to write', () => {
    const m = message(parseSize('512m'));
    expect(m).toContain('ambiguous');
    expect(m).toContain('512MiB or 512MB');
  });

  it.each([['1 parsec'], ['-1MiB'], ['MiB'], [''], ['1.2.3G']])(
    'refuses %j and lists the units',
    (input) => {
      expect(message(parseSize(input))).toMatch(/KiB, MiB, GiB/);
    },
  );

  it('refuses fractions of a byte, negatives and other types', () => {
    expect(parseSize(1.5).ok).toBe(false);
    expect(parseSize(-5).ok).toBe(false);
    expect(parseSize(true).ok).toBe(false);
    expect(parseSize(null).ok).toBe(false);
    expect(parseSize('99999999999999TiB').ok).toBe(false);
  });
});

describe('parseCpu', () => {
  it.each([
    [0.5, 500],
    [2, 2000],
    ['500m', 500],
    ['0.25', 250],
    ['2', 2000],
    ['1500m', 1500],
    [0.0004, 0],
  ])('%j is %d millicores', (input, millis) => {
    expect(value(parseCpu(input))).toBe(millis);
  });

  it.each([['half'], ['500 m'], ['-1'], [-0.5], [Number.NaN], [{}]])('refuses %j', (input) => {
    expect(message(parseCpu(input))).toMatch(/CPU/);
  });
});

describe('formatting', () => {
  it('says sizes 1024-based with one decimal at most', () => {
    expect(formatBytes(512 * 1024 ** 2)).toBe('512 MiB');
    expect(formatBytes(300 * 1024 ** 2)).toBe('300 MiB');
    expect(formatBytes(1.5 * 1024 ** 3)).toBe('1.5 GiB');
    expect(formatBytes(123456789)).toBe('117.7 MiB');
    expect(formatBytes(100)).toBe('100 B');
    expect(formatBytes(2 * 1024 ** 4)).toBe('2 TiB');
  });
  it('says CPU in cores', () => {
    expect(formatCpu(500)).toBe('0.5 CPU');
    expect(formatCpu(2000)).toBe('2 CPU');
    expect(formatCpu(333)).toBe('0.333 CPU');
  });
});
