/**
 * Node labels (`--label region=home`), the label constraints a deployment
 * matches them with, environment variable names and node short IDs.
 */
import type { Checked } from './units';

/** Label keys: letters, digits and `. _ / -`, starting and ending alphanumeric. */
export const LABEL_KEY_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$/;
/** Label values: letters, digits and `. _ -`, starting and ending alphanumeric. */
export const LABEL_VALUE_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
export const MAX_LABELS = 64;

/** A node's short ID: the first 6 hex characters of SHA-256 of its key. */
export const NODE_SHORT_ID_RE = /^[0-9a-f]{6}$/;

/** Environment variable names as POSIX shells accept them. */
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const LABEL_KEY_HELP =
  'letters, digits, ".", "_", "/" and "-", at most 63, starting and ending with a letter or digit';
export const LABEL_VALUE_HELP =
  'letters, digits, ".", "_" and "-", at most 63, starting and ending with a letter or digit';

/** Checks one label key; null when it is fine, else what is wrong. */
export function labelKeyProblem(key: string): string | null {
  return LABEL_KEY_RE.test(key) ? null : `label name "${key}" must be ${LABEL_KEY_HELP}`;
}

/** Checks one label value; null when it is fine, else what is wrong. */
export function labelValueProblem(value: string): string | null {
  return LABEL_VALUE_RE.test(value) ? null : `label value "${value}" must be ${LABEL_VALUE_HELP}`;
}

/** One `key=value` label as given on a command line (`--label region=home`). */
export function parseLabelArg(arg: string): Checked<[string, string]> {
  const eq = arg.indexOf('=');
  if (eq < 0) return { ok: false, message: `label "${arg}" must be key=value, e.g. region=home` };
  const key = arg.slice(0, eq).trim();
  const value = arg.slice(eq + 1).trim();
  const problem = labelKeyProblem(key) ?? labelValueProblem(value);
  return problem ? { ok: false, message: problem } : { ok: true, value: [key, value] };
}
