/**
 * Jobs, live: `/jobs` shows the queue (waiting jobs by priority), the jobs
 * running now and the history with a search by state, type or ID, each row
 * with Cancel or Retry; `/jobs/:id` shows one job: its facts, progress,
 * timeline (its attempts and the events its stream brings while the page
 * is open), files, output and input.
 */
import {
  FINAL_JOB_STATES,
  JOB_STATES,
  JOB_TYPES,
  progressText,
  requirementParts,
  type JobEvent,
  type JobRequirements,
  type JobState,
  type JobView,
} from '@peerway/protocol';
import { ApiError, api } from '../api';
import { ago, announce, bytes, h } from '../dom';
import { every } from '../live';
import type { ViewContext } from '../router';

/** How often the jobs pages ask again (the job page also follows its event stream). */
export const JOBS_POLL_MS = 2000;
/** Jobs one request of the list brings (the API's most). */
const PAGE_SIZE = 200;
/** History rows shown before "Show more". */
const HISTORY_PAGE = 50;

/** JSON as it is indented, wrapped anywhere rather than wider than the screen. */
const PRE_STYLE = 'white-space: pre-wrap; overflow-wrap: anywhere';

const RUNNING: readonly JobState[] = ['leased', 'running'];

const jobPath = (id: string) => `/api/jobs/${encodeURIComponent(id)}`;
const jobHref = (id: string) => `/jobs/${encodeURIComponent(id)}`;

/** The tone of a job's state badge. */
function tone(s: JobState): 'ok' | 'bad' | 'wait' {
  if (s === 'succeeded') return 'ok';
  if (s === 'dead' || s === 'failed' || s === 'cancelled') return 'bad';
  return 'wait';
}

export function stateBadge(s: JobState): HTMLElement {
  return h('span', { class: `state ${tone(s)}`, 'data-state': s }, s);
}

/** `service=render gpu≥1 memory≥8 GiB model=sdxl region=home`, or "any worker". */
export function requirementsText(r: JobRequirements): string {
  return requirementParts(r, '≥').join(' ') || 'any worker';
}

export { progressText };

/** Queued jobs per priority, highest first. */
export function depthByPriority(queued: readonly JobView[]): [number, number][] {
  const m = new Map<number, number>();
  for (const j of queued) m.set(j.priority, (m.get(j.priority) ?? 0) + 1);
  return [...m].sort((a, b) => b[0] - a[0]);
}

/**
 * Cancel (a job not finished) or Retry (a dead, cancelled or failed one),
 * or nothing; `after` runs once the server took it.
 */
function actionButton(j: JobView, after: () => void): HTMLButtonElement | null {
  const final = FINAL_JOB_STATES.includes(j.state);
  const verb = !final ? 'cancel' : j.state === 'succeeded' ? null : 'retry';
  if (!verb) return null;
  const b = h(
    'button',
    {
      type: 'button',
      class: verb === 'cancel' ? 'small danger' : 'small',
      'aria-label': `${verb === 'cancel' ? 'Cancel' : 'Retry'} job ${j.id}`,
      'data-action': verb,
    },
    verb === 'cancel' ? 'Cancel' : 'Retry',
  );
  b.addEventListener('click', async () => {
    if (verb === 'cancel' && RUNNING.includes(j.state) && !confirm(`Stop job ${j.id} on its node?`))
      return;
    b.disabled = true;
    try {
      const v = await api<JobView>('POST', `${jobPath(j.id)}/${verb}`);
      announce(`Job ${j.id} is ${v.state}`);
      after();
    } catch (e) {
      b.disabled = false;
      announce((e as Error).message);
      b.after(h('span', { class: 'error', role: 'alert' }, ` ${(e as Error).message}`));
    }
  });
  return b;
}

function signInFirst(root: HTMLElement, next: string): void {
  root.append(
    h('h1', {}, 'Jobs'),
    h(
      'p',
      {},
      h('a', { href: `/signin?next=${encodeURIComponent(next)}` }, 'Sign in'),
      ' to see your jobs.',
    ),
  );
}

const COLUMNS = ['Job', 'Type', 'State', 'Priority', 'Node', 'Attempts', 'Updated', ''] as const;

