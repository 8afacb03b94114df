import { describe, expect, it } from 'vitest';
import { InboundBody } from './inbound';

describe('InboundBody', () => {
  const body = () =>
    new InboundBody(
      1024,
      () => {},
      () => {},
    );

  it('copies bytes the transport may reuse', async () => {
    const b = body();
    const frame = new Uint8Array([1, 2, 3]);
    expect(b.push(frame)).toBe(true);
    frame.fill(9); // the transport reuses its buffer
    b.end();
    const { value } = await b.readable.getReader().read();
    expect([...value!]).toEqual([1, 2, 3]);
  });

  it('keeps bytes that are its own without a copy', async () => {
    const b = body();
    const frame = new Uint8Array([1, 2, 3]);
    expect(b.push(frame, true)).toBe(true);
    b.end();
    const { value } = await b.readable.getReader().read();
    expect(value).toBe(frame);
  });

  it('refuses bytes beyond its window, and grows it when told', () => {
    const b = body();
    expect(b.push(new Uint8Array(1024), true)).toBe(true);
    expect(b.push(new Uint8Array(1), true)).toBe(false);
    const c = body();
    c.grow(1024);
    expect(c.push(new Uint8Array(2048), true)).toBe(true);
    expect(c.push(new Uint8Array(1), true)).toBe(false);
  });
});
