import { describe, expect, it } from 'vitest';
import { responseFromHead, type HeaderPairs } from '@peerway/protocol';
import type { BridgeResponse } from '../bridge';
import { noShellResponse, responseOf } from './responses';

const stream = (text: string) => new Response(text).body;

/** What a Response shows a page: status line, fields, body. */
async function seen(r: Response) {
  return {
    status: r.status,
    statusText: r.statusText,
    headers: [...r.headers],
    body: r.body === null ? null : await r.text(),
  };
}

const HEADERS: HeaderPairs = [
  ['Content-Type', 'text/html'],
  ['x-a', '1'],
  ['x-a', '2'],
  ['bad name', 'dropped'],
  ['location', '/next'],
];

describe('the worker’s Response for the shell’s answer', () => {
  it('is the protocol’s responseFromHead for every answer from the tunnel', async () => {
    for (const status of [200, 201, 204, 205, 206, 301, 304, 404, 500, 599]) {
      const answer = { status, statusText: `s${status}`, headers: HEADERS };
      const mine = await seen(responseOf({ ok: true, ...answer, body: stream('body') }));
      const protocol = await seen(responseFromHead(answer, stream('body')));
      expect(mine, `status ${status}`).toEqual(protocol);
    }
  });

  it('keeps a body through, and none for the null body statuses', async () => {
    const ok = await seen(
      responseOf({ ok: true, status: 200, statusText: 'OK', headers: HEADERS, body: stream('x') }),
    );
    expect(ok).toMatchObject({ status: 200, statusText: 'OK', body: 'x' });
    expect(ok.headers).toEqual([
      ['content-type', 'text/html'],
      ['location', '/next'],
      ['x-a', '1, 2'],
    ]);
    const none = responseOf({
      ok: true,
      status: 304,
      statusText: '',
      headers: [],
      body: stream('x'),
    });
    expect(none.body).toBeNull();
  });

  it('says what went wrong in words, with its status, when the shell could not answer', async () => {
    const err: BridgeResponse = { ok: false, status: 502, message: 'Peerway: the node went away' };
    const r = responseOf(err);
    expect(r.status).toBe(502);
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await r.text()).toBe('Peerway: the node went away');
    const none = noShellResponse();
    expect(none.status).toBe(503);
    expect(await none.text()).toMatch(/open this page in a tab/);
  });
});
