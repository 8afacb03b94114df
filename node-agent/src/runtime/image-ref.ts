/**
 * Image references and the owner's registry allow-list. The reference
 * grammar is the protocol's (`parseImageReference`, the one the deployment
 * spec is checked with); here it gets the registry engines would use:
 * Docker Hub (`docker.io`, `library/` for single names) when it names none.
 * A node pulls only from registries its owner listed (`--registry
 * HOST[:PORT]`), matched exactly.
 */
import { DEFAULT_REGISTRY, parseImageReference } from '@peerway/protocol';
import { RuntimeError } from './errors';

export const DOCKER_HUB = DEFAULT_REGISTRY;

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

const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$/;
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** Parses an image reference; throws `bad_image` with the reason. */
export function parseImageRef(input: string): ImageRef {
  const parsed = parseImageReference(input);
  if (!parsed.ok) throw new RuntimeError('bad_image', `image ${parsed.message}`);
  const { tag, digest } = parsed.value;
  let registry = (parsed.value.registry ?? DOCKER_HUB).toLowerCase();
  if (HUB_ALIASES.has(registry)) registry = DOCKER_HUB;
  let repository = parsed.value.repository;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
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
