/** The server's job options, parsed once at start: defaults, units, and clear errors. */
import { describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { parseConfig } from '../src/config';

describe('job options', () => {
  it('has defaults: a 30 s lease, files under the data directory, 256 MiB per job', () => {
    const c = parseConfig({ dataDir: '/tmp/pw-data' });
    expect(c.jobLeaseMs).toBe(30_000);
    expect(c.jobFilesDir).toBe(resolve(join('/tmp/pw-data', 'job-files')));
    expect(c.jobFilesMaxBytes).toBe(256 * 1024 ** 2);
  });

  it('reads durations and sizes with their units', () => {
    const c = parseConfig({ jobLease: '2m', jobFilesDir: '/srv/files', jobFilesMax: '1GiB' });
    expect(c.jobLeaseMs).toBe(120_000);
    expect(c.jobFilesDir).toBe('/srv/files');
    expect(c.jobFilesMaxBytes).toBe(1024 ** 3);
    expect(parseConfig({ jobLease: '500ms' }).jobLeaseMs).toBe(500);
    expect(parseConfig({ jobLease: 5 }).jobLeaseMs).toBe(5000);
  });

  it('refuses a bad value naming the option and saying what to write', () => {
    expect(() => parseConfig({ jobLease: 'soon' })).toThrow(/jobLease: "soon" is not a duration/);
    expect(() => parseConfig({ jobLease: '10ms' })).toThrow(/jobLease/);
    expect(() => parseConfig({ jobFilesMax: 'lots' })).toThrow(/jobFilesMax: .*256MiB/);
    expect(() => parseConfig({ jobFilesMax: 0 })).toThrow(/jobFilesMax/);
  });
});
