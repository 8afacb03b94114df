/**
 * The input each connector takes. Checked at submit, so a malformed input
 * is the submitter's 400 and never a worker's failed attempt; the worker's
 * connector parses it again (a server is not trusted blindly either).
 */
import { z } from 'zod';
import { formatSpecPath, type SpecError } from '../deploy/spec';
import { parseImageReference } from '../deploy/image';
import { ENV_NAME_RE } from '../deploy/labels';
import type { JobType } from './types';

export const MAX_JOB_DELAY_MS = 24 * 3600 * 1000;
export const MAX_CONTAINER_FILES = 64;
export const MAX_ARGV = 256;

export const HTTP_JOB_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** `simulation`: waits `delayMs`, then fails (always, or at a rate 0..1) or returns `output`. */
export const SimulationInputSchema = z
  .strictObject({
    delayMs: z.number().int().min(0).max(MAX_JOB_DELAY_MS).default(0),
    fail: z.union([z.boolean(), z.number().min(0).max(1)]).default(false),
    output: z.unknown().optional(),
    /** Progress reports spread over the delay (0: none). */
    progressSteps: z.number().int().min(0).max(1000).default(0),
  })
  .prefault({});
export type SimulationInput = z.infer<typeof SimulationInputSchema>;

/**
 * `http`: one request to the node's declared service named in
 * `requirements.service`, by path only (the connector holds the origin,
 * as the tunnel's upstream does). Output: `{ status, headers, body }`.
 */
export const HttpInputSchema = z
  .strictObject({
    method: z.enum(HTTP_JOB_METHODS).default('POST'),
    path: z
      .string()
      .max(4096)
      .regex(
        /^\/(?!\/)[^\\\u0000-\u001f]*$/,
        'must be a path starting with one "/" (no backslashes or control characters)',
      )
      .default('/'),
    headers: z.record(z.string().max(256), z.string().max(8192)).default({}),
    /** JSON sent as the body (application/json), or `bodyText` as text. */
    body: z.unknown().optional(),
    bodyText: z.string().optional(),
  })
  .prefault({});
export type HttpInput = z.infer<typeof HttpInputSchema>;

const imageRef = z.string().superRefine((v, ctx) => {
  const r = parseImageReference(v);
  if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message });
});
const argv = z.array(z.string().max(4096)).max(MAX_ARGV);

/**
 * `container`: runs `image` once (a batch job). Files given are placed in
 * `/in`; what the container writes to `/out` comes back as the job's files.
 * Output: `{ exitCode, stdout, stderr, files }`.
 */
export const ContainerInputSchema = z.strictObject({
  image: imageRef,
  command: argv.optional(),
  args: argv.optional(),
  env: z
    .record(
      z.string().regex(ENV_NAME_RE, 'env names: letters, digits, "_"'),
      z.string().max(32 * 1024),
    )
    .default({}),
  stdin: z.string().optional(),
  /** Path under /in → content (UTF-8, or base64 with `base64:` before it). */
  files: z
    .record(z.string(), z.string())
    .superRefine((files, ctx) => {
      const names = Object.keys(files);
      if (names.length > MAX_CONTAINER_FILES) {
        ctx.addIssue({ code: 'custom', message: `at most ${MAX_CONTAINER_FILES} files` });
      }
      for (const name of names) {
        const bad =
          !/^[A-Za-z0-9._-][A-Za-z0-9._/-]{0,255}$/.test(name) ||
          name.split('/').some((seg) => seg === '..' || seg === '.' || seg === '');
        if (bad) {
          ctx.addIssue({
            code: 'custom',
            path: [name],
            message: 'must be a relative path (letters, digits, "._-/"; no "." or ".." segments)',
          });
        }
      }
    })
    .default({}),
});
export type ContainerInput = z.infer<typeof ContainerInputSchema>;

/**
 * `comfyui`: `workflow` is a ComfyUI prompt in its API format (node id →
 * `{ class_type, inputs }`), queued with POST /prompt. Output: the prompt's
 * id and the images it made, as the job's files.
 */
export const ComfyUiInputSchema = z.strictObject({
  workflow: z.record(
    z.string().min(1).max(64),
    z.looseObject({
      class_type: z.string().min(1).max(256),
      inputs: z.record(z.string(), z.unknown()),
    }),
  ),
});
export type ComfyUiInput = z.infer<typeof ComfyUiInputSchema>;

const INPUT_SCHEMAS: Record<JobType, z.ZodType> = {
  simulation: SimulationInputSchema,
  http: HttpInputSchema,
  container: ContainerInputSchema,
  comfyui: ComfyUiInputSchema,
};

export type JobInputResult = { ok: true; input: unknown } | { ok: false; errors: SpecError[] };

/** Checks `input` against `type`'s shape; errors' paths start at `input`. */
export function parseJobInput(type: JobType, input: unknown): JobInputResult {
  const r = INPUT_SCHEMAS[type].safeParse(input);
  if (r.success) return { ok: true, input: r.data };
  return {
    ok: false,
    errors: r.error.issues.map((i) => ({
      path: formatSpecPath(['input', ...i.path]),
      message: i.message,
    })),
  };
}
