/**
 * The dashboard's cluster pages in real Chromium against a real server: an
 * owner sees each node's resources on its card (cores, memory, disk, GPUs,
 * OS/arch, runtime or "no container runtime", deployments on/off, labels,
 * what deployments hold of what it offers) and lets another user deploy to
 * it; on the Deployments page a spec with errors shows each error with its
 * path beside the text, Plan shows where replicas would go and why the rest
 * fit nowhere (per node), Deploy lists the replicas with their node and
 * their states as the node reports them, and Delete (after its confirm)
 * stops them. At 375 px no page is wider than the screen.
 *
 * The nodes are fake agents (fixtures/dashboard-cluster.ts) that speak the
 * cluster's part of the agent protocol over the real agent WebSocket — they
 * report resources and replica states but run no containers — since this
 * test is about what the owner sees in the dashboard.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { Stack, screenshot, type StackUser } from '../support/stack';
import { GiB, ResourceNode, resources } from '../fixtures/dashboard-cluster';

const stack = new Stack();
let owner: StackUser;
let friend: StackUser;
let big: ResourceNode;
let small: ResourceNode;
let page: Page;
const name = `blog-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  await stack.start();
  await stack.user(true); // the first account is the admin
  owner = await stack.user();
  friend = await stack.user();
  big = await ResourceNode.start(
    stack.url,
    owner.token,
    'big',
    resources({
      cpuCores: 8,
      memoryBytes: 16 * GiB,
      gpus: [{ model: 'NVIDIA GeForce RTX 3060', memoryBytes: 12 * GiB }],
      offer: { cpuCores: 2, memoryBytes: 4 * GiB },
      labels: { region: 'home' },
    }),
  );
  small = await ResourceNode.start(
    stack.url,
    owner.token,
    'small',
    resources({ cpuCores: 1, memoryBytes: 1 * GiB, runtime: null, deployments: false }),
  );
  stack.onStop(() => big.close());
  stack.onStop(() => small.close());

  page = await (await stack.context()).newPage();
  await page.goto(`${stack.url}/signin?next=/`);
  await page.getByLabel('Email').fill(owner.email);
  await page.getByLabel('Password').fill(owner.password);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
});
afterAll(() => stack.stop());

const card = (n: ResourceNode) => page.locator(`[data-node="${n.shortId}"]`);
const fact = (n: ResourceNode, f: string) => card(n).locator(`[data-fact="${f}"]`).textContent();

/** At 375 px wide the page fits the screen; then back to desktop width. */
async function fitsAPhone(shot: string): Promise<void> {
  const size = page.viewportSize();
  await page.setViewportSize({ width: 375, height: 740 });
  const { scroll, inner } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
  }));
  await screenshot(page, `dashboard-cluster-${shot}-phone`, { fullPage: true });
  expect(scroll, `${shot} is wider than a 375 px screen`).toBeLessThanOrEqual(inner);
  if (size) await page.setViewportSize(size);
}

it("shows each node's resources, deployments on or off, labels and allocation", async () => {
  await expect.poll(() => fact(big, 'cpu'), { timeout: 15_000 }).toBe('8 cores');
  expect(await fact(big, 'memory')).toBe('16.00 GiB memory');
  expect(await fact(big, 'disk')).toBe('120.00 GiB disk free');
  expect(await fact(big, 'gpu')).toBe('1 GPU: NVIDIA GeForce RTX 3060 (12.00 GiB)');
  expect(await fact(big, 'platform')).toBe('linux/x64');
  expect(await fact(big, 'runtime')).toBe('podman 4.3.1');
  expect(await fact(big, 'deployments')).toMatch(
    /^Takes deployments \(its owner offers 2 cores and 4\.00 GiB\)/,
  );
  expect(await card(big).locator('.label').allTextContents()).toEqual(['region=home']);
  expect(await card(big).locator('[data-bar="cpu"] .bar-text').textContent()).toBe('0 of 2 cores');
  expect(await card(big).locator('[data-bar="memory"] .bar-text').textContent()).toBe(
    '0 B of 4.00 GiB',
  );

  await expect.poll(() => fact(small, 'runtime')).toBe('no container runtime');
  expect(await fact(small, 'cpu')).toBe('1 core');
  expect(await fact(small, 'deployments')).toMatch(/^Deployments off/);
  expect(await card(small).locator('.allocated').count()).toBe(0);
  await screenshot(page, 'dashboard-cluster-nodes-desktop', { fullPage: true });
  await fitsAPhone('nodes');
});

