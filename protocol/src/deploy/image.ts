/**
 * Container image references in the form registries and engines accept:
 * `[registry[:port]/]path[:tag][@algorithm:digest]`, the grammar of the
 * distribution reference (Docker, Podman, OCI). The agent's registry
 * allow-list (`--registry HOST`) compares `registry` with what it allows.
 */
import type { Checked } from './units';

export interface ImageReference {
  /** `host[:port]` as written, or null for the default registry (Docker Hub). */
  registry: string | null;
  /** The path in the registry, e.g. `library/nginx` or `team/blog`. */
  repository: string;
  tag: string | null;
  digest: string | null;
}

/** The registry engines use when a reference names none. */
export const DEFAULT_REGISTRY = 'docker.io';
export const MAX_IMAGE_REFERENCE_CHARS = 512;
const MAX_REPOSITORY_CHARS = 255;

const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$/;
const HOST_LABEL_RE = /^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$/;
const IPV6_RE = /^\[[0-9A-Fa-f:.]+\]$/;

const EXAMPLE = 'e.g. registry.example/blog:1.2 or 127.0.0.1:5000/blog:1.2';

function checkHost(host: string): string | null {
  let name = host;
  const portAt = host.startsWith('[') ? host.indexOf(']:') + 1 : host.lastIndexOf(':');
  if (portAt > 0) {
    const port = host.slice(portAt + 1);
    if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      return `registry "${host}" has a bad port "${port}" (1-65535)`;
    }
    name = host.slice(0, portAt);
  }
  if (IPV6_RE.test(name)) return null;
  if (!name.split('.').every((l) => HOST_LABEL_RE.test(l))) {
    return `registry "${host}" is not a host name or address`;
  }
  return null;
}

/** Splits and checks an image reference; the message says what is wrong with it. */
export function parseImageReference(input: string): Checked<ImageReference> {
  const ref = input.trim();
  const fail = (why: string): Checked<ImageReference> => ({
    ok: false,
    message: `"${input}" is not an image reference: ${why}; ${EXAMPLE}`,
  });
  if (ref === '') return { ok: false, message: `must name an image, ${EXAMPLE}` };
  if (ref.length > MAX_IMAGE_REFERENCE_CHARS) {
    return { ok: false, message: `is longer than ${MAX_IMAGE_REFERENCE_CHARS} characters` };
  }
  if (/\s/.test(ref)) return fail('it contains white space');
  if (ref.includes('://')) return fail('leave out the scheme (no http:// or https://)');

  let rest = ref;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest))
      return fail(`bad digest "${digest}" (algorithm:hex, e.g. sha256:…)`);
  }
  let tag: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      return fail(`bad tag "${tag}" (letters, digits, "_", "." and "-", at most 128)`);
    }
  }
  const parts = rest.split('/');
  let registry: string | null = null;
  const first = parts[0] ?? '';
  if (
    parts.length > 1 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))
  ) {
    registry = first;
    parts.shift();
    const bad = checkHost(registry);
    if (bad) return fail(bad);
  }
  if (parts.length === 0 || parts.some((p) => p === '')) return fail('an empty path component');
  for (const p of parts) {
    if (!PATH_COMPONENT_RE.test(p)) {
      return fail(
        p.toLowerCase() !== p
          ? `"${p}": repository names are lower case`
          : `"${p}" is not a repository name (a-z, 0-9, separated by ".", "_", "__" or "-")`,
      );
    }
  }
  const repository = parts.join('/');
  if (repository.length > MAX_REPOSITORY_CHARS) {
    return fail(`the repository is longer than ${MAX_REPOSITORY_CHARS} characters`);
  }
  return { ok: true, value: { registry, repository, tag, digest } };
}

/** The registry host an image is pulled from (the default one when it names none). */
export function imageRegistry(ref: ImageReference): string {
  return ref.registry ?? DEFAULT_REGISTRY;
}
