import { describe, expect, it } from 'vitest';
import { imageRegistry, parseImageReference } from './image';

describe('parseImageReference', () => {
  it.each([
    [
      'registry.example/blog:1.2',
      { registry: 'registry.example', repository: 'blog', tag: '1.2', digest: null },
    ],
    [
      '127.0.0.1:5000/blog:1.2',
      { registry: '127.0.0.1:5000', repository: 'blog', tag: '1.2', digest: null },
    ],
    [
      'localhost/team/app',
      { registry: 'localhost', repository: 'team/app', tag: null, digest: null },
    ],
    ['nginx', { registry: null, repository: 'nginx', tag: null, digest: null }],
    [
      'library/nginx:1.27-alpine',
      { registry: null, repository: 'library/nginx', tag: '1.27-alpine', digest: null },
    ],
    [
      '[::1]:5000/a/b_c__d-e.f:v1',
      { registry: '[::1]:5000', repository: 'a/b_c__d-e.f', tag: 'v1', digest: null },
    ],
    [
      `ghcr.io/org/app@sha256:${'a'.repeat(64)}`,
      { registry: 'ghcr.io', repository: 'org/app', tag: null, digest: `sha256:${'a'.repeat(64)}` },
    ],
    [
      `app:2@sha256:${'0'.repeat(64)}`,
      { registry: null, repository: 'app', tag: '2', digest: `sha256:${'0'.repeat(64)}` },
    ],
  ])('%s', (ref, expected) => {
    const r = parseImageReference(ref);
    expect(r).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['Blog:1', 'lower case'],
    ['https://registry.example/blog', 'scheme'],
    ['blog:1 2', 'white space'],
    ['blog:', 'bad tag'],
    ['blog:-x', 'bad tag'],
    ['registry.example:99999/blog', 'bad port'],
    ['reg_istry.example/blog', 'not a host name'],
    ['a//b', 'empty path component'],
    ['blog@sha256:xyz', 'bad digest'],
    ['blog-', 'not a repository name'],
    ['', 'must name an image'],
  ])('refuses %j (%s)', (ref, why) => {
    const r = parseImageReference(ref);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(why);
  });

  it('names the default registry when a reference names none', () => {
    const a = parseImageReference('nginx:1');
    const b = parseImageReference('127.0.0.1:5000/nginx:1');
    expect(a.ok && imageRegistry(a.value)).toBe('docker.io');
    expect(b.ok && imageRegistry(b.value)).toBe('127.0.0.1:5000');
  });
});
