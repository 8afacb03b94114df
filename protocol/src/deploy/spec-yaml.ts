/**
 * Deployment specs read from YAML (JSON is YAML too): syntax errors and
 * validation errors both come back with their line and column.
 */
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { parseDeploymentSpec, type SpecError, type SpecResult } from './spec';

/** Larger files are refused before they are parsed. */
export const MAX_DEPLOYMENT_YAML_BYTES = 256 * 1024;

/**
 * Scalars a person meant as text keep the text they wrote: `VERSION: 1.10`
 * stays "1.10" (not 1.1), a node ID `123e45` stays itself (not 1.23e47).
 */
function keepSource(node: unknown): void {
  const fix = (n: unknown) => {
    if (isScalar(n) && n.value !== null && typeof n.value !== 'string' && n.source !== undefined) {
      n.value = n.source;
    }
  };
  if (isMap(node)) for (const pair of node.items) fix(pair.value);
  else if (isSeq(node)) for (const item of node.items) fix(item);
}

const TEXT_PATHS: readonly (readonly string[])[] = [
  ['env'],
  ['command'],
  ['args'],
  ['constraints', 'labels'],
  ['constraints', 'nodes'],
];

/** The closest node to a path that exists, so a missing field points at its parent. */
function positionOf(
  doc: Document,
  lines: LineCounter,
  path: string,
): { line: number; column: number } | null {
  const keys: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    keys.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
  }
  while (keys.length > 0) {
    const node = doc.getIn(keys, true) as Node | undefined;
    if (node && typeof node === 'object' && node.range) {
      const { line, col } = lines.linePos(node.range[0]);
      return { line, column: col };
    }
    keys.pop();
  }
  return null;
}

/** Parses and validates a deployment spec written in YAML or JSON. */
export function parseDeploymentYaml(text: string): SpecResult {
  if (new TextEncoder().encode(text).byteLength > MAX_DEPLOYMENT_YAML_BYTES) {
    return {
      ok: false,
      errors: [
        { path: '', message: `the file is larger than ${MAX_DEPLOYMENT_YAML_BYTES / 1024} KiB` },
      ],
    };
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e): SpecError => {
        const { line, col } = lines.linePos(e.pos[0]);
        return { path: '', message: `YAML syntax: ${e.message}`, line, column: col };
      }),
    };
  }
  if (doc.contents === null) {
    return {
      ok: false,
      errors: [
        { path: '', message: 'the file is empty: a spec needs at least name, image and port' },
      ],
    };
  }
  for (const p of TEXT_PATHS) keepSource(doc.getIn(p, true));
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    return { ok: false, errors: [{ path: '', message: `YAML: ${(cause as Error).message}` }] };
  }
  const r = parseDeploymentSpec(data);
  if (r.ok) return r;
  return {
    ok: false,
    errors: r.errors.map((e) => {
      const pos = positionOf(doc, lines, e.path);
      return pos ? { ...e, ...pos } : e;
    }),
  };
}
