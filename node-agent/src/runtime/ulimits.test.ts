import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { defaultUlimits, parseProcLimits } from './ulimits';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             96362                96362                processes
Max open files            1024                 20000                files
`;

describe('default ulimits', () => {
  it('reads the hard limits from /proc/self/limits', () => {
    expect(parseProcLimits(LIMITS)).toEqual({ nofile: 20000, nproc: 96362 });
    expect(parseProcLimits('Max open files  unlimited  unlimited  files')).toEqual({
      nofile: null,
    });
  });

  it('stays at or under the hard limits and the caps', () => {
    expect(defaultUlimits(LIMITS)).toEqual([
      { name: 'nofile', soft: 20000, hard: 20000 },
      { name: 'nproc', soft: 32768, hard: 32768 },
    ]);
    expect(defaultUlimits(null)).toEqual([
      { name: 'nofile', soft: 65536, hard: 65536 },
      { name: 'nproc', soft: 32768, hard: 32768 },
    ]);
  });

  it("never exceeds this process's own hard limits", () => {
    const own = parseProcLimits(readFileSync('/proc/self/limits', 'utf8'));
    for (const u of defaultUlimits()) {
      const hard = own[u.name as 'nofile' | 'nproc'];
      if (hard != null) expect(u.hard).toBeLessThanOrEqual(hard);
      expect(u.soft).toBe(u.hard);
    }
  });
});
