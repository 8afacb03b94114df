import { describe, expect, it } from 'vitest';
import { declaredUpstream, upstreamPath } from './upstream-path';

/** Forms that must be refused whatever the prefix. */
const HOSTILE: [string, string][] = [
  ['/\\127.0.0.1:9/', 'backslash: WHATWG URL reads it as "/", so scheme-relative'],
  ['/\\\\127.0.0.1:9', 'two backslashes'],
  ['/\\/127.0.0.1:9/', 'backslash then slash'],
  ['//127.0.0.1:9/', 'scheme-relative'],
  ['///127.0.0.1:9/', 'three slashes'],
  ['http://127.0.0.1:9/', 'absolute-form'],
  ['ws://127.0.0.1:9/', 'absolute-form, ws'],
  ['HTTP://127.0.0.1:9/', 'absolute-form, upper case'],
  ['127.0.0.1:9', 'authority-form'],
  ['@127.0.0.1:9/', 'userinfo-looking target'],
  ['*', 'asterisk-form'],
  ['', 'empty'],
  ['x/../admin', 'relative'],
  ['/%5c127.0.0.1:9', 'encoded backslash'],
  ['/%5C127.0.0.1:9', 'encoded backslash, upper case'],
  ['/%2f%2f127.0.0.1:9', 'encoded slashes'],
  ['/%2F127.0.0.1:9', 'encoded slash, upper case'],
  ['/..%2f..%2fadmin', 'dots and encoded slashes'],
  ['/..%5c..%5cadmin', 'dots and encoded backslashes'],
  ['/../admin', 'dot-dot'],
  ['/x/../../admin', 'dot-dot deeper'],
  ['/./admin', 'dot'],
  ['/x/..', 'trailing dot-dot'],
  ['/x/.', 'trailing dot'],
  ['/..;/admin', 'dot-dot with a path parameter (Tomcat)'],
  ['/.;/admin', 'dot with a path parameter'],
  ['/%2e%2e/admin', 'encoded dot-dot'],
  ['/%2E%2E/admin', 'encoded dot-dot, upper case'],
  ['/.%2e/admin', 'half-encoded dot-dot'],
  ['/%2e./admin', 'half-encoded dot-dot, other half'],
  ['/%2e/admin', 'encoded dot'],
  ['/%252e%252e/admin', 'double-encoded dot-dot'],
  ['/%252f127.0.0.1:9', 'double-encoded slash'],
  ['/%25252e%25252e/admin', 'triple-encoded dot-dot'],
  ['/%25255c', 'triple-encoded backslash'],
  ['/%2525252525252e', 'encoded past any client'],
  ['/%c0%ae%c0%ae/admin', 'overlong UTF-8 dots'],
  ['/%c0%af', 'overlong UTF-8 slash'],
  ['/%e0%80%ae', 'three-byte overlong dot'],
  ['/%25c0%25ae', 'double-encoded overlong dot'],
  ['/x\u0000y', 'NUL'],
  ['/%00', 'encoded NUL'],
  ['/x%0d%0aSet-Cookie:a=1', 'encoded CRLF'],
  ['/x\r\nHost: evil', 'raw CRLF'],
  ['/x\ty', 'tab'],
  ['/\t/127.0.0.1:9', 'tab between slashes (URL parsers strip it)'],
  ['/%09/127.0.0.1:9', 'encoded tab'],
  ['/x y', 'space'],
  ['/x\u007f', 'DEL'],
  ['/x\u00a0', 'no-break space'],
  ['/é', 'raw non-ASCII'],
  ['/\uff0e\uff0e/admin', 'full-width dots'],
  ['/x#frag', 'fragment'],
  ['/x"y', 'quote'],
  ['/x<y>', 'angle brackets'],
  ['/x`y', 'backtick'],
  ['/x{y}', 'braces'],
  ['/%zz', 'malformed escape'],
  ['/%4', 'truncated escape'],
  ['/x?q#frag', 'fragment after the query'],
  ['/x?a b', 'space in the query'],
  ['/x?a\u0000b', 'NUL in the query'],
  ['/x?é', 'non-ASCII in the query'],
];

describe('upstreamPath', () => {
  for (const prefix of ['', '/app']) {
    it.each(HOSTILE)(`refuses %j (%s) with prefix "${prefix}"`, (target) => {
      expect(() => upstreamPath(prefix, target)).toThrow(
        expect.objectContaining({ code: 'bad_request' }),
      );
    });
  }

  it('says why in a sentence', () => {
    expect(() => upstreamPath('', '/\\evil:1/')).toThrow(/backslash/);
    expect(() => upstreamPath('', '//evil:1/')).toThrow(/single "\/"/);
    expect(() => upstreamPath('', 'http://evil/')).toThrow(/starting with "\/"/);
    expect(() => upstreamPath('/app', '/../admin')).toThrow(/"\." or "\.\." segment/);
    expect(() => upstreamPath('', '/%2e%2e/x')).toThrow(/encoded slash, backslash, dot/);
    expect(() => upstreamPath('', '/x y')).toThrow(/control characters or spaces/);
    expect(() => upstreamPath('', '/x"')).toThrow(/"""/);
  });

  it.each([
    ['', '/', '/'],
    ['', '/hello?x=1', '/hello?x=1'],
    ['/app', '/', '/app/'],
    ['/app', '/x/y?q=1&r=%2F..%5c', '/app/x/y?q=1&r=%2F..%5c'],
    ['/app', '/a//b', '/app/a//b'],
    ['/app', '/@user/profile', '/app/@user/profile'],
    ['', '/@127.0.0.1:9/', '/@127.0.0.1:9/'],
    ['', '/caf%C3%A9/%20x', '/caf%C3%A9/%20x'],
    ['', '/100%25.txt', '/100%25.txt'],
    ['', '/..x/x../.../a.b', '/..x/x../.../a.b'],
    ['', '/a;b=c/d', '/a;b=c/d'],
    ['', "/!$&'()*+,;=:~-_|^[]", "/!$&'()*+,;=:~-_|^[]"],
    ['', '/x?a=\\b&c=/../d', '/x?a=\\b&c=/../d'],
    ['', '/x?', '/x?'],
  ])('with prefix %j passes %j on as %j', (prefix, target, expected) => {
    expect(upstreamPath(prefix, target)).toBe(expected);
  });

  it('keeps a prefix a prefix: every accepted path starts with it and a "/"', () => {
    for (const t of ['/', '/x', '/a//b', '/..x', '/@u']) {
      expect(upstreamPath('/app', t).startsWith('/app/')).toBe(true);
      // and a URL parser reading it after the declared origin keeps host and path
      const u = new URL(`ws://127.0.0.1:3000${upstreamPath('/app', t)}`);
      expect(u.host).toBe('127.0.0.1:3000');
      expect(u.pathname).toBe(upstreamPath('/app', t));
    }
  });
});

describe('declaredUpstream', () => {
  it('splits a normalised target into origin and prefix', () => {
    expect(declaredUpstream('http://127.0.0.1:3000/app')).toEqual({
      protocol: 'http:',
      host: '127.0.0.1:3000',
      hostname: '127.0.0.1',
      port: '3000',
      prefix: '/app',
    });
    expect(declaredUpstream('https://wiki.lan').prefix).toBe('');
    expect(declaredUpstream('http://[::1]:8080/').hostname).toBe('[::1]');
  });

  it('refuses a target that is not http(s)', () => {
    expect(() => declaredUpstream('file:///etc')).toThrow(/http or https/);
  });
});
