/**
 * The docs a newcomer follows stay true to the tree: every relative link in
 * a `*.md` file leads to a file or folder inside the repository, and every
 * environment variable a package's code reads is named in that package's
 * README.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/** Folders never walked: installed, built or version-control state. */
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git']);

/**
 * The packages whose README documents their environment. bench (BENCH_*
 * knobs of the benchmarks) is not among them: its README lists only some.
 */
const DOCUMENTED_PACKAGES = ['protocol', 'signaling-server', 'node-agent', 'web-client', 'cli'];

/** Every file under `dir` (relative to ROOT) whose name passes `keep`. */
function walk(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) out.push(...walk(rel, keep));
    } else if (e.isFile() && keep(e.name)) out.push(rel);
  }
  return out;
}

/** A link in a Markdown file: its target as written and the line it is on. */
interface MdLink {
  target: string;
  line: number;
}

/**
 * The link targets of a Markdown text: inline links and images
 * (`[text](target "title")`, `<target>` form too) and reference
 * definitions (`[ref]: target`). Fenced code blocks and code spans are not
 * links and are skipped.
 */
function markdownLinks(text: string): MdLink[] {
  const links: MdLink[] = [];
  let fence: string | null = null;
  text.split('\n').forEach((raw, i) => {
    const f = /^\s{0,3}(`{3,}|~{3,})/.exec(raw);
    if (f) {
      if (fence === null) fence = f[1]![0]!;
      else if (f[1]![0] === fence) fence = null;
      return;
    }
    if (fence !== null) return;
    const line = raw.replace(/(`+)[^`]*?\1/g, '');
    for (const m of line.matchAll(/\]\(\s*(<[^>]*>|[^\s)]+)/g))
      links.push({ target: m[1]!.replace(/^<|>$/g, ''), line: i + 1 });
    const def = /^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(line);
    if (def) links.push({ target: def[1]!.replace(/^<|>$/g, ''), line: i + 1 });
  });
  return links;
}

/**
 * What is wrong with a link from the Markdown file `file` (relative to
 * ROOT), or null when nothing is: a relative target must exist and stay
 * inside the repository. URLs with a scheme and same-page anchors are not
 * checked; `/path` is read from the repository root, as GitHub does.
 */
function linkProblem(file: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) return null;
  const path = decodeURIComponent(target.replace(/[#?].*$/, ''));
  if (path === '') return null;
  const abs = path.startsWith('/') ? join(ROOT, path) : resolve(ROOT, dirname(file), path);
  const rel = relative(ROOT, abs);
  if (rel === '..' || rel.startsWith(`..${sep}`)) return 'leaves the repository';
  if (!existsSync(abs)) return 'no such file';
  return null;
}

/**
 * The environment variable names a TypeScript source reads: `process.env.X`,
 * `process.env['X']`, the same on an `env` parameter that stands for
 * process.env (`env.X`, `env['X']`), and `const { X } = process.env`. Only
 * upper-case names count, which is what environment variables are here;
 * comments are skipped.
 */
function envReads(source: string): string[] {
  const names = new Set<string>();
  // Comments may name a variable without reading it (`env.FOO` as a field path).
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');
  for (const m of code.matchAll(
    /\benv\s*(?:\.\s*([A-Z_][A-Z0-9_]*)\b|\[\s*(['"`])([A-Z_][A-Z0-9_]*)\2\s*\])/g,
  ))
    names.add((m[1] ?? m[3])!);
  for (const m of code.matchAll(/\{([^}]*)\}\s*=\s*process\.env\b/g))
    for (const part of m[1]!.split(',')) {
      const name = /^\s*([A-Z_][A-Z0-9_]*)\b/.exec(part)?.[1];
      if (name) names.add(name);
    }
  return [...names].sort();
}

describe('markdownLinks', () => {
  it('finds inline links, images and reference definitions, not code', () => {
    const text = [
      'See [the design](docs/design.md#core) and ![shot](img/a.png "title").',
      '[ref]: ../outside.md',
      'Code `[not](a-link.md)` is skipped.',
      '```md',
      '[also not](fenced.md)',
      '```',
      'After the fence [yes](<with space.md>).',
    ].join('\n');
    expect(markdownLinks(text)).toEqual([
      { target: 'docs/design.md#core', line: 1 },
      { target: 'img/a.png', line: 1 },
      { target: '../outside.md', line: 2 },
      { target: 'with space.md', line: 7 },
    ]);
  });
});

describe('linkProblem', () => {
  it('accepts a file, a folder and a heading inside the repository', () => {
    expect(linkProblem('README.md', 'protocol/README.md')).toBeNull();
    expect(linkProblem('protocol/README.md', '../infra/turn/')).toBeNull();
    expect(linkProblem('README.md', 'README.md#tests')).toBeNull();
    expect(linkProblem('README.md', 'https://example.com/x')).toBeNull();
    expect(linkProblem('README.md', '#tests')).toBeNull();
  });
  it('refuses a missing target and one outside the repository', () => {
    expect(linkProblem('README.md', 'no/such/file.md')).toBe('no such file');
    expect(linkProblem('README.md', '../shared/DESIGN.md')).toBe('leaves the repository');
    expect(linkProblem('docs/x.md', '../../etc/passwd')).toBe('leaves the repository');
  });
});

describe('envReads', () => {
  it('finds every form of reading a variable', () => {
    const src = [
      "const a = process.env.PEERWAY_A ?? 'x';",
      "const b = process.env['PEERWAY_B'];",
      'function f(env = process.env) { return env.PEERWAY_C; }',
      'const { PEERWAY_D, PEERWAY_E: e } = process.env;',
      'const lower = options.env.value; // not a variable name, nor env.PEERWAY_F here',
      "/** A spec's path `env.PEERWAY_G` */ const url = 'http://x'; env.PEERWAY_H;",
    ].join('\n');
    expect(envReads(src)).toEqual([
      'PEERWAY_A',
      'PEERWAY_B',
      'PEERWAY_C',
      'PEERWAY_D',
      'PEERWAY_E',
      'PEERWAY_H',
    ]);
  });
});

describe('the repository', () => {
  it('has no relative link in a *.md file that is broken or leaves the repository', () => {
    const problems: string[] = [];
    for (const file of walk('', (n) => n.endsWith('.md'))) {
      for (const { target, line } of markdownLinks(readFileSync(join(ROOT, file), 'utf8'))) {
        const p = linkProblem(file, target);
        if (p) problems.push(`${file}:${line}: ${target} (${p})`);
      }
    }
    expect(problems).toEqual([]);
  });

  it.each(DOCUMENTED_PACKAGES)(
    '%s/README.md names every environment variable its src/ reads',
    (pkg) => {
      const readmePath = join(ROOT, pkg, 'README.md');
      expect(existsSync(readmePath), `${pkg}/README.md exists`).toBe(true);
      const readme = readFileSync(readmePath, 'utf8');
      const missing: string[] = [];
      for (const file of walk(`${pkg}/src`, (n) => n.endsWith('.ts') && !n.endsWith('.test.ts')))
        for (const name of envReads(readFileSync(join(ROOT, file), 'utf8')))
          if (!new RegExp(`\\b${name}\\b`).test(readme)) missing.push(`${name} (${file})`);
      expect(missing).toEqual([]);
    },
  );
});
