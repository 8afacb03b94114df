/** The small status card the shell shows while it connects, and when it cannot. */
export type ShellState = 'connecting' | 'offline' | 'denied' | 'unknown' | 'error' | 'ready';

const el = () => document.getElementById('status')!;

export function showStatus(
  state: ShellState,
  title: string,
  detail: string,
  action?: { label: string; run: () => void },
): void {
  const s = el();
  s.dataset.state = state;
  if (state === 'ready') {
    s.style.display = 'none';
    return;
  }
  s.style.display = 'flex';
  const card = document.createElement('div');
  card.className = 'card';
  const h = document.createElement('h1');
  if (state === 'connecting') {
    const sp = document.createElement('span');
    sp.className = 'spinner';
    sp.setAttribute('aria-hidden', 'true');
    h.append(sp);
  }
  h.append(title);
  const p = document.createElement('p');
  p.textContent = detail;
  card.append(h, p);
  if (action) {
    const b = document.createElement('button');
    b.textContent = action.label;
    b.onclick = action.run;
    card.append(b);
  }
  s.replaceChildren(card);
}

/** What the status card shows now. */
export function statusState(): ShellState {
  return el().dataset.state as ShellState;
}

/** A small corner badge over the app (e.g. "Reconnecting…"); empty hides it. */
export function badge(text: string): void {
  const b = document.getElementById('badge')!;
  b.textContent = text;
  b.style.display = text ? 'block' : 'none';
}
