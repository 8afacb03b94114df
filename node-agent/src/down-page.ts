/**
 * What a visitor sees when the node is up but its service is not: a small
 * page of its own (HTML for a browser, a line of text for anything else).
 * It names the service and nothing of the node's inside: no upstream
 * address, port or error.
 */
import type { HeaderPairs } from '@peerway/protocol';

const escape = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/** Whether the request asked for HTML (a navigation, an iframe, a link). */
export function wantsHtml(headers: HeaderPairs): boolean {
  const accept = headers.find(([k]) => k.toLowerCase() === 'accept')?.[1] ?? '';
  return /\btext\/html\b/i.test(accept);
}

export interface DownAnswer {
  status: number;
  statusText: string;
  headers: HeaderPairs;
  body: string;
}

/**
 * The answer for a service whose upstream does not answer (502) or took
 * too long to (504), as HTML or as text after the request's Accept header.
 */
export function downAnswer(
  service: string,
  kind: 'down' | 'slow',
  requestHeaders: HeaderPairs,
  /** For 'slow': how long the node waited, in ms. */
  waitedMs = 0,
): DownAnswer {
  const status = kind === 'down' ? 502 : 504;
  const statusText = kind === 'down' ? 'Bad Gateway' : 'Gateway Timeout';
  const what =
    kind === 'down'
      ? `${service} is down on its node (the upstream service is not answering)`
      : `${service} did not answer within ${waitedMs / 1000} s on its node`;
  const headers: HeaderPairs = [
    ['cache-control', 'no-store'],
    ['x-content-type-options', 'nosniff'],
  ];
  if (!wantsHtml(requestHeaders)) {
    return {
      status,
      statusText,
      headers: [['content-type', 'text/plain; charset=utf-8'], ...headers],
      body: `Peerway: ${what}. Try again later.\n`,
    };
  }
  const name = escape(service);
  const title = kind === 'down' ? `${name} is down` : `${name} is slow to answer`;
  const body = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
  :root { color-scheme: light dark; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center;
    font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
    background: #f5f6f8; color: #1d2330; }
  main { max-width: 28rem; margin: 1.5rem; padding: 2rem; border-radius: 12px;
    background: #fff; box-shadow: 0 2px 12px rgb(0 0 0 / 8%); }
  h1 { margin: 0 0 .5rem; font-size: 1.35rem; }
  p { margin: .5rem 0; color: #4a5365; }
  a { display: inline-block; margin-top: 1rem; padding: .5rem 1rem; border-radius: 8px;
    background: #2f5bea; color: #fff; text-decoration: none; }
  .code { font-size: .8rem; color: #8a93a5; }
  @media (prefers-color-scheme: dark) {
    body { background: #14171d; color: #e6e9ef; }
    main { background: #1d2129; box-shadow: none; }
    p { color: #aab2c0; }
  }
</style>
</head>
<body>
<main>
  <h1>${title}</h1>
  <p>The node that serves <strong>${name}</strong> is online, but the service itself
  ${kind === 'down' ? 'is not running there right now' : 'did not answer in time'}.</p>
  <p>Please try again later. Its owner can see why on the node.</p>
  <a href="">Try again</a>
  <p class="code">${status} · Peerway</p>
</main>
</body>
</html>
`;
  return {
    status,
    statusText,
    headers: [['content-type', 'text/html; charset=utf-8'], ...headers],
    body,
  };
}
