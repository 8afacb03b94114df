/**
 * "New deployment": a spec typed or pasted as YAML (or JSON), a Plan button
 * (a dry run: where each replica would go, or why it fits on no node) and a
 * Deploy button. A spec with errors gets them listed beside the text, each
 * with its field's path and line; choosing one selects that line.
 */
import {
  ApiError,
  apiText,
  type ApplyView,
  type PendingView,
  type PlanView,
  type SpecError,
} from '../api';
import { announce, bytes, h } from '../dom';
import { cores } from './node-resources';

const EXAMPLE = `name: blog
image: registry.example/blog:1.2
port: 8080
replicas: 2
resources: { cpu: 0.5, memory: 256MiB }
health: { path: /healthz }
access: private`;

/**
 * The form; `deployed(name)` is told after a deployment was made or
 * updated. `initial`: a spec to start from (a deployment's own, to change it).
 */
export function deployForm(
  deployed: (name: string) => void,
  opts: { title?: string; initial?: string } = {},
): HTMLElement {
  const text = h('textarea', {
    id: 'spec',
    rows: 14,
    spellcheck: 'false',
    autocapitalize: 'off',
    autocomplete: 'off',
    placeholder: EXAMPLE,
    'aria-describedby': 'spec-help spec-errors',
  });
  if (opts.initial) text.value = opts.initial;
  const errors = h('div', { id: 'spec-errors', class: 'spec-errors', 'aria-live': 'polite' });
  const result = h('div', { id: 'plan', class: 'plan', 'aria-live': 'polite' });
  const planButton = h('button', { type: 'button', class: 'secondary' }, 'Plan');
  const deployButton = h('button', { type: 'submit' }, 'Deploy');

  const show = (errs: SpecError[] | null, out: HTMLElement | null) => {
    text.toggleAttribute('aria-invalid', errs !== null && errs.length > 0);
    errors.replaceChildren(...(errs && errs.length ? [specErrors(errs, text)] : []));
    result.replaceChildren(...(out ? [out] : []));
  };

  const submit = async (dryRun: boolean) => {
    planButton.disabled = deployButton.disabled = true;
    try {
      const r = await apiText<ApplyView>(
        'POST',
        `/api/deployments${dryRun ? '?dryRun=1' : ''}`,
        text.value,
        'application/yaml',
      );
      if (dryRun) {
        show(null, planResult(r));
        announce(r.plan.lines.join('. '));
      } else {
        show(null, null);
        announce(`${r.plan.deployment} ${r.created ? 'deployed' : 'updated'}`);
        deployed(r.plan.deployment);
      }
    } catch (err) {
      const errs = specErrorsOf(err);
      if (errs) {
        show(errs, null);
        announce((err as Error).message);
      } else {
        show(null, h('p', { class: 'error', role: 'alert' }, (err as Error).message));
      }
    } finally {
      planButton.disabled = deployButton.disabled = false;
    }
  };
  planButton.addEventListener('click', () => void submit(true));
  const form = h(
    'form',
    { class: 'deploy-form', id: 'deploy-form' },
    h(
      'div',
      { class: 'spec-edit' },
      h('label', { for: 'spec' }, 'Spec (YAML or JSON)'),
      text,
      h(
        'p',
        { id: 'spec-help', class: 'muted small' },
        'name is the service name, so its URL; image, port and the rest as in the example. ',
        'Plan shows where its replicas would run without deploying anything.',
      ),
      h('div', { class: 'row' }, planButton, deployButton),
    ),
    h('div', { class: 'spec-side' }, errors, result),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void submit(false);
  });
  return h(
    'section',
    { id: 'new', 'aria-labelledby': 'new-title' },
    h('h2', { id: 'new-title' }, opts.title ?? 'New deployment'),
    form,
  );
}

/** The spec's problems from a 400 answer, or null for any other failure. */
function specErrorsOf(err: unknown): SpecError[] | null {
  if (!(err instanceof ApiError) || err.status !== 400) return null;
  const list = err.body.errors;
  return Array.isArray(list) ? (list as SpecError[]) : null;
}

