import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { iceServersFor, turnCredentials } from './ice';

describe('ICE servers', () => {
  it('makes TURN REST credentials coturn accepts (HMAC-SHA1 of expiry:id)', () => {
    const c = turnCredentials('s3cret-shared', 'sess1', 1_800_000_000_000, 600);
    expect(c.username).toBe('1800000600:sess1');
    expect(c.credential).toBe(
      createHmac('sha1', 's3cret-shared').update('1800000600:sess1').digest('base64'),
    );
  });

  it('never hands out a public default, and orders TURN UDP before TCP and TLS', () => {
    expect(iceServersFor({ stunUrls: [], turnUrls: [], turnCredentialTtlS: 600 }, 'x', 0)).toEqual(
      [],
    );
    const list = iceServersFor(
      {
        stunUrls: ['stun:203.0.113.10:3478'],
        turnUrls: [
          'turns:t.example:443',
          'turn:203.0.113.10:3478?transport=tcp',
          'turn:203.0.113.10:3478',
        ],
        turnSecret: 'secret-123',
        turnCredentialTtlS: 600,
      },
      'x',
      0,
    );
    expect(list[0]).toEqual({ urls: ['stun:203.0.113.10:3478'] });
    expect(list[1]!.urls).toEqual([
      'turn:203.0.113.10:3478',
      'turn:203.0.113.10:3478?transport=tcp',
      'turns:t.example:443',
    ]);
  });
});
