/**
 * The dashboard's jobs pages in real Chromium against a real server: jobs
 * submitted through the API show in the queue by priority; when a worker
 * takes the highest one it shows as running, and its page follows it live
 * (leased, started, progress, then succeeded with its file and output); a
 * dead job's Retry queues it again; a queued job's Cancel cancels it; the
 * Workers page shows the worker's connectors, what it runs and its pool,
 * and the owner puts the node in the public pool and back. At 375 px no
 * page is wider than the screen.
 *
 * The worker is a fake agent (fixtures/dashboard-jobs.ts) speaking the jobs
 * part of the agent protocol over the real agent WebSocket, driven by the
 * test, since this test is about what the submitter sees.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { JobView } from '@peerway/protocol';
import { Stack, screenshot, type StackUser } from '../support/stack';
import { resources } from '../fixtures/dashboard-cluster';
import { JobWorker } from '../fixtures/dashboard-jobs';

const stack = new Stack();
let owner: StackUser;
let worker: JobWorker;
let page: Page;

beforeAll(async () => {
  await stack.start(['--job-lease', '10s']);
  await stack.user(true); // the first account is the admin
  owner = await stack.user();
  worker = await JobWorker.start(
    stack.url,
    owner.token,
    'render-box',
    resources({ labels: { region: 'home' } }),
    [
      { type: 'simulation', services: [], models: [], images: [] },
      { type: 'comfyui', services: [], models: ['sdxl.safetensors'], images: [] },
    ],
  );
  stack.onStop(() => worker.close());

  page = await (await stack.context()).newPage();
  await page.goto(`${stack.url}/signin?next=/`);
  await page.getByLabel('Email').fill(owner.email);
  await page.getByLabel('Password').fill(owner.password);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await open('/jobs');
});
afterAll(() => stack.stop());

async function call<T = JobView>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${owner.token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
const submit = (body: Record<string, unknown>) =>
  call('POST', '/api/jobs', { type: 'simulation', ...body });
/**
 * Shows a dashboard path the way a link in the page does (the router's
 * history entry). The server does not answer /jobs, /jobs/:id and /workers
 * with the dashboard page yet (signaling-server/src/web/pages.ts
 * DASHBOARD_ROUTES), so the test starts from / instead of loading them.
 */
async function open(path: string): Promise<void> {
  if (!(await page.locator('#view').count())) await page.goto(`${stack.url}/`);
  await page.evaluate((p) => {
    history.pushState(null, '', p);
    dispatchEvent(new PopStateEvent('popstate'));
  }, path);
  await page.waitForURL((u) => u.pathname === path);
}
const row = (section: string, id: string) => page.locator(`#${section} tr[data-job="${id}"]`);

/** Polls `fn` for long enough for the pages' own polling (2-3 s) to show a change. */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 15_000 });

/** At 375 px wide the page fits the screen; then back to desktop width. */
async function fitsAPhone(shot: string): Promise<void> {
  const size = page.viewportSize();
  await page.setViewportSize({ width: 375, height: 740 });
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  await screenshot(page, `dashboard-jobs-${shot}-phone`, { fullPage: true });
  expect(scroll, `${shot} is wider than a 375 px screen`).toBeLessThanOrEqual(inner);
  if (size) await page.setViewportSize(size);
}

let high: JobView;
let low: JobView;
let never: JobView;

