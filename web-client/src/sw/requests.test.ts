import { describe, expect, it } from 'vitest';
import { bodyOfRequest, bridgeRequestOf, carriedByTunnel, sendsBody } from './requests';

const ORIGIN = 'http://app.localhost:8080';
const kind = (url: string, mode: RequestMode = 'cors', destination: RequestDestination = '') => ({
  url,
  mode,
  destination,
});

describe('which requests the worker carries', () => {
  it('carries the app requests of its own origin, frames included', () => {
    expect(carriedByTunnel(kind(`${ORIGIN}/api/x?y=1`), ORIGIN)).toBe(true);
    expect(carriedByTunnel(kind(`${ORIGIN}/img.png`, 'no-cors', 'image'), ORIGIN)).toBe(true);
    expect(carriedByTunnel(kind(`${ORIGIN}/frame`, 'navigate', 'iframe'), ORIGIN)).toBe(true);
  });

  it('leaves other origins, Peerway’s own paths and top-level navigations to the network', () => {
    expect(carriedByTunnel(kind('http://other.localhost:8080/x'), ORIGIN)).toBe(false);
    expect(carriedByTunnel(kind(`${ORIGIN}/__peerway/sw.js`), ORIGIN)).toBe(false);
    expect(carriedByTunnel(kind(`${ORIGIN}/ws/client`), ORIGIN)).toBe(false);
    expect(carriedByTunnel(kind(`${ORIGIN}/page`, 'navigate', 'document'), ORIGIN)).toBe(false);
  });

  it('reads an upload for every method but GET and HEAD', () => {
    expect(['GET', 'HEAD'].map(sendsBody)).toEqual([false, false]);
    expect(['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].every(sendsBody)).toBe(true);
  });
});

describe('a request as the worker hands it to the shell', () => {
  it('keeps method, path with query, fields, upload, destination and credentials', async () => {
    const r = new Request(`${ORIGIN}/a/b%20c?x=1&y=%2F#frag`, {
      method: 'POST',
      headers: { 'X-Two': 'b', 'x-one': 'a', 'Content-Type': 'text/plain' },
      body: 'hi',
      credentials: 'omit',
    });
    const body = await bodyOfRequest(r);
    const m = bridgeRequestOf(r, body);
    expect(m).toEqual({
      kind: 'peerway-fetch',
      method: 'POST',
      path: '/a/b%20c?x=1&y=%2F',
      headers: [
        ['content-type', 'text/plain'],
        ['x-one', 'a'],
        ['x-two', 'b'],
      ],
      body,
      destination: '',
      credentials: 'omit',
    });
    expect(body.rest).toBeNull();
    expect(new TextDecoder().decode(body.chunks[0])).toBe('hi');
  });

  it('sends a GET with no body', () => {
    const m = bridgeRequestOf(new Request(`${ORIGIN}/`), null);
    expect(m.method).toBe('GET');
    expect(m.path).toBe('/');
    expect(m.body).toBeNull();
    expect(m.credentials).toBe('same-origin');
  });
});
