/**
 * The agent's version, from its package.json: this file sits one level
 * under the package root both as src/version.ts and inside the built dist/.
 */
import { createRequire } from 'node:module';

export const AGENT_VERSION: string = (
  createRequire(import.meta.url)('../package.json') as { version: string }
).version;
