import { describe, expect, it } from 'vitest';
import {
  FAILURE_WINDOW_MS,
  FailureCounter,
  MOVE_AFTER_FAILURES,
  RESTART_MAX_DELAY_MS,
  decideRestart,
  restartDelay,
} from './restart';

describe('restart policy', () => {
  it('waits 1 s, then twice as long after each failure, up to the cap', () => {
    expect([1, 2, 3, 4].map(restartDelay)).toEqual([1000, 2000, 4000, 8000]);
    expect(restartDelay(30)).toBe(RESTART_MAX_DELAY_MS);
  });

  it('restarts per the policy, and moves after repeated failures on one node', () => {
    const f = { state: 'exited' as const, exitCode: 1, failuresOnNode: 1 };
    expect(decideRestart({ ...f, policy: 'always' })).toEqual({ action: 'restart', afterMs: 1000 });
    expect(decideRestart({ ...f, policy: 'never' }).action).toBe('leave');
    expect(decideRestart({ ...f, policy: 'on-failure' }).action).toBe('restart');
    expect(decideRestart({ ...f, policy: 'on-failure', exitCode: 0 }).action).toBe('leave');
    expect(decideRestart({ ...f, policy: 'always', exitCode: 0 }).action).toBe('restart');
    // an unknown exit code is a failure
    expect(decideRestart({ ...f, policy: 'on-failure', exitCode: undefined }).action).toBe(
      'restart',
    );
    expect(
      decideRestart({ ...f, policy: 'always', failuresOnNode: MOVE_AFTER_FAILURES }).action,
    ).toBe('move');
  });

  it('counts failures per deployment and node within the window', () => {
    const c = new FailureCounter();
    expect(c.record('web', 'n1', 0)).toBe(1);
    expect(c.record('web', 'n1', 1000)).toBe(2);
    expect(c.record('web', 'n2', 1000)).toBe(1);
    expect(c.count('api', 'n1', 1000)).toBe(0);
    expect(c.count('web', 'n1', FAILURE_WINDOW_MS + 500)).toBe(1);
    c.forget('web');
    expect(c.count('web', 'n1', 1000)).toBe(0);
  });
});
