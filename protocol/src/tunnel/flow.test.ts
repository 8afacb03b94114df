import { describe, expect, it } from 'vitest';
import { createMemoryChannelPair } from './channel';
import { ReceiveBudget, SendGate } from './flow';
import { TunnelError } from './errors';
import { INITIAL_WINDOW_BYTES } from './wire';

describe('ReceiveBudget', () => {
  it('grants each stream its extra window until the budget is spent, and takes back what ends', () => {
    const window = INITIAL_WINDOW_BYTES + 100;
    const b = new ReceiveBudget(window, 250);
    expect([b.take(), b.take(), b.take(), b.take()]).toEqual([100, 100, 50, 0]);
    b.release(100);
    expect(b.take()).toBe(100);
  });

  it('grants nothing when the window is the initial one', () => {
    expect(new ReceiveBudget(INITIAL_WINDOW_BYTES, 1e9).take()).toBe(0);
  });
});

describe('SendGate', () => {
  it('holds writers above the mark until the buffer drains to a quarter of it', async () => {
    const [a] = createMemoryChannelPair();
    const gate = new SendGate(a, 1000);
    a.send(new Uint8Array(1500));
    expect(gate.full).toBe(true);
    let open = false;
    const w = gate.writable().then(() => (open = true));
    await Promise.resolve();
    expect(open).toBe(false);
    await w; // the memory channel drains on its next tick and fires bufferedamountlow
    expect(a.bufferedAmount).toBe(0);
    expect(gate.full).toBe(false);
  });

  it('fails every writer once the tunnel closed', async () => {
    const [a] = createMemoryChannelPair({ bytesPerTick: 1 });
    const gate = new SendGate(a, 10);
    a.send(new Uint8Array(1000));
    const w = gate.writable();
    gate.close();
    await expect(w).rejects.toBeInstanceOf(TunnelError);
  });
});