function jobTable(jobs: readonly JobView[], label: string, after: () => void): HTMLElement {
  return h(
    'table',
    { class: 'stack jobs', 'aria-label': label },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        COLUMNS.map((c) => h('th', { scope: 'col' }, c)),
      ),
    ),
    h(
      'tbody',
      {},
      jobs.map((j) =>
        h(
          'tr',
          { 'data-job': j.id, 'data-state': j.state },
          h('td', { 'data-label': 'Job' }, h('a', { href: jobHref(j.id) }, h('code', {}, j.id))),
          h('td', { 'data-label': 'Type' }, j.type),
          h(
            'td',
            { 'data-label': 'State' },
            stateBadge(j.state),
            j.progress && j.state === 'running' ? ` ${progressText(j.progress)}` : '',
            j.state === 'failed' && j.retryAt !== undefined
              ? h('span', { class: 'muted' }, ` retry ${ago(j.retryAt)}`)
              : '',
          ),
          h('td', { 'data-label': 'Priority' }, String(j.priority)),
          h('td', { 'data-label': 'Node' }, j.node ? h('code', { class: 'id' }, j.node) : '—'),
          h('td', { 'data-label': 'Attempts' }, `${j.attempts.length}/${j.maxAttempts}`),
          h(
            'td',
            { 'data-label': 'Updated' },
            h('time', { datetime: new Date(j.updatedAt).toISOString() }, ago(j.updatedAt)),
          ),
          h('td', { 'data-label': '' }, actionButton(j, after)),
        ),
      ),
    ),
  );
}

/** GET /api/jobs with these filters (one page). */
async function listJobs(q: Record<string, string>): Promise<{ jobs: JobView[]; next?: number }> {
  const qs = new URLSearchParams(q);
  return api('GET', `/api/jobs?${qs}`);
}