it('lets the owner give and take back the right to deploy to a node', async () => {
  const grants = card(big).locator('[data-grant="deployers"]');
  expect(await grants.textContent()).toContain('Only you deploy to it.');
  await page.locator(`#deployers-${big.shortId}`).fill(friend.email);
  await grants.getByRole('button', { name: 'Allow' }).click();
  await expect
    .poll(() => grants.locator('li').allTextContents())
    .toEqual([`${friend.email} Remove`]);
  const api = await fetch(`${stack.url}/api/nodes`, {
    headers: { authorization: `Bearer ${owner.token}` },
  }).then((r) => r.json() as Promise<{ nodes: { shortId: string; deployers: string[] }[] }>);
  expect(api.nodes.find((n) => n.shortId === big.shortId)?.deployers).toEqual([friend.email]);

  await grants.getByRole('button', { name: `Stop letting ${friend.email} deploy to big` }).click();
  await expect.poll(() => grants.textContent()).toContain('Only you deploy to it.');
});

it('lists spec errors with their paths beside the text', async () => {
  await page
    .getByRole('navigation', { name: 'Main' })
    .getByRole('link', { name: 'Deployments' })
    .click();
  await page.waitForURL((u) => u.pathname === '/deployments');
  await expect
    .poll(() => page.locator('#deployments').textContent())
    .toContain('No deployments yet');
  const spec = page.getByLabel('Spec (YAML or JSON)');
  await spec.fill(
    ['name: Not_A_Name', 'image: web:1', 'port: 99999', 'resources: { memory: lots }'].join('\n'),
  );
  await page.getByRole('button', { name: 'Plan' }).click();
  const errors = page.locator('#spec-errors');
  await expect.poll(() => errors.locator('li').count()).toBeGreaterThanOrEqual(3);
  const paths = await errors
    .locator('li')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-path')));
  expect(paths).toEqual(expect.arrayContaining(['name', 'port', 'resources.memory']));
  expect(await errors.locator('li[data-path="port"]').textContent()).toMatch(/^port .*line 3$/);
  expect(await spec.getAttribute('aria-invalid')).not.toBeNull();
  // Its line button selects that line of the text.
  await errors.locator('li[data-path="port"]').getByRole('button').click();
  expect(
    await spec.evaluate((t: HTMLTextAreaElement) =>
      t.value.slice(t.selectionStart, t.selectionEnd),
    ),
  ).toBe('port: 99999');
  // Nothing was made.
  expect(await page.locator('#deployments').textContent()).toContain('No deployments yet');
  await screenshot(page, 'dashboard-cluster-spec-errors-desktop', { fullPage: true });
  await fitsAPhone('spec-errors');
});

it("plans a spec: where replicas would go, and each node's reason when the rest fit nowhere", async () => {
  const spec = page.getByLabel('Spec (YAML or JSON)');
  await spec.fill(
    [
      `name: ${name}`,
      'image: 127.0.0.1:5000/peerway-test/web:1',
      'port: 8080',
      'replicas: 2',
      'resources: { cpu: 1.5, memory: 1GiB }',
    ].join('\n'),
  );
  await page.getByRole('button', { name: 'Plan' }).click();
  const plan = page.locator(`#plan [data-plan-for="${name}"]`);
  await plan.waitFor();
  expect(await page.locator('#spec-errors').textContent()).toBe('');
  expect(await spec.getAttribute('aria-invalid')).toBeNull();
  expect(await plan.locator('[data-plan="place"]').allTextContents()).toEqual([
    `Place a replica on node ${big.shortId} (1.5 CPU, 1.00 GiB)`,
  ]);
  // The second replica: big holds the first (and has 0.5 of its 2 offered cores left);
  // small takes no deployments. Each node's reason in words.
  expect(await plan.locator('.unplaced > p').textContent()).toBe('1 replica fits on no node:');
  expect(await plan.locator(`[data-reason][data-node="${big.shortId}"]`).textContent()).toMatch(
    new RegExp(`^node ${big.shortId}: \\w`),
  );
  expect(await plan.locator(`[data-node="${small.shortId}"]`).textContent()).toMatch(
    new RegExp(`^node ${small.shortId}: deployments not enabled`),
  );
  expect(await plan.locator(`[data-node="${small.shortId}"]`).getAttribute('data-reason')).toBe(
    'not_enabled',
  );
  expect(await plan.textContent()).toContain('Nothing was deployed');
  await fitsAPhone('plan');
  // A dry run makes nothing.
  const list = await fetch(`${stack.url}/api/deployments`, {
    headers: { authorization: `Bearer ${owner.token}` },
  }).then((r) => r.json() as Promise<{ deployments: unknown[] }>);
  expect(list.deployments).toEqual([]);
  expect(big.allocations).toEqual([]);
});

