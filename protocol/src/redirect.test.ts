import { describe, expect, it } from 'vitest';
import { sameOriginPath } from './redirect';

const ORIGIN = 'http://gw.localhost:8080';

/**
 * Each of these is what a query parameter or fragment value looks like once
 * decoded (`%09` in a query string arrives as a tab); every one of them
 * leads a browser to another host when used as a relative URL.
 */
const HOSTILE = [
  '//evil.com',
  '//evil.com/path',
  '/\\evil.com',
  '\\\\evil.com',
  '\\/evil.com',
  '/\t/evil.com',
  '\t//evil.com',
  '/\n/evil.com',
  '/\r/evil.com',
  ' //evil.com',
  '/.//evil.com',
  '/..//evil.com',
  '/a/../..//evil.com',
  '/./\\evil.com',
  'https://evil.com',
  'http://evil.com/',
  'HTTPS://evil.com',
  'http://gw.localhost:8081/',
  'https://gw.localhost:8080/',
  'http://gw.localhost:8080@evil.com/',
  'javascript:alert(1)',
  'JavaScript:alert(1)',
  '\tjavascript:alert(1)',
  'data:text/html,<script>alert(1)</script>',
  'vbscript:x',
  'blob:http://gw.localhost:8080/abc',
  'ftp://evil.com',
  'http://[::1]/',
  `/${'a'.repeat(3000)}`,
];

describe('sameOriginPath', () => {
  it.each(HOSTILE)('refuses %j (falls back to /)', (target) => {
    expect(sameOriginPath(target, ORIGIN)).toBe('/');
  });

  it('refuses what is not a string', () => {
    for (const v of [undefined, null, 3, ['/a'], { a: 1 }])
      expect(sameOriginPath(v, ORIGIN)).toBe('/');
    expect(sameOriginPath(undefined, ORIGIN, '/nodes')).toBe('/nodes');
  });

  it.each([
    ['/', '/'],
    ['/a/b/deep?x=1#h', '/a/b/deep?x=1#h'],
    ['/add-node#claim=abc', '/add-node#claim=abc'],
    // encoded slashes stay encoded: a path segment on this origin, not a host
    ['/%2f%2fevil.com', '/%2f%2fevil.com'],
    ['%2f%2fevil.com', '/%2f%2fevil.com'],
    ['/%09/evil.com', '/%09/evil.com'],
    ['/%5c%5cevil.com', '/%5c%5cevil.com'],
    ['relative', '/relative'],
    ['?q=1', '/?q=1'],
    [`${ORIGIN}/abs?y=2`, '/abs?y=2'],
    ['/a/../b', '/b'],
  ])('keeps %j on the origin as %j', (target, path) => {
    expect(sameOriginPath(target, ORIGIN)).toBe(path);
  });

  it('keeps only the path, so the result reads the same against any origin', () => {
    for (const target of [...HOSTILE, '/a?b#c', '%2f%2fevil.com', '/%09/evil.com']) {
      const out = sameOriginPath(target, ORIGIN);
      expect(new URL(out, 'http://other.invalid').origin).toBe('http://other.invalid');
    }
  });

  it('refuses everything when the origin itself cannot be parsed', () => {
    expect(sameOriginPath('/a', 'not a url')).toBe('/');
  });
});
