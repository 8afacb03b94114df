import { describe, expect, it } from 'vitest';
import {
  assertRegistryAllowed,
  isLoopbackRegistry,
  normaliseRegistryHost,
  parseImageRef,
} from './image-ref';
import { RuntimeError } from './errors';

describe('image references', () => {
  it('reads the registry the way Docker and Podman do', () => {
    expect(parseImageRef('nginx')).toMatchObject({
      registry: 'docker.io',
      repository: 'library/nginx',
      tag: null,
      canonical: 'docker.io/library/nginx',
    });
    expect(parseImageRef('team/app:2')).toMatchObject({
      registry: 'docker.io',
      repository: 'team/app',
      tag: '2',
    });
    expect(parseImageRef('127.0.0.1:5000/peerway-test/web:1')).toMatchObject({
      registry: '127.0.0.1:5000',
      repository: 'peerway-test/web',
      tag: '1',
    });
    expect(parseImageRef('localhost/app').registry).toBe('localhost');
    expect(parseImageRef('Registry.Example/blog:1.2').registry).toBe('registry.example');
    expect(parseImageRef('index.docker.io/library/redis:7').registry).toBe('docker.io');
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseImageRef(`ghcr.io/o/app@${digest}`)).toMatchObject({
      registry: 'ghcr.io',
      tag: null,
      digest,
    });
    // a port-like tag is a tag, not a registry
    expect(parseImageRef('app:5000')).toMatchObject({ registry: 'docker.io', tag: '5000' });
  });

  it('refuses what is not a reference, saying why', () => {
    for (const bad of ['', 'UPPER/case', 'a//b', 'app:bad tag', 'app@sha256:zz', 'reg.example/']) {
      expect(() => parseImageRef(bad)).toThrow(RuntimeError);
    }
    expect(() => parseImageRef('app@md5:12')).toThrow(
      /image "app@md5:12" is not an image reference: bad digest/,
    );
  });
});

describe('registry allow-list', () => {
  it('allows only registries on the list, exactly', () => {
    const allowed = ['127.0.0.1:5000', 'docker.io'];
    expect(() => assertRegistryAllowed(parseImageRef('127.0.0.1:5000/a:1'), allowed)).not.toThrow();
    expect(() => assertRegistryAllowed(parseImageRef('nginx'), allowed)).not.toThrow();
    expect(() => assertRegistryAllowed(parseImageRef('127.0.0.1:5001/a:1'), allowed)).toThrow(
      /registry 127\.0\.0\.1:5001, which this node does not allow \(allowed: 127\.0\.0\.1:5000, docker\.io\); its owner can add it with --registry 127\.0\.0\.1:5001/,
    );
    expect(() => assertRegistryAllowed(parseImageRef('evil.example/docker.io/x'), allowed)).toThrow(
      expect.objectContaining({ code: 'registry_not_allowed' }),
    );
  });

  it('allows nothing when the owner named no registry', () => {
    expect(() => assertRegistryAllowed(parseImageRef('nginx'), [])).toThrow(
      /no registry is allowed/,
    );
  });

  it('normalises owner entries', () => {
    expect(normaliseRegistryHost(' Registry.Example:443 ')).toBe('registry.example:443');
    expect(normaliseRegistryHost('index.docker.io')).toBe('docker.io');
    expect(() => normaliseRegistryHost('http://x')).toThrow(/not a host/);
  });

  it('knows loopback registries', () => {
    expect(isLoopbackRegistry('127.0.0.1:5000')).toBe(true);
    expect(isLoopbackRegistry('127.1.2.3')).toBe(true);
    expect(isLoopbackRegistry('localhost:5000')).toBe(true);
    expect(isLoopbackRegistry('[::1]:5000')).toBe(true);
    expect(isLoopbackRegistry('127.0.0.1.nip.io:5000')).toBe(false);
    expect(isLoopbackRegistry('registry.example')).toBe(false);
  });
});