it('deploys, lists the replica on its node, and shows its states as the node reports them', async () => {
  const spec = page.getByLabel('Spec (YAML or JSON)');
  await spec.fill((await spec.inputValue()).replace('replicas: 2', 'replicas: 1'));
  await page.getByRole('button', { name: 'Deploy' }).click();
  await page.waitForURL((u) => u.pathname === `/deployments/${name}`);
  expect(await page.locator('h1').textContent()).toBe(name);

  await big.setWhere((a) => a.length === 1 && a[0]!.deployment === name);
  const id = big.allocations[0]!.id;
  const row = page.locator(`tr[data-replica="${id}"]`);
  await row.waitFor({ timeout: 10_000 });
  expect(await row.locator('[data-label="Node"]').textContent()).toBe(big.shortId);
  expect(await row.getAttribute('data-state')).toBe('pending');

  big.status(id, 'pulling', 'pulling 127.0.0.1:5000/peerway-test/web:1');
  await expect.poll(() => row.getAttribute('data-state'), { timeout: 10_000 }).toBe('pulling');
  expect(await row.locator('[data-label="Reason"]').textContent()).toBe(
    'pulling 127.0.0.1:5000/peerway-test/web:1',
  );
  big.status(id, 'running');
  await expect.poll(() => row.getAttribute('data-state'), { timeout: 10_000 }).toBe('running');
  await expect
    .poll(() => page.locator('#deployment [data-replicas]').getAttribute('data-replicas'))
    .toBe('1/1');
  const events = await page.locator('.events li').allTextContents();
  expect(events.some((e) => e.includes(`placed on node ${big.shortId}`))).toBe(true);
  expect(events.some((e) => e.includes('is running'))).toBe(true);
  // Newest first.
  expect(events[0]).toContain('is running');
  // "Change it" starts from the spec as YAML, which plans as no change.
  const again = page.getByLabel('Spec (YAML or JSON)');
  expect(await again.inputValue()).toContain('resources: { cpu: 1.5, memory: 1GiB, gpu: 0 }');
  await page.getByRole('button', { name: 'Plan' }).click();
  const same = page.locator(`#plan [data-plan-for="${name}"]`);
  await same.waitFor();
  expect(await same.locator('[data-plan="keep"]').allTextContents()).toEqual([
    `Keep replica ${id} on node ${big.shortId}`,
  ]);
  expect(await same.textContent()).toContain('No change: 1 of 1 replicas placed.');
  await screenshot(page, 'dashboard-cluster-deployment-desktop', { fullPage: true });
  await fitsAPhone('deployment');

  // The list: name to its page, URL, 1/1 running.
  await page.getByRole('link', { name: '← Deployments' }).click();
  const item = page.locator(`tr[data-deployment="${name}"]`);
  await item.waitFor();
  expect(await item.locator('[data-replicas]').getAttribute('data-replicas')).toBe('1/1');
  expect(await item.locator('.state').textContent()).toBe('running');
  expect(await item.locator('.url').getAttribute('href')).toBe(stack.serviceUrl(name));
  await fitsAPhone('deployments');

  // The node card counts what the replica holds.
  await page
    .getByRole('navigation', { name: 'Main' })
    .getByRole('link', { name: 'My nodes' })
    .click();
  await expect
    .poll(() => card(big).locator('[data-bar="cpu"] .bar-text').textContent(), { timeout: 10_000 })
    .toBe('1.5 of 2 cores');
  expect(await card(big).locator('[data-bar="memory"] .bar-text').textContent()).toBe(
    '1.00 GiB of 4.00 GiB',
  );
});

it('deletes a deployment only after its confirm, and its node stops the replica', async () => {
  await page
    .getByRole('navigation', { name: 'Main' })
    .getByRole('link', { name: 'Deployments' })
    .click();
  await page.getByRole('link', { name, exact: true }).click();
  await page.waitForURL((u) => u.pathname === `/deployments/${name}`);
  // the address works by itself too: a reload (or a bookmark) gets the same page
  await page.reload();
  const del = page.getByRole('button', { name: 'Delete' });
  await del.waitFor({ timeout: 10_000 });

  let asked = '';
  page.once('dialog', (d) => {
    asked = d.message();
    void d.dismiss();
  });
  await del.click();
  expect(asked).toContain(`Delete the deployment ${name}?`);
  expect(page.url()).toBe(`${stack.url}/deployments/${name}`);
  expect(big.allocations).toHaveLength(1);

  page.once('dialog', (d) => void d.accept());
  await del.click();
  await page.waitForURL((u) => u.pathname === '/deployments');
  await expect
    .poll(() => page.locator('#deployments').textContent())
    .toContain('No deployments yet');
  await big.setWhere((a) => a.length === 0);
});
