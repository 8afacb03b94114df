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

/** A named child of the root logger, one per module. */
export function logger(module: string): Logger {
  return root.child({ module });
}

/**
 * Sets the level of every logger (children follow the root unless they set
 * their own). Called once with the validated `--log-level`.
 */
export function setLogLevel(level: pino.LevelWithSilent): void {
  root.level = level;
}
