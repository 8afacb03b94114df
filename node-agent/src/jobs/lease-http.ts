/**
 * The server's job endpoints for an agent, authorized by one attempt's
 * lease token (a bearer token valid for that attempt only): the input of a
 * lease too big for its message, the output too big for `job-result`, and
 * the files a job made. The token goes only to the server the agent
 * connects to (its URL, not the server's public URL, which may name the
 * same server otherwise): a lease's `inputUrl` is never followed.
 */
import { MAX_JOB_INPUT_BYTES } from '@peerway/protocol';
import { JobError } from './errors';
import type { JobFile } from './connectors/types';

/** How long one of these requests may take, in ms. */
export const LEASE_HTTP_TIMEOUT_MS = 60_000;

export interface LeaseHttp {
  /** The input of a lease sent without it (inline: never asked). */
  input(id: string, token: string): Promise<unknown>;
  output(id: string, token: string, output: unknown): Promise<void>;
  file(id: string, token: string, file: JobFile): Promise<void>;
}

/** The endpoints on `serverUrl` (`/api/agent/jobs/:id/...`) over fetch. */
export class ServerLeaseHttp implements LeaseHttp {
  private readonly origin: string;

  constructor(
    serverUrl: string,
    private readonly timeoutMs = LEASE_HTTP_TIMEOUT_MS,
  ) {
    this.origin = new URL(serverUrl).origin;
  }

  private url(id: string, rest: string): string {
    return `${this.origin}/api/agent/jobs/${encodeURIComponent(id)}/${rest}`;
  }

  async input(id: string, token: string): Promise<unknown> {
    // always this node's own server, whatever the lease's inputUrl names: the
    // server may know itself by another name (its public URL), and the token
    // goes nowhere else
    const url = this.url(id, 'input');
    const res = await this.request(url, { method: 'GET', headers: auth(token) }, 'fetch its input');
    const text = await res.text();
    if (Buffer.byteLength(text) > MAX_JOB_INPUT_BYTES)
      throw new JobError(`its input is over ${MAX_JOB_INPUT_BYTES} bytes`, false);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new JobError('the server sent an input that is not JSON', true);
    }
  }

  async output(id: string, token: string, output: unknown): Promise<void> {
    await this.request(
      this.url(id, 'output'),
      {
        method: 'PUT',
        headers: { ...auth(token), 'content-type': 'application/json' },
        body: JSON.stringify(output),
      },
      'upload its output',
    );
  }

  async file(id: string, token: string, file: JobFile): Promise<void> {
    await this.request(
      this.url(id, `files/${encodeURIComponent(file.name)}`),
      {
        method: 'PUT',
        headers: { ...auth(token), 'content-type': file.contentType },
        body: new Blob([new Uint8Array(file.data)]),
      },
      `upload its file ${file.name}`,
    );
  }

  private async request(url: string, init: RequestInit, what: string): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new JobError(`could not ${what}: ${(err as Error).message}`, true, { cause: err });
    }
    if (!res.ok) {
      const body = (await res.text().catch(() => '')).slice(0, 300);
      // 4xx other than a lapsed lease's are the request's fault: the same again fails again
      const retryable = res.status >= 500 || res.status === 401 || res.status === 409;
      throw new JobError(
        `could not ${what}: the server answered ${res.status}${body ? ` (${body})` : ''}`,
        retryable,
      );
    }
    return res;
  }
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
