import { describe, expect, it } from 'vitest';
import {
  FAILURE_WINDOW_MS,
  MOVE_AFTER_FAILURES,
  RESTART_MAX_DELAY_MS,
  decideRestart,
  exitCodeIn,
  failureCounts,
  movedEvent,
  restartDelay,
  restartedEvent,
  unhealthyGraceMs,
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

  it('counts failures per node from the restarted and moved events within the window', () => {
    const now = 10 * FAILURE_WINDOW_MS;
    const at = (ago: number, e: { kind: string; message: string }) => ({ at: now - ago, ...e });
    const counts = failureCounts(
      [
        at(FAILURE_WINDOW_MS + 1, restartedEvent('a0', '4f2a8b', 'a1', null)),
        at(5000, restartedEvent('a1', '4f2a8b', 'a2', null)),
        at(
          3000,
          restartedEvent('a2', '4f2a8b', 'a3', 'it was unhealthy for 3 s (GET /healthz: HTTP 404)'),
        ),
        at(1000, movedEvent('a3', '4f2a8b', 'it was unhealthy for 3 s (on node x: y)')),
        at(900, restartedEvent('b1', 'c0ffee', 'b2', null)),
        at(800, { kind: 'exited', message: 'replica b2 on node c0ffee is exited' }),
        at(700, { kind: 'placed', message: 'replica b3 placed on node 4f2a8b' }),
      ],
      now,
    );
    expect(Object.fromEntries(counts)).toEqual({ '4f2a8b': 3, c0ffee: 1 });
  });

  it('waits three health intervals on an unhealthy replica, and reads exit codes from reasons', () => {
    expect(unhealthyGraceMs({ health: { path: '/healthz', intervalS: 5, timeoutS: 2 } })).toBe(
      15_000,
    );
    expect(exitCodeIn('the container exited with code 3; its last output: boom')).toBe(3);
    expect(exitCodeIn('the container exited')).toBeUndefined();
    expect(exitCodeIn(null)).toBeUndefined();
  });
});