/** `/jobs`: the queue, what runs now, and the history with search. */
export function jobsView({ user, root, navigate }: ViewContext): (() => void) | void {
  if (!user) return signInFirst(root, '/jobs');
  const summary = h('div', { id: 'jobs-summary' }, h('p', {}, 'Loading…'));
  const running = h('div', { id: 'jobs-running' });
  const waiting = h('div', { id: 'jobs-waiting' });
  const history = h('div', { id: 'jobs-history' });

  const state = h(
    'select',
    { id: 'jobs-state', name: 'state' },
    h('option', { value: '' }, 'any state'),
    JOB_STATES.map((s) => h('option', { value: s }, s)),
  );
  const type = h(
    'select',
    { id: 'jobs-type', name: 'type' },
    h('option', { value: '' }, 'any type'),
    JOB_TYPES.map((t) => h('option', { value: t }, t)),
  );
  const idBox = h('input', {
    id: 'jobs-id',
    name: 'id',
    type: 'search',
    placeholder: 'job ID',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const search = h(
    'form',
    { class: 'row', role: 'search', 'aria-label': 'Search jobs' },
    h('label', { for: 'jobs-state' }, 'State'),
    state,
    h('label', { for: 'jobs-type' }, 'Type'),
    type,
    h('label', { for: 'jobs-id' }, 'ID'),
    idBox,
    h('button', { type: 'submit', class: 'small' }, 'Search'),
  );
  let shown = HISTORY_PAGE;
  search.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = idBox.value.trim();
    if (id) return navigate(jobHref(id));
    shown = HISTORY_PAGE;
    last.history = '';
    void refresh();
  });
  state.addEventListener('change', () => search.requestSubmit());
  type.addEventListener('change', () => search.requestSubmit());

  root.append(
    h(
      'div',
      { class: 'title-row' },
      h('h1', {}, 'Jobs'),
      h('a', { href: '/workers', class: 'button secondary' }, 'Workers'),
    ),
    h(
      'p',
      { class: 'muted' },
      'Jobs run on nodes started with ',
      h('code', {}, 'peerway-agent run --jobs'),
      ' that you may use. Submit them with ',
      h('code', {}, 'peerway jobs submit'),
      ' or POST /api/jobs.',
    ),
    h(
      'section',
      { 'aria-labelledby': 'queue-title' },
      h('h2', { id: 'queue-title' }, 'Queue'),
      summary,
    ),
    h(
      'section',
      { 'aria-labelledby': 'running-title' },
      h('h2', { id: 'running-title' }, 'Running'),
      running,
    ),
    h(
      'section',
      { 'aria-labelledby': 'waiting-title' },
      h('h2', { id: 'waiting-title' }, 'Waiting'),
      waiting,
    ),
    h(
      'section',
      { 'aria-labelledby': 'history-title' },
      h('h2', { id: 'history-title' }, 'History'),
      search,
      history,
    ),
  );

  const last = { summary: '', running: '', waiting: '', history: '' };
  /** Draws `el` again only when its data changed (keeps focus and selection otherwise). */
  const draw = (key: keyof typeof last, data: unknown, el: HTMLElement, make: () => Node) => {
    const text = JSON.stringify(data) + String(Math.floor(Date.now() / 10_000));
    if (text === last[key]) return;
    last[key] = text;
    el.replaceChildren(make());
  };
  const refresh = async () => {
    try {
      const filters: Record<string, string> = { limit: String(PAGE_SIZE) };
      if (state.value) filters.state = state.value;
      if (type.value) filters.type = type.value;
      const [queued, failed, leased, run, hist] = await Promise.all([
        listJobs({ state: 'queued', limit: String(PAGE_SIZE) }),
        listJobs({ state: 'failed', limit: String(PAGE_SIZE) }),
        listJobs({ state: 'leased', limit: String(PAGE_SIZE) }),
        listJobs({ state: 'running', limit: String(PAGE_SIZE) }),
        listJobs(filters),
      ]);
      const atLeast = (p: { next?: number }) => (p.next !== undefined ? '+' : '');
      const depth = depthByPriority(queued.jobs);
      draw(
        'summary',
        [depth, failed.jobs.length, leased.jobs.length, run.jobs.length],
        summary,
        () =>
          h(
            'div',
            {},
            h(
              'ul',
              { class: 'facts', 'aria-label': 'Counts' },
              h('li', { 'data-count': 'queued' }, `${queued.jobs.length}${atLeast(queued)} queued`),
              h(
                'li',
                { 'data-count': 'failed' },
                `${failed.jobs.length}${atLeast(failed)} waiting to retry`,
              ),
              h(
                'li',
                { 'data-count': 'running' },
                `${leased.jobs.length + run.jobs.length}${atLeast(leased) || atLeast(run)} running`,
              ),
            ),
            depth.length === 0
              ? h('p', { class: 'muted' }, 'Nothing waiting.')
              : h(
                  'table',
                  { class: 'depth', 'aria-label': 'Queue depth by priority' },
                  h(
                    'thead',
                    {},
                    h(
                      'tr',
                      {},
                      h('th', { scope: 'col' }, 'Priority'),
                      h('th', { scope: 'col' }, 'Waiting'),
                    ),
                  ),
                  h(
                    'tbody',
                    {},
                    depth.map(([p, n]) =>
                      h(
                        'tr',
                        { 'data-priority': p },
                        h('td', {}, String(p)),
                        h('td', {}, String(n)),
                      ),
                    ),
                  ),
                ),
          ),
      );
      const now = [...leased.jobs, ...run.jobs];
      draw('running', now, running, () =>
        now.length
          ? jobTable(now, 'Jobs running now', () => void refresh())
          : h('p', { class: 'muted' }, 'Nothing runs now.'),
      );
      // the queue's order: priority, then oldest first
      const wait = [...queued.jobs, ...failed.jobs].sort(
        (a, b) => b.priority - a.priority || a.createdAt - b.createdAt,
      );
      draw('waiting', wait, waiting, () =>
        wait.length
          ? jobTable(wait, 'Jobs waiting', () => void refresh())
          : h('p', { class: 'muted' }, 'No job waits.'),
      );
      const rows = hist.jobs.slice(0, shown);
      draw('history', [rows, shown, hist.jobs.length], history, () =>
        rows.length === 0
          ? h(
              'p',
              { class: 'muted' },
              state.value || type.value ? 'No jobs like that.' : 'No jobs yet.',
            )
          : h(
              'div',
              {},
              jobTable(rows, 'Job history', () => void refresh()),
              hist.jobs.length > shown
                ? h(
                    'button',
                    {
                      type: 'button',
                      class: 'small secondary',
                      onclick: () => {
                        shown += HISTORY_PAGE;
                        void refresh();
                      },
                    },
                    'Show more',
                  )
                : null,
            ),
      );
    } catch (e) {
      last.summary = '';
      summary.replaceChildren(h('p', { class: 'error', role: 'alert' }, (e as Error).message));
    }
  };
  return every(JOBS_POLL_MS, refresh);
}

