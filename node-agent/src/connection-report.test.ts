import { describe, expect, it } from 'vitest';
import { ConnectionReporter, describeSocketFailure } from './connection-report';

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {
  code: 'ECONNREFUSED',
});

describe('the server connection in words', () => {
  it('says "cannot reach" once per reason, "lost" once, and how long it was away', () => {
    const lines: string[] = [];
    let now = 0;
    const r = new ConnectionReporter(
      'http://s.test',
      (l) => lines.push(l),
      30,
      () => now,
    );
    const down = (reason: string, wasConnected = false) =>
      r.on({ state: 'down', reason, wasConnected });
    for (let i = 0; i < 5; i++) down('connection refused');
    expect(lines).toEqual([
      'Cannot reach http://s.test: connection refused; retrying every 30 s at most until it answers.',
    ]);
    down('timed out');
    expect(lines).toHaveLength(2);
    expect(r.connected()).toBeNull(); // the first welcome
    now = 1000;
    down('the connection dropped', true);
    down('connection refused');
    down('connection refused');
    expect(lines.slice(2)).toEqual([
      'Lost the connection to http://s.test: the connection dropped; reconnecting, retrying every 30 s at most until it answers. Open sessions go on.',
      'Cannot reach http://s.test: connection refused; retrying every 30 s at most until it answers.',
    ]);
    now = 13_000;
    expect(r.connected()).toBe(12);
  });

  it('names the usual failures', () => {
    expect(describeSocketFailure(refused, 1006, '')).toMatch(/^connection refused/);
    expect(describeSocketFailure(new Error('Unexpected server response: 404'), 1006, '')).toMatch(
      /HTTP 404 at \/ws\/agent: is this the URL of a Peerway server/,
    );
    expect(describeSocketFailure(null, 1001, '')).toMatch(/going away/);
    expect(describeSocketFailure(null, 4001, 'bad signature')).toMatch(
      /refused this node's proof: bad signature/,
    );
  });
});
