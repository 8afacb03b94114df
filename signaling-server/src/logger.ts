/** One pino root; modules take a named child (`logger('broker')`). */
import pino from 'pino';

// Logs are JSON on stderr; stdout is for what the CLI tells a person.
const root = pino(
  {
    level: process.env.PEERWAY_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info'),
    base: { app: 'peerway-server' },
  },
  pino.destination(2),
);

export type Logger = pino.Logger;

export function logger(module: string): Logger {
  return root.child({ module });
}