/** One line of a job's timeline. */
interface Moment {
  at: number;
  text: string;
  kind: string;
}

/** The job's timeline: submitted, each attempt's lease, start and end, and the events seen live. */
export function timeline(j: JobView, live: readonly JobEvent[]): Moment[] {
  const out: Moment[] = [{ at: j.createdAt, text: 'submitted', kind: 'submitted' }];
  for (const a of j.attempts) {
    out.push({ at: a.leasedAt, text: `attempt ${a.attempt} leased by ${a.node}`, kind: 'leased' });
    if (a.startedAt !== undefined)
      out.push({ at: a.startedAt, text: `attempt ${a.attempt} started`, kind: 'started' });
    if (a.endedAt !== undefined)
      out.push({
        at: a.endedAt,
        text: `attempt ${a.attempt} ${a.outcome ?? 'ended'}${a.error ? `: ${a.error}` : ''}`,
        kind: a.outcome ?? 'ended',
      });
  }
  // what the attempts do not say: progress, and states such as queued again, cancelled
  for (const e of live) {
    if (e.type === 'progress')
      out.push({ at: e.at, text: `progress ${progressText(e)}`, kind: 'progress' });
    else if (e.state === 'queued' || e.state === 'cancelled' || e.state === 'dead')
      out.push({ at: e.at, text: `${e.state}${e.reason ? `: ${e.reason}` : ''}`, kind: e.state });
  }
  return out.sort((a, b) => a.at - b.at);
}

/** The events a job's stream may send, read field by field (null: not one). */
function eventOf(type: string, data: string): JobEvent | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.at !== 'number') return null;
  const str = (x: unknown) => (typeof x === 'string' ? x : undefined);
  const num = (x: unknown) => (typeof x === 'number' ? x : undefined);
  if (type === 'state') {
    const state = JOB_STATES.find((s) => s === o.state);
    if (!state) return null;
    const reason = str(o.reason);
    return { type: 'state', state, at: o.at, ...(reason !== undefined ? { reason } : {}) };
  }
  const attempt = num(o.attempt);
  if (attempt === undefined) return null;
  const [value, max, message] = [num(o.value), num(o.max), str(o.message)];
  return {
    type: 'progress',
    attempt,
    at: o.at,
    ...(value !== undefined ? { value } : {}),
    ...(max !== undefined ? { max } : {}),
    ...(message !== undefined ? { message } : {}),
  };
}

