import { describe, expect, it, vi } from 'vitest';

// The shell's build replaces tldts with ./registrable-domain (vite.config.ts):
// the same here, so this checks the jar the browser really runs.
vi.mock('tldts', () => import('./registrable-domain'));
const { CookieStore } = await import('./cookies');
const { getDomain } = await import('./registrable-domain');

describe('the per-service cookie jar without the public suffix list', () => {
  it('keeps host, parent-domain and path cookies for its own host', () => {
    const jar = new CookieStore('https://app.gw.example.com');
    jar.fromResponse('/', [
      'host=1',
      'parent=2; Domain=example.com',
      'gw=3; Domain=gw.example.com; HttpOnly',
      'deep=4; Path=/admin',
    ]);
    expect(jar.header('/')).toBe('host=1; parent=2; gw=3');
    expect(jar.header('/admin/x')).toContain('deep=4');
    // scripts do not see HttpOnly ones
    expect(jar.scriptGet('/')).toBe('host=1; parent=2');
  });

  it('refuses a cookie for a top-level domain or for another site', () => {
    const jar = new CookieStore('https://app.gw.example.com');
    jar.fromResponse('/', ['tld=1; Domain=com', 'other=2; Domain=example.org', 'ok=3']);
    expect(jar.header('/')).toBe('ok=3');
  });

  it('works on the special-use names tests and `npm start` use, as with the full list', () => {
    const jar = new CookieStore('http://app.localhost:8080');
    // (tough-cookie with the real list refuses Domain=localhost too)
    jar.fromResponse('/', ['a=1', 'b=2; Domain=app.localhost', 'c=3; Domain=localhost']);
    expect(jar.header('/')).toBe('a=1; b=2');
  });

  it('gives the last two labels as the registrable domain, none for one label', () => {
    expect(getDomain('app.gw.example.com')).toBe('example.com');
    expect(getDomain('example.com.')).toBe('example.com');
    expect(getDomain('com')).toBeNull();
    expect(getDomain('a..com')).toBeNull();
  });
});
