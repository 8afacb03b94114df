import { describe, expect, it } from 'vitest';
import { hasNullBody, headerPairsOf, headersFromPairs, responseFromHead } from './response';
import { NULL_BODY_STATUSES } from './wire';

const body = (text: string) => new Response(text).body;

describe('tunnel heads and the Fetch API', () => {
  it('keeps a response head: status, status text, repeated fields in order', async () => {
    const r = responseFromHead(
      {
        status: 201,
        statusText: 'Made',
        headers: [
          ['Content-Type', 'text/plain'],
          ['x-a', '1'],
          ['x-a', '2'],
        ],
      },
      body('hello'),
    );
    expect(r.status).toBe(201);
    expect(r.statusText).toBe('Made');
    expect(r.headers.get('content-type')).toBe('text/plain');
    expect(r.headers.get('x-a')).toBe('1, 2');
    expect(await r.text()).toBe('hello');
  });

  it('drops a field a Response refuses and keeps the others', () => {
    const h = headersFromPairs([
      ['x-ok', '1'],
      ['bad name', '2'],
      ['x-nul', 'a\u0000b'],
      ['x-after', '3'],
    ]);
    expect([...h.keys()]).toEqual(['x-after', 'x-ok']);
  });

  it('gives no body for the null body statuses and for HEAD, whatever came', async () => {
    for (const status of [204, 205, 304]) {
      const r = responseFromHead({ status, statusText: '', headers: [] }, body('x'));
      expect(r.body, `status ${status}`).toBeNull();
    }
    const head = responseFromHead(
      { status: 200, statusText: 'OK', headers: [] },
      body('x'),
      'HEAD',
    );
    expect(head.body).toBeNull();
    const get = responseFromHead({ status: 200, statusText: 'OK', headers: [] }, body('x'), 'GET');
    expect(await get.text()).toBe('x');
  });

  it('refuses an informational status as new Response does', () => {
    for (const status of [101, 103]) {
      expect(NULL_BODY_STATUSES.has(status)).toBe(true);
      expect(() => responseFromHead({ status, statusText: '', headers: [] }, null)).toThrow(
        RangeError,
      );
    }
  });

  it('says which answers have no body', () => {
    expect([101, 103, 204, 205, 304].every((s) => hasNullBody(s))).toBe(true);
    expect([200, 206, 301, 404, 500].some((s) => hasNullBody(s))).toBe(false);
    expect(hasNullBody(200, 'HEAD')).toBe(true);
    expect(hasNullBody(200, 'GET')).toBe(false);
  });

  it('turns Headers into the pairs of a tunnel head', () => {
    const h = new Headers([
      ['Accept', 'text/html'],
      ['X-Two', 'a'],
    ]);
    h.append('x-two', 'b');
    expect(headerPairsOf(h)).toEqual([
      ['accept', 'text/html'],
      ['x-two', 'a, b'],
    ]);
  });
});
