/**
 * Live data for a view: Server-Sent Events from /api/events (the server
 * pushes when the caller's view changed), and polling the same JSON when
 * EventSource is not available or keeps failing (a proxy that buffers, say).
 */
import { api, type AdminView, type NodeView, type ServiceView } from './api';

/** How often the fallback polls. */
export const POLL_MS = 3000;

export interface Snapshot {
  nodes: NodeView[];
  services: ServiceView[];
  admin?: AdminView;
}

export function live(admin: boolean, onSnapshot: (s: Snapshot) => void): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let es: EventSource | null = null;
  const poll = async () => {
    if (stopped) return;
    try {
      const [n, s, a] = await Promise.all([
        api<{ nodes: NodeView[] }>('GET', '/api/nodes'),
        api<{ services: ServiceView[] }>('GET', '/api/services'),
        admin ? api<AdminView>('GET', '/api/admin/signaling') : Promise.resolve(undefined),
      ]);
      onSnapshot({ nodes: n.nodes, services: s.services, ...(a ? { admin: a } : {}) });
    } catch {
      // keep trying; the view shows the last data it had
    }
    timer = setTimeout(() => void poll(), POLL_MS);
  };
  if ('EventSource' in window) {
    let failures = 0;
    es = new EventSource(`/api/events${admin ? '?admin=1' : ''}`);
    es.addEventListener('snapshot', (ev) => {
      failures = 0;
      onSnapshot(JSON.parse((ev as MessageEvent<string>).data) as Snapshot);
    });
    es.onerror = () => {
      // EventSource reconnects by itself; after a few failures in a row, poll instead.
      if (++failures >= 3 && es) {
        es.close();
        es = null;
        void poll();
      }
    };
  } else void poll();
  return () => {
    stopped = true;
    es?.close();
    if (timer) clearTimeout(timer);
  };
}

/**
 * Runs `load` now and again `ms` after each run ends (never two at once),
 * until the returned stop is called: live data the event stream does not
 * carry (deployments).
 */
export function every(ms: number, load: () => Promise<void>): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const run = async () => {
    await load().catch(() => {});
    if (!stopped) timer = setTimeout(() => void run(), ms);
  };
  void run();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
