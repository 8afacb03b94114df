import { describe, expect, it } from 'vitest';
import { leastLoaded, type Candidate } from './replicas';

const node = (shortId: string, sessions: number, cpu = 0): Candidate => ({
  nodeId: `id-${shortId}`,
  shortId,
  name: shortId,
  instance: undefined,
  sessions,
  cpu,
});

describe('leastLoaded', () => {
  it('takes the node with the fewest sessions, then the least CPU', () => {
    expect(leastLoaded([node('a', 3), node('b', 1), node('c', 2)], new Set())?.shortId).toBe('b');
    expect(leastLoaded([node('a', 1, 0.8), node('b', 1, 0.2)], new Set())?.shortId).toBe('b');
  });

  it('keeps the given order on a tie', () => {
    expect(leastLoaded([node('a', 1, 0.5), node('b', 1, 0.5)], new Set())?.shortId).toBe('a');
  });

  it('leaves out avoided nodes, unless nothing else is left', () => {
    const all = [node('a', 0), node('b', 5)];
    expect(leastLoaded(all, new Set(['a']))?.shortId).toBe('b');
    expect(leastLoaded(all, new Set(['a', 'b']))?.shortId).toBe('a');
  });

  it('is null without candidates, and leaves its input as it was', () => {
    expect(leastLoaded([], new Set())).toBeNull();
    const all = [node('a', 2), node('b', 1)];
    leastLoaded(all, new Set(['x', 'y']));
    expect(all.map((c) => c.shortId)).toEqual(['a', 'b']);
  });
});
