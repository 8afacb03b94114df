import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HealthMonitor, probeHttp, probeTcp, type HealthSpec, type ProbeResult } from './health';

const SPEC: HealthSpec = {
  path: '/healthz',
  intervalMs: 1_000,
  timeoutMs: 500,
  startPeriodMs: 5_000,
  unhealthyAfter: 3,
  startIntervalMs: 1_000,
};
const PASS: ProbeResult = { ok: true, status: 200 };
const FAIL: ProbeResult = { ok: false, reason: 'HTTP 503' };

/** A monitor whose probe answers from a script (the last answer repeats). */
function scripted(answers: ProbeResult[], spec = SPEC) {
  const changes: string[] = [];
  let probes = 0;
  const monitor = new HealthMonitor({
    spec,
    probe: async () => answers[Math.min(probes++, answers.length - 1)]!,
    onChange: (state, reason) => changes.push(`${state}: ${reason}`),
  });
  return { monitor, changes, probes: () => probes };
}

describe('health monitor', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('turns running on the first passing probe', async () => {
    const { monitor, changes } = scripted([FAIL, FAIL, PASS]);
    monitor.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(changes).toEqual(['running: GET /healthz answered HTTP 200 after 2000 ms']);
    monitor.stop();
  });

  it('probes at the start interval until the first pass, then at the interval', async () => {
    const { monitor, changes, probes } = scripted([FAIL, FAIL, PASS], {
      ...SPEC,
      startIntervalMs: 100,
    });
    monitor.start();
    await vi.advanceTimersByTimeAsync(200);
    expect(changes).toEqual(['running: GET /healthz answered HTTP 200 after 200 ms']);
    expect(probes()).toBe(3);
    await vi.advanceTimersByTimeAsync(900);
    expect(probes()).toBe(3);
    await vi.advanceTimersByTimeAsync(100);
    expect(probes()).toBe(4);
    monitor.stop();
  });

  it('does not call a booting replica unhealthy within its start period', async () => {
    const { monitor, changes } = scripted([FAIL]);
    monitor.start();
    await vi.advanceTimersByTimeAsync(4_000);
    expect(monitor.state).toBe('starting');
    expect(changes).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(changes).toEqual([
      'unhealthy: GET /healthz did not pass within 5000 ms of start (6 failed probes, the last: HTTP 503)',
    ]);
    monitor.stop();
  });

  it('turns unhealthy after the failures in a row, and running again on a pass', async () => {
    const { monitor, changes } = scripted([PASS, FAIL, FAIL, PASS, FAIL, FAIL, FAIL, PASS]);
    monitor.start();
    await vi.advanceTimersByTimeAsync(5_000);
    // two failures then a pass: still running
    expect(changes).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(changes.slice(1)).toEqual([
      'unhealthy: GET /healthz failed 3 times in a row (the last: HTTP 503)',
    ]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(changes.slice(2)).toEqual(['running: GET /healthz answers HTTP 200 again']);
    monitor.stop();
  });

  it('never runs two probes at once, and stops probing when stopped', async () => {
    let release: (r: ProbeResult) => void = () => {};
    let probes = 0;
    const monitor = new HealthMonitor({
      spec: SPEC,
      probe: () => {
        probes++;
        return new Promise((r) => (release = r));
      },
      onChange: () => {},
    });
    monitor.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(probes).toBe(1);
    release(PASS);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(probes).toBe(2);
    monitor.stop();
    release(PASS);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(probes).toBe(2);
    expect(monitor.state).toBe('running');
  });
});

describe('HTTP probe', () => {
  let server: http.Server;
  let port = 0;
  beforeEach(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/healthz') res.end('ok');
      else if (req.url === '/moved') res.writeHead(302, { location: '/elsewhere' }).end();
      else if (req.url === '/hang')
        return; // never answers
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('passes on 2xx and 3xx (not followed), fails on others with the status', async () => {
    expect(await probeHttp(port, '/healthz', 1_000)).toEqual({ ok: true, status: 200 });
    expect(await probeHttp(port, '/moved', 1_000)).toEqual({ ok: true, status: 302 });
    expect(await probeHttp(port, '/nope', 1_000)).toEqual({ ok: false, reason: 'HTTP 404' });
  });

  it('says when nothing listens or nothing answers in time', async () => {
    expect(await probeHttp(port, '/hang', 150)).toEqual({
      ok: false,
      reason: 'no answer within 150 ms',
    });
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    expect(await probeHttp(port, '/healthz', 1_000)).toEqual({
      ok: false,
      reason: 'connection refused',
    });
    server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  it('without a health path, a TCP connect to the port is the check', async () => {
    expect(await probeTcp(port, 1_000)).toEqual({ ok: true, status: 0 });
    const { monitor, changes } = scripted([{ ok: true, status: 0 }], { ...SPEC, path: null });
    monitor.start();
    await vi.waitFor(() => expect(changes).toHaveLength(1));
    monitor.stop();
    expect(changes[0]).toMatch(/^running: a TCP connect to its port passed after \d+ ms$/);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    expect(await probeTcp(port, 1_000)).toEqual({ ok: false, reason: 'connection refused' });
    server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
});