/** `/jobs/:id`: one job, live. */
export function jobView({ user, root, params }: ViewContext): (() => void) | void {
  const id = params.id!;
  if (!user) return signInFirst(root, jobHref(id));
  document.title = `Job ${id} · Peerway`;
  const actions = h('div', { class: 'row' });
  const body = h('div', { id: 'job', 'data-job': id }, h('p', {}, 'Loading…'));
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '/jobs' }, '← Jobs')),
    h('div', { class: 'title-row' }, h('h1', {}, 'Job ', h('code', {}, id)), actions),
    body,
  );
  const live: JobEvent[] = [];
  let last = '';
  const load = async () => {
    try {
      const j = await api<JobView>('GET', jobPath(id));
      const text = JSON.stringify([j, live.length]) + String(Math.floor(Date.now() / 10_000));
      if (text === last) return;
      last = text;
      const b = actionButton(j, () => void load());
      actions.replaceChildren(...(b ? [b] : []));
      body.replaceChildren(...jobDetail(j, live));
    } catch (e) {
      last = '';
      actions.replaceChildren();
      if (e instanceof ApiError && e.status === 404)
        body.replaceChildren(
          h('p', {}, `You have no job ${id}.`),
          h('p', {}, h('a', { href: '/jobs' }, 'See your jobs')),
        );
      else body.replaceChildren(h('p', { class: 'error', role: 'alert' }, (e as Error).message));
    }
  };
  const stopPolling = every(JOBS_POLL_MS, load);
  // The stream brings each change at once (and the progress the job view keeps only the last of).
  let es: EventSource | null = null;
  if ('EventSource' in window) {
    es = new EventSource(`${jobPath(id)}/events`);
    for (const type of ['state', 'progress'])
      es.addEventListener(type, (ev) => {
        const e = eventOf(type, (ev as MessageEvent<string>).data);
        if (!e) return;
        live.push(e);
        void load();
      });
    // a finished job's stream ends: EventSource would open it again and again
    es.onerror = () => {
      es?.close();
      es = null;
    };
  }
  return () => {
    stopPolling();
    es?.close();
  };
}

function jobDetail(j: JobView, live: readonly JobEvent[]): HTMLElement[] {
  const t = timeline(j, live).reverse();
  return [
    h(
      'p',
      { class: 'summary' },
      stateBadge(j.state),
      j.progress && j.state === 'running'
        ? h('span', { 'data-progress': '' }, ` ${progressText(j.progress)}`)
        : '',
      j.state === 'failed' && j.retryAt !== undefined
        ? h('span', { class: 'muted' }, ` next attempt ${new Date(j.retryAt).toLocaleTimeString()}`)
        : '',
    ),
    j.error !== undefined ? h('p', { class: 'error', 'data-error': '' }, j.error) : h('span'),
    h(
      'ul',
      { class: 'facts', 'aria-label': 'Job' },
      h('li', {}, j.type),
      h('li', {}, `priority ${j.priority}`),
      h('li', { class: 'wrap' }, requirementsText(j.requirements)),
      h('li', {}, j.node ? `on ${j.node}` : 'not run yet'),
      h('li', {}, `attempt ${j.attempts.length} of ${j.maxAttempts}`),
      h('li', {}, `timeout ${j.timeoutS} s`),
      j.idempotencyKey !== undefined ? h('li', { class: 'wrap' }, `key ${j.idempotencyKey}`) : null,
    ),
    h(
      'section',
      { 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title' }, 'Timeline'),
      h(
        'ol',
        { class: 'plain events timeline' },
        t.map((m) =>
          h(
            'li',
            { 'data-event': m.kind },
            h(
              'time',
              { datetime: new Date(m.at).toISOString(), class: 'muted' },
              new Date(m.at).toLocaleTimeString(),
            ),
            ' ',
            m.text,
          ),
        ),
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'files-title' },
      h('h2', { id: 'files-title' }, 'Files'),
      j.files.length === 0
        ? h('p', { class: 'muted' }, 'No files.')
        : h(
            'ul',
            { class: 'plain files' },
            j.files.map((f) =>
              h(
                'li',
                { 'data-file': f.name },
                h('a', { href: f.url, download: f.name }, f.name),
                h('span', { class: 'muted' }, ` ${bytes(f.bytes)}, ${f.contentType}`),
                f.contentType.startsWith('image/')
                  ? h(
                      'div',
                      {},
                      h('img', {
                        src: f.url,
                        alt: f.name,
                        loading: 'lazy',
                        style: 'max-width: 100%',
                      }),
                    )
                  : null,
              ),
            ),
          ),
    ),
    j.output !== undefined
      ? h(
          'section',
          { 'aria-labelledby': 'output-title' },
          h('h2', { id: 'output-title' }, 'Output'),
          h('pre', { style: PRE_STYLE, 'data-output': '' }, JSON.stringify(j.output, null, 2)),
        )
      : h('span'),
    h(
      'details',
      {},
      h('summary', {}, 'Input'),
      h('pre', { style: PRE_STYLE }, JSON.stringify(j.input ?? null, null, 2)),
    ),
  ];
}
