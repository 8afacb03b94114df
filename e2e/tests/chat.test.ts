/** A WebSocket chat (the `ws` library upstream) exchanges messages both ways between two browsers. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Stack } from '../support/stack';
import { startChatApp } from '../fixtures/chat';

const stack = new Stack();
beforeAll(async () => {
  const app = await startChatApp();
  stack.onStop(() => app.close());
  await stack.start();
  const owner = await stack.user();
  await stack.agent(owner.token, [`chat=127.0.0.1:${app.port},public`]);
});
afterAll(() => stack.stop());

it('two browsers chat both ways, text and binary', async () => {
  const a = await (await stack.context()).newPage();
  const b = await (await stack.context()).newPage();
  await a.goto(stack.serviceUrl('chat', '/'));
  await b.goto(stack.serviceUrl('chat', '/'));
  const appA = Stack.app(a);
  const appB = Stack.app(b);
  await expect.poll(() => appA.locator('#state').textContent(), { timeout: 20_000 }).toBe('open');
  await expect.poll(() => appB.locator('#state').textContent(), { timeout: 20_000 }).toBe('open');
  // binary echo to each sender
  await expect.poll(() => appA.locator('#log li').allTextContents()).toContain('binary:1,2,3,250');
  await appA.locator('#text').fill('hello from A');
  await appA.locator('#send').click();
  await expect
    .poll(() => appB.locator('#log li').allTextContents(), { timeout: 10_000 })
    .toContain('msg:hello from A');
  await appB.locator('#text').fill('hi back from B');
  await appB.locator('#send').click();
  await expect
    .poll(() => appA.locator('#log li').allTextContents(), { timeout: 10_000 })
    .toContain('msg:hi back from B');
});