it('shows the queue by priority, then the job a worker takes as running', async () => {
  low = await submit({ priority: 1 });
  high = await submit({ priority: 7, input: { output: { frames: 2 } } });
  never = await submit({ requirements: { labels: { region: 'mars' } } });
  const depth = page.locator('#jobs-summary table[aria-label="Queue depth by priority"] tbody tr');
  await poll(() => depth.allTextContents()).toEqual(['71', '11', '01']);
  expect(await page.locator('[data-count="queued"]').textContent()).toBe('3 queued');
  // the waiting list is in the queue's order: priority, then oldest first
  expect(
    await page
      .locator('#jobs-waiting tr[data-job]')
      .evaluateAll((rs) => rs.map((r) => r.getAttribute('data-job'))),
  ).toEqual([high.id, low.id, never.id]);

  worker.pull(1);
  const lease = await worker.lease();
  expect(lease.id).toBe(high.id);
  worker.started(lease);
  worker.progress(lease, 1, 2, 'frame 1');
  await poll(() =>
    row('jobs-running', high.id).locator('td[data-label="State"]').textContent(),
  ).toBe('running 1/2 frame 1');
  expect(await row('jobs-running', high.id).locator('td[data-label="Node"]').textContent()).toBe(
    worker.shortId,
  );
  await screenshot(page, 'dashboard-jobs-list-desktop', { fullPage: true });
  await fitsAPhone('list');

  // its page follows it live: the timeline, then how it ended, its file and output
  await row('jobs-running', high.id).getByRole('link').click();
  await page.waitForURL((u) => u.pathname === `/jobs/${high.id}`);
  const job = page.locator('#job');
  await poll(() => job.locator('.summary').textContent()).toBe('running 1/2 frame 1');
  worker.progress(lease, 2, 2, 'frame 2');
  await poll(() =>
    job.locator('.timeline li[data-event="progress"]').count(),
  ).toBeGreaterThanOrEqual(1);
  await poll(() => job.locator('.summary').textContent()).toBe('running 2/2 frame 2');
  await worker.upload(lease, 'frame.txt', 'text/plain', 'frame two');
  worker.succeed(lease, { frames: 2 });
  await poll(() => job.locator('.summary').textContent()).toBe('succeeded');
  const events = await job
    .locator('.timeline li')
    .evaluateAll((ls) => ls.map((l) => l.getAttribute('data-event')));
  // newest first
  expect(events[0]).toBe('succeeded');
  expect(events).toContain('started');
  expect(events).toContain('leased');
  expect(events.at(-1)).toBe('submitted');
  const file = job.locator('li[data-file="frame.txt"] a');
  expect(await file.getAttribute('href')).toBe(`/api/jobs/${high.id}/files/frame.txt`);
  expect(await job.locator('[data-output]').textContent()).toBe('{\n  "frames": 2\n}');
  // a finished job offers no Cancel, and no Retry when it succeeded
  expect(await page.locator('[data-action]').count()).toBe(0);
  await screenshot(page, 'dashboard-jobs-job-desktop', { fullPage: true });
  await fitsAPhone('job');
});

it('retries a dead job and cancels a queued one from the list', async () => {
  const doomed = await submit({ maxAttempts: 1, priority: 9 });
  worker.pull(1);
  const lease = await worker.lease();
  expect(lease.id).toBe(doomed.id);
  worker.started(lease);
  worker.fail(lease, 'the GPU fell off the bus');
  await open('/jobs');
  await page.locator('#jobs-state').selectOption('dead');
  const dead = row('jobs-history', doomed.id);
  await poll(() => dead.getAttribute('data-state')).toBe('dead');
  await dead.getByRole('button', { name: `Retry job ${doomed.id}` }).click();
  // the retried job is leased again (it has the highest priority)
  await poll(async () => (await call('GET', `/api/jobs/${doomed.id}`)).state).toBe('queued');
  worker.pull(1);
  const again = await worker.lease();
  expect(again.id).toBe(doomed.id);
  worker.started(again);
  worker.succeed(again, null);

  // Cancel on a queued job: no confirm for one that never ran
  await page.locator('#jobs-state').selectOption('');
  const waiting = row('jobs-waiting', never.id);
  await waiting.getByRole('button', { name: `Cancel job ${never.id}` }).click();
  await poll(async () => (await call('GET', `/api/jobs/${never.id}`)).state).toBe('cancelled');
  await poll(() => waiting.count()).toBe(0);
  await page.locator('#jobs-state').selectOption('cancelled');
  await poll(() => row('jobs-history', never.id).getAttribute('data-state')).toBe('cancelled');

  // search by ID opens the job's page
  await page.getByLabel('ID').fill(low.id);
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL((u) => u.pathname === `/jobs/${low.id}`);
  await poll(() => page.locator('#job .summary').textContent()).toMatch(
    /queued|leased|running|succeeded/,
  );
});

it('shows the worker with its connectors and pool, and puts the node in the public pool', async () => {
  await open('/workers');
  const w = page.locator(`#workers tr[data-worker="${worker.shortId}"]`);
  await poll(() => w.locator('td[data-label="Connectors"]').textContent()).toBe(
    'simulationcomfyui: models sdxl.safetensors',
  );
  expect(await w.locator('td[data-label="Labels"]').textContent()).toBe('region=home');
  expect(await w.locator('td[data-label="Runs"]').textContent()).toBe('its owner’s jobs only');

  const grants = page.locator(`[data-grants="${worker.shortId}"]`);
  await grants.getByLabel('Public pool: run anyone’s jobs').check();
  await poll(
    async () =>
      (await call<{ public: boolean }>('GET', `/api/nodes/${worker.shortId}/job-grants`)).public,
  ).toBe(true);
  await poll(() => w.locator('td[data-label="Runs"]').textContent()).toBe(
    'everyone’s jobs (public pool)',
  );
  await grants.getByLabel('Public pool: run anyone’s jobs').uncheck();
  await poll(
    async () =>
      (await call<{ public: boolean }>('GET', `/api/nodes/${worker.shortId}/job-grants`)).public,
  ).toBe(false);
  await screenshot(page, 'dashboard-jobs-workers-desktop', { fullPage: true });
  await fitsAPhone('workers');
});
