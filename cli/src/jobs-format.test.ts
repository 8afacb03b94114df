import { describe, expect, it } from 'vitest';
import type { JobView } from '@peerway/protocol';
import {
  FollowedLines,
  OUTPUT_LINES_SHOWN,
  endLine,
  eventLine,
  jobLines,
  progressText,
  requirementsText,
} from './jobs-format';

const T0 = Date.UTC(2026, 11, 2, 4, 31, 7);
const job = (over: Partial<JobView> = {}): JobView => ({
  id: 'j1',
  type: 'simulation',
  state: 'succeeded',
  priority: 3,
  requirements: { models: [], labels: {} },
  input: {},
  files: [],
  attempts: [],
  maxAttempts: 3,
  timeoutS: 60,
  backoff: { type: 'exponential', delayMs: 1000, maxDelayMs: 60_000 },
  createdAt: T0,
  updatedAt: T0 + 1000,
  ...over,
});
const table = (rows: string[][]) => rows.map((r) => r.join(' | '));

describe('jobs-format', () => {
  it('says requirements and progress in a few words', () => {
    expect(requirementsText({ models: [], labels: {} })).toBe('-');
    expect(
      requirementsText({
        service: 'render',
        gpu: 1,
        memory: 8 * 1024 ** 3,
        models: ['sdxl'],
        labels: { region: 'home' },
      }),
    ).toBe('service=render gpu>=1 memory>=8 GiB model=sdxl region=home');
    expect(progressText({ value: 3, max: 10, message: 'sampling' })).toBe('3/10 sampling');
    expect(progressText({ value: 0.25 })).toBe('25%');
    expect(progressText({})).toBe('(no detail)');
  });

  it('prints one line per event, with the attempt, node and reason', () => {
    expect(eventLine({ type: 'state', state: 'queued', at: T0 })).toBe('04:31:07  queued');
    expect(eventLine({ type: 'state', state: 'running', at: T0, attempt: 2, node: 'ab12cd' })).toBe(
      '04:31:07  running  attempt 2 on ab12cd',
    );
    expect(
      eventLine({ type: 'state', state: 'failed', at: T0, attempt: 1, reason: 'exit code 3' }),
    ).toBe('04:31:07  failed  attempt 1: exit code 3');
    expect(eventLine({ type: 'progress', at: T0, attempt: 1, value: 2, max: 4 })).toBe(
      '04:31:07  progress  2/4 (attempt 1)',
    );
  });

  it('shows a job with its attempts, files as absolute URLs and its output cut short', () => {
    const lines = jobLines(
      job({
        node: 'ab12cd',
        attempts: [
          { attempt: 1, node: 'ab12cd', leasedAt: T0, endedAt: T0, outcome: 'lost' },
          { attempt: 2, node: 'ab12cd', leasedAt: T0, startedAt: T0, outcome: 'succeeded' },
        ],
        files: [
          {
            name: 'out.png',
            bytes: 2048,
            contentType: 'image/png',
            url: '/api/jobs/j1/files/out.png',
          },
        ],
        output: Array.from({ length: 100 }, (_, i) => i),
      }),
      'http://gw.test',
      table,
    );
    const text = lines.join('\n');
    expect(lines[0]).toBe('j1  simulation  succeeded');
    expect(text).toContain('1 | ab12cd | 2026-12-02 04:31:07 | - | 2026-12-02 04:31:07 | lost |');
    expect(text).toContain(
      'out.png | 2 KiB | image/png | http://gw.test/api/jobs/j1/files/out.png',
    );
    expect(text).toContain(`… ${102 - OUTPUT_LINES_SHOWN} more lines (--json shows all)`);
  });

  it('ends a wait with how the job ended', () => {
    expect(endLine(job({ node: 'ab12cd' }))).toBe('j1 succeeded on ab12cd');
    expect(
      endLine(
        job({
          state: 'dead',
          error: 'boom',
          attempts: [1, 2, 3].map((attempt) => ({ attempt, node: 'x', leasedAt: T0 })),
        }),
      ),
    ).toBe('j1 is dead after 3 attempts: boom');
    expect(endLine(job({ state: 'cancelled' }))).toBe('j1 was cancelled');
  });

  it('prints a followed job’s state once per attempt, and never one older than the last', () => {
    const lines = new FollowedLines();
    const state = (state: JobView['state'], at: number, attempt?: number) =>
      lines.take({ type: 'state', state, at, ...(attempt ? { attempt } : {}) });
    // the GET said leased; the stream, opened a moment later, starts with the queued it read first
    expect(state('leased', 20, 1)).toBe(true);
    expect(state('queued', 10)).toBe(false);
    expect(state('leased', 20, 1)).toBe(false);
    expect(state('running', 30, 1)).toBe(true);
    const p = { type: 'progress' as const, attempt: 1, at: 31, value: 1, max: 2 };
    expect(lines.take(p)).toBe(true);
    expect(lines.take({ ...p })).toBe(false);
    expect(lines.take({ ...p, at: 32, value: 2 })).toBe(true);
    // a failed attempt, then the next one leased: new lines
    expect(state('failed', 40, 1)).toBe(true);
    expect(state('leased', 50, 2)).toBe(true);
  });
});
