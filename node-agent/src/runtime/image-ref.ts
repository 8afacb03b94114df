/**
 * Image references and the owner's registry allow-list. A reference is read
 * the way Docker and Podman read it: the first path component names a
 * registry when it has a dot or a port or is `localhost`; otherwise the image
 * is on Docker Hub (`docker.io`). A node pulls only from registries its
 * owner listed (`--registry HOST[:PORT]`), matched exactly.
 */
import { RuntimeError } from './errors';

export const DOCKER_HUB = 'docker.io';

export interface ImageRef {
  /** host[:port], lower case; `docker.io` for Docker Hub. */
  registry: string;
  /** The path inside the registry (`library/nginx` for `nginx`). */
  repository: string;
  tag: string | null;
  digest: string | null;
  /** The fully qualified reference, e.g. `127.0.0.1:5000/team/web:1`. */
  canonical: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Fa-f0-9]{32,}$/;
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$/;
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** Parses an image reference; throws `bad_image` with the reason. */
export function parseImageRef(input: string): ImageRef {
  const ref = input.trim();
  const bad = (why: string) =>
    new RuntimeError('bad_image', `image "${input}" is not a valid reference: ${why}`);
  if (!ref) throw bad('it is empty');
  let rest = ref;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`"${digest}" is not a digest (algorithm:hex)`);
  }
  let tag: string | null = null;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`"${tag}" is not a tag`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!HOST.test(first)) throw bad(`"${first}" is not a registry host`);
    registry = first.toLowerCase();
    parts.shift();
  }
  if (HUB_ALIASES.has(registry)) registry = DOCKER_HUB;
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    throw bad('the name must be lower-case letters, digits and separators (. _ -) between slashes');
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  const canonical =
    `${registry}/${repository}` + (tag ? `:${tag}` : '') + (digest ? `@${digest}` : '');
  return { registry, repository, tag, digest, canonical };
}

/** Normalises an allow-list entry (`Docker.io`, `127.0.0.1:5000`); throws on a bad host. */
export function normaliseRegistryHost(entry: string): string {
  const host = entry.trim().toLowerCase();
  if (!HOST.test(host)) {
    throw new RuntimeError(
      'bad_image',
      `registry "${entry}" is not a host or host:port (e.g. registry.example or 127.0.0.1:5000)`,
    );
  }
  return HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

/**
 * Throws `registry_not_allowed` unless the image's registry is on the list.
 * An empty list allows nothing: a node pulls only from registries its owner named.
 */
export function assertRegistryAllowed(ref: ImageRef, allowed: readonly string[]): void {
  if (allowed.includes(ref.registry)) return;
  const list = allowed.length ? `allowed: ${allowed.join(', ')}` : 'no registry is allowed';
  throw new RuntimeError(
    'registry_not_allowed',
    `image ${ref.canonical} is from registry ${ref.registry}, which this node does not allow ` +
      `(${list}); its owner can add it with --registry ${ref.registry}`,
  );
}

/** True for registries on this machine: they are reached over plain HTTP. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[')
    ? registry.slice(1, registry.indexOf(']'))
    : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}
