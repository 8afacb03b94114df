/** A small bar chart of per-minute counts (inline SVG, with a text summary for screen readers). */
import { h } from './dom';

const NS = 'http://www.w3.org/2000/svg';

export function barChart(
  title: string,
  points: { at: number; count: number }[],
  color = '#3b6fe0',
): HTMLElement {
  const w = 300;
  const hgt = 60;
  const max = Math.max(1, ...points.map((p) => p.count));
  const total = points.reduce((a, p) => a + p.count, 0);
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('aria-hidden', 'true');
  const bw = w / Math.max(1, points.length);
  points.forEach((p, i) => {
    if (p.count === 0) return;
    const r = document.createElementNS(NS, 'rect');
    const bh = Math.max(1, (p.count / max) * (hgt - 2));
    r.setAttribute('x', String(i * bw + 0.5));
    r.setAttribute('y', String(hgt - bh));
    r.setAttribute('width', String(Math.max(1, bw - 1)));
    r.setAttribute('height', String(bh));
    r.setAttribute('fill', color);
    const t = document.createElementNS(NS, 'title');
    t.textContent = `${new Date(p.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}: ${p.count}`;
    r.append(t);
    svg.append(r);
  });
  return h(
    'figure',
    { class: 'chart' },
    h(
      'figcaption',
      {},
      title,
      h(
        'span',
        { class: 'muted' },
        total ? ` · ${total} in the last hour, peak ${max}/min` : ' · none in the last hour',
      ),
    ),
    svg as unknown as HTMLElement,
  );
}
