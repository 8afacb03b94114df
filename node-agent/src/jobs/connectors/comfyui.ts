/**
 * `comfyui`: queues the job's workflow (ComfyUI's API format) with
 * `POST /prompt {prompt, client_id}`, follows it on `/ws?clientId=`
 * (`progress` → job progress; `executing` with `node: null`, or
 * `execution_success`, → done; `execution_error` / `execution_interrupted`
 * → failed), then reads `GET /history/:id` and fetches each output image
 * with `GET /view?filename=&subfolder=&type=`; the images become the job's
 * files. The socket is opened before the prompt is queued, so no message
 * of a fast prompt is missed. An aborted job is taken off ComfyUI's queue
 * (`POST /queue {delete}`) and interrupted (`POST /interrupt`).
 *
 * What it has (the `worker` message's models) comes from `GET /models`
 * and `GET /models/:folder` (the model files by folder), or, from a
 * ComfyUI without that endpoint, the checkpoint list of
 * `GET /object_info/CheckpointLoaderSimple`.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { MAX_CONNECTOR_MODELS, type ComfyUiInput, type WorkerConnector } from '@peerway/protocol';
import { JobError, abortReason } from '../errors';
import {
  uploadNames,
  type Connector,
  type JobContext,
  type JobFile,
  type JobOutcome,
} from './types';

/** The model folders reported as models (ComfyUI's folder names). */
export const COMFY_MODEL_FOLDERS = [
  'checkpoints',
  'diffusion_models',
  'unet',
  'loras',
  'vae',
  'clip',
  'text_encoders',
  'controlnet',
  'upscale_models',
  'embeddings',
];
/** Largest image fetched from /view, in bytes. */
export const MAX_COMFY_IMAGE_BYTES = 64 * 1024 * 1024;
/** Most images one job returns. */
export const MAX_COMFY_IMAGES = 64;
/** How long one HTTP request to ComfyUI may take, in ms. */
export const COMFY_HTTP_TIMEOUT_MS = 30_000;

export interface ComfyUiConnectorOptions {
  /** ComfyUI's origin, e.g. http://127.0.0.1:8188. */
  url: string;
  httpTimeoutMs?: number;
}

interface ComfyMessage {
  type: string;
  data: Record<string, unknown>;
}

interface ImageRef {
  filename: string;
  subfolder: string;
  type: string;
}

export class ComfyUiConnector implements Connector {
  readonly type = 'comfyui' as const;
  private readonly origin: string;

  constructor(private readonly o: ComfyUiConnectorOptions) {
    this.origin = new URL(o.url).origin;
  }

