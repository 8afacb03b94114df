/** A few lines of DOM building: text is always set as text, never parsed as HTML. */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined | null>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  }
  return el;
}

/** Says something to screen readers (and keeps it for tests). */
export function announce(text: string): void {
  const el = document.getElementById('announce');
  if (el) el.textContent = text;
}

/** "3 min ago", "just now", or a date for old times. */
export function ago(at: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 10) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return new Date(at).toLocaleDateString();
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A button that copies `text` and says so. */
export function copyButton(text: string, label: string): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'small', 'aria-label': label }, 'Copy');
  b.addEventListener('click', () => {
    void navigator.clipboard?.writeText(text).then(
      () => {
        b.textContent = 'Copied';
        announce(`Copied ${text}`);
        setTimeout(() => (b.textContent = 'Copy'), 1500);
      },
      () => announce('Copying is not allowed here; select the text instead'),
    );
  });
  return b;
}

/** Words of a command longer than this (tokens, long URLs) may break anywhere. */
const UNBROKEN_WORD_MAX_CHARS = 24;

/**
 * A command to type, in a box with its copy button. It wraps between words
 * (a short word such as `--server` is never split at its hyphens) and a long
 * word such as a token anywhere, so all of it shows at any width; its text
 * is the command exactly, for selecting and copying.
 */
export function commandLine(text: string, label: string): HTMLElement {
  const code = h('code', {});
  text.split(/( +)/).forEach((part, i) => {
    if (i % 2 === 1 || part.length > UNBROKEN_WORD_MAX_CHARS) code.append(part);
    else if (part) code.append(h('span', { class: 'word' }, part));
  });
  return h('div', { class: 'cmd' }, code, copyButton(text, label));
}