/** Each problem with its path (or "the spec") and, when known, a button to its line. */
function specErrors(errs: SpecError[], text: HTMLTextAreaElement): HTMLElement {
  return h(
    'div',
    { role: 'alert' },
    h(
      'p',
      { class: 'error' },
      errs.length === 1 ? 'The spec has a problem:' : `The spec has ${errs.length} problems:`,
    ),
    h(
      'ul',
      { class: 'plain errors' },
      errs.map((e) =>
        h(
          'li',
          { 'data-path': e.path },
          h('code', { class: 'path' }, e.path || 'the spec'),
          ' ',
          e.message,
          e.line !== undefined
            ? [
                ' ',
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'small secondary',
                    'aria-label': `Go to line ${e.line}${e.path ? ` (${e.path})` : ''}`,
                    onclick: () => selectLine(text, e.line!),
                  },
                  `line ${e.line}`,
                ),
              ]
            : null,
        ),
      ),
    ),
  );
}

/** Selects a 1-based line of the text and brings it into view. */
function selectLine(text: HTMLTextAreaElement, line: number): void {
  const lines = text.value.split('\n');
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  const end = start + (lines[line - 1]?.length ?? 0);
  text.focus();
  text.setSelectionRange(start, end);
  const lineHeight = text.scrollHeight / Math.max(lines.length, 1);
  text.scrollTop = Math.max(0, (line - 3) * lineHeight);
}

function replicaSize(r: { cpuMillis: number; memoryBytes: number; gpu: number }): string {
  return `${cores(r.cpuMillis)} CPU, ${bytes(r.memoryBytes)}${r.gpu ? `, ${r.gpu} GPU` : ''}`;
}

/** What a dry run says: kept, placed and stopped replicas, and why the rest fit nowhere. */
function planResult(r: ApplyView): HTMLElement {
  const p: PlanView = r.plan;
  const items: HTMLElement[] = [
    ...p.keep.map((k) =>
      h('li', { 'data-plan': 'keep' }, `Keep replica ${k.allocation} on node `, node(k.node)),
    ),
    ...p.place.map((x) =>
      h(
        'li',
        { 'data-plan': 'place' },
        'Place a replica on node ',
        node(x.node),
        ` (${replicaSize(x.resources)})`,
        x.replaces ? `, replacing ${x.replaces}` : '',
      ),
    ),
    ...p.stop.map((s) =>
      h(
        'li',
        { 'data-plan': 'stop' },
        `Stop replica ${s.allocation} on node `,
        node(s.node),
        s.message ? `: ${s.message}` : '',
      ),
    ),
  ];
  return h(
    'div',
    { 'data-plan-for': p.deployment },
    h(
      'h3',
      {},
      `Plan for ${p.deployment}`,
      ' ',
      h('span', { class: 'muted' }, r.created ? '(new)' : '(an update)'),
    ),
    items.length ? h('ul', { class: 'plain plan-steps' }, items) : null,
    !p.changed && p.unplaced === 0
      ? h('p', { class: 'ok' }, `No change: ${p.desired} of ${p.desired} replicas placed.`)
      : null,
    p.unplaced > 0 ? unplaced(r.pending, p) : null,
    (r.warnings ?? []).length
      ? h(
          'ul',
          { class: 'plain muted' },
          r.warnings!.map((w) => h('li', {}, w)),
        )
      : null,
    h('p', { class: 'muted small' }, 'Nothing was deployed. Deploy to do this.'),
  );
}

const node = (shortId: string) => h('code', { class: 'id' }, shortId);

/** "2 replicas fit on no node", then each node's reason. */
export function unplaced(pending: PendingView | null, p?: PlanView): HTMLElement {
  const count = pending?.replicas ?? p?.unplaced ?? 0;
  const reasons = pending?.reasons ?? p?.reasons ?? [];
  const others = pending?.otherNodes ?? p?.otherNodes ?? 0;
  return h(
    'div',
    { class: 'unplaced', 'data-unplaced': count },
    h(
      'p',
      { class: 'error' },
      `${count === 1 ? '1 replica fits' : `${count} replicas fit`} on no node:`,
    ),
    h(
      'ul',
      { class: 'plain reasons' },
      reasons.map((x) =>
        h(
          'li',
          { 'data-reason': x.code, 'data-node': x.node },
          'node ',
          node(x.node),
          `: ${x.message}`,
        ),
      ),
      others > 0
        ? h(
            'li',
            {},
            `${others} other node${others === 1 ? ' is' : 's are'} neither yours nor granted to you`,
          )
        : null,
      reasons.length === 0 && others === 0
        ? h('li', {}, 'no nodes yet: start an agent with peerway-agent run --deployments')
        : null,
    ),
  );
}