  private async get(path: string, signal?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(this.o.httpTimeoutMs ?? COMFY_HTTP_TIMEOUT_MS);
    try {
      return await fetch(`${this.origin}${path}`, {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (signal?.aborted) throw new JobError(abortReason(signal), true);
      throw new JobError(
        `ComfyUI at ${this.origin} did not answer ${path}: ${(err as Error).message}`,
        true,
        {
          cause: err,
        },
      );
    }
  }

  private async post(path: string, body: unknown): Promise<Response> {
    return fetch(`${this.origin}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.o.httpTimeoutMs ?? COMFY_HTTP_TIMEOUT_MS),
    });
  }

  async describe(): Promise<WorkerConnector> {
    const models = new Set<string>();
    const folders = await this.get('/models');
    if (folders.ok) {
      const list = (await folders.json()) as unknown;
      const have = Array.isArray(list)
        ? list.filter((x): x is string => typeof x === 'string')
        : [];
      for (const folder of COMFY_MODEL_FOLDERS.filter((f) => have.includes(f))) {
        const r = await this.get(`/models/${encodeURIComponent(folder)}`);
        if (!r.ok) continue;
        const names = (await r.json()) as unknown;
        if (Array.isArray(names)) for (const n of names) if (typeof n === 'string') models.add(n);
      }
    } else {
      const r = await this.get('/object_info/CheckpointLoaderSimple');
      if (!r.ok) throw new JobError(`ComfyUI answered ${r.status} to /object_info`, true);
      const info = (await r.json()) as {
        CheckpointLoaderSimple?: { input?: { required?: { ckpt_name?: [unknown, ...unknown[]] } } };
      };
      const names = info.CheckpointLoaderSimple?.input?.required?.ckpt_name?.[0];
      if (Array.isArray(names)) for (const n of names) if (typeof n === 'string') models.add(n);
    }
    return {
      type: 'comfyui',
      services: [],
      models: [...models]
        .filter((m) => m.length > 0 && m.length <= 256)
        .slice(0, MAX_CONNECTOR_MODELS),
      images: [],
    };
  }

  async run(raw: unknown, ctx: JobContext): Promise<JobOutcome> {
    const input = raw as ComfyUiInput;
    const clientId = randomUUID().replace(/-/g, '');
    const ws = await this.openSocket(clientId, ctx.signal);
    let promptId: string | null = null;
    const onAbort = () => {
      ws.terminate();
      if (promptId) void this.cancel(promptId, ctx);
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const followed = this.follow(ws, ctx);
      // a rejection before the prompt is queued is seen when it is awaited
      followed.done.catch(() => undefined);
      promptId = await this.queue(input, clientId);
      followed.known(promptId);
      ctx.log.info({ promptId }, 'comfyui prompt queued');
      await followed.done;
      ws.close();
      return await this.collect(promptId, ctx);
    } catch (err) {
      if (ctx.signal.aborted) throw new JobError(abortReason(ctx.signal), true);
      throw err;
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      ws.terminate();
    }
  }

  private openSocket(clientId: string, signal: AbortSignal): Promise<WebSocket> {
    const u = new URL(`/ws?clientId=${clientId}`, this.origin);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(u, {
        handshakeTimeout: this.o.httpTimeoutMs ?? COMFY_HTTP_TIMEOUT_MS,
      });
      const onAbort = () => {
        ws.terminate();
        reject(new JobError(abortReason(signal), true));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      ws.once('open', () => {
        signal.removeEventListener('abort', onAbort);
        resolve(ws);
      });
      ws.once('error', (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(
          new JobError(`could not open ComfyUI's websocket at ${u.origin}: ${err.message}`, true),
        );
      });
    });
  }

  private async queue(input: ComfyUiInput, clientId: string): Promise<string> {
    let res: Response;
    try {
      res = await this.post('/prompt', { prompt: input.workflow, client_id: clientId });
    } catch (err) {
      throw new JobError(`ComfyUI did not take the prompt: ${(err as Error).message}`, true);
    }
    const body = (await res.json().catch(() => null)) as {
      prompt_id?: unknown;
      error?: { message?: unknown; details?: unknown } | string;
      node_errors?: Record<
        string,
        { class_type?: string; errors?: { message?: string; details?: string }[] }
      >;
    } | null;
    if (res.ok && typeof body?.prompt_id === 'string') return body.prompt_id;
    if (res.status >= 400 && res.status < 500) {
      // ComfyUI refused the workflow: the same workflow is refused again
      const err = body?.error;
      const words: string[] = [];
      if (typeof err === 'string') words.push(err);
      else if (err)
        words.push([err.message, err.details].filter((x) => typeof x === 'string' && x).join(': '));
      for (const [node, e] of Object.entries(body?.node_errors ?? {}))
        for (const x of e.errors ?? [])
          words.push(
            `node ${node} (${e.class_type ?? '?'}): ${[x.message, x.details].filter(Boolean).join(': ')}`,
          );
      throw new JobError(
        `ComfyUI refused the workflow: ${words.join('; ') || `HTTP ${res.status}`}`,
        false,
      );
    }
    throw new JobError(`ComfyUI answered ${res.status} to POST /prompt`, true);
  }

  /**
   * Follows the socket: `done` resolves when the prompt has run and rejects
   * with its error. Messages before `known(id)` (the prompt id comes with
   * POST /prompt's answer) wait for it.
   */
  private follow(ws: WebSocket, ctx: JobContext): { done: Promise<void>; known(id: string): void } {
    let promptId: string | null = null;
    const early: ComfyMessage[] = [];
    let handle: (m: ComfyMessage) => void = (m) => void early.push(m);
    let known: (id: string) => void = () => undefined;
    const done = new Promise<void>((resolve, reject) => {
      const onMessage = (m: ComfyMessage) => {
        if (m.data.prompt_id !== promptId) return;
        switch (m.type) {
          case 'progress':
            ctx.progress({
              ...(typeof m.data.value === 'number' ? { value: m.data.value } : {}),
              ...(typeof m.data.max === 'number' ? { max: m.data.max } : {}),
              ...(typeof m.data.node === 'string' ? { message: `node ${m.data.node}` } : {}),
            });
            return;
          case 'executing':
            if (m.data.node === null) resolve();
            return;
          case 'execution_success':
            return resolve();
          case 'execution_error': {
            const type = String(m.data.exception_type ?? '');
            const message = String(m.data.exception_message ?? '');
            return reject(
              new JobError(
                `ComfyUI: node ${String(m.data.node_id)} (${String(m.data.node_type)}) failed: ${type ? `${type}: ` : ''}${message}`,
                // out of memory may pass on another try or worker; a workflow's own error does not
                /OutOfMemory|out of memory/i.test(`${type} ${message}`),
              ),
            );
          }
          case 'execution_interrupted':
            return reject(new JobError('ComfyUI interrupted the prompt', true));
          default:
        }
      };
      ws.on('message', (data, isBinary) => {
        if (isBinary) return; // previews
        let m: { type?: unknown; data?: unknown };
        try {
          m = JSON.parse(String(data)) as typeof m;
        } catch {
          return;
        }
        if (typeof m.type !== 'string' || !m.data || typeof m.data !== 'object') return;
        handle({ type: m.type, data: m.data as Record<string, unknown> });
      });
      ws.once('close', () =>
        reject(new JobError("ComfyUI's websocket closed before the prompt finished", true)),
      );
      known = (id) => {
        promptId = id;
        handle = onMessage;
        for (const m of early.splice(0)) onMessage(m);
      };
    });
    return { done, known: (id) => known(id) };
  }

  private async collect(promptId: string, ctx: JobContext): Promise<JobOutcome> {
    const res = await this.get(`/history/${encodeURIComponent(promptId)}`, ctx.signal);
    if (!res.ok) throw new JobError(`ComfyUI answered ${res.status} to /history/${promptId}`, true);
    const all = (await res.json()) as Record<
      string,
      { outputs?: Record<string, { images?: ImageRef[] }> }
    >;
    const entry = all[promptId];
    if (!entry) throw new JobError(`ComfyUI has no history of prompt ${promptId}`, true);
    const images: (ImageRef & { node: string; file: string })[] = [];
    const files: JobFile[] = [];
    for (const [node, out] of Object.entries(entry.outputs ?? {})) {
      for (const img of out.images ?? []) {
        // temp images are previews; the workflow's results are its output images
        if (img.type !== 'output') continue;
        if (images.length >= MAX_COMFY_IMAGES)
          throw new JobError(`the workflow made more than ${MAX_COMFY_IMAGES} images`, false);
        const q = new URLSearchParams({
          filename: img.filename,
          subfolder: img.subfolder ?? '',
          type: img.type,
        });
        const r = await this.get(`/view?${q.toString()}`, ctx.signal);
        if (!r.ok)
          throw new JobError(`ComfyUI answered ${r.status} to /view of ${img.filename}`, true);
        const data = Buffer.from(await r.arrayBuffer());
        if (data.length > MAX_COMFY_IMAGE_BYTES)
          throw new JobError(`image ${img.filename} is over ${MAX_COMFY_IMAGE_BYTES} bytes`, false);
        const file = fileName(
          img,
          images.length,
          images.map((x) => x.file),
        );
        images.push({ ...img, node, file });
        files.push({
          name: file,
          contentType: r.headers.get('content-type') ?? 'application/octet-stream',
          data,
        });
      }
    }
    return { output: { promptId, images }, files };
  }

  private async cancel(promptId: string, ctx: JobContext): Promise<void> {
    try {
      await this.post('/queue', { delete: [promptId] });
      await this.post('/interrupt', { prompt_id: promptId });
      ctx.log.info({ promptId }, 'comfyui prompt interrupted');
    } catch (err) {
      ctx.log.warn(
        { promptId, err: (err as Error).message },
        'could not interrupt the comfyui prompt',
      );
    }
  }
}

/** An output image's upload name: its subfolder and file name, flat and distinct from `taken`. */
function fileName(img: ImageRef, index: number, taken: string[]): string {
  const path = `${img.subfolder ?? ''}/${img.filename}`.replace(/\\/g, '/');
  return uploadNames([...taken, path || `image-${index + 1}.png`]).at(-1)!;
}
