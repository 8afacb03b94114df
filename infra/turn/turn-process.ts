/**
 * Starts coturn (Debian's `turnserver`) as a plain process from a rendered
 * config, and stops it by its PID. Used by `start-turn.ts` and by tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderTurnConfig, TURN_DEFAULTS, type TurnConfig } from './config';

export interface TurnProcess {
  proc: ChildProcess;
  configPath: string;
  output(): string;
  stop(): Promise<void>;
}

/** Starts coturn; resolves once it listens. `spawnIn` runs it inside a network namespace. */
export async function startTurn(
  c: Partial<TurnConfig> & Pick<TurnConfig, 'secrets' | 'listeningIps' | 'relayIps'>,
  opts: { spawnIn?: (cmd: string, args: string[]) => ChildProcess; readyTimeoutMs?: number } = {},
): Promise<TurnProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-turn-'));
  const cfg: TurnConfig = {
    ...TURN_DEFAULTS,
    pidFile: join(dir, 'turnserver.pid'),
    logFile: 'stdout',
    ...c,
  };
  const configPath = join(dir, 'turnserver.conf');
  writeFileSync(configPath, renderTurnConfig(cfg), { mode: 0o600 });
  const args = ['-c', configPath];
  const proc = opts.spawnIn
    ? opts.spawnIn('turnserver', args)
    : spawn('turnserver', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await done;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 10_000);
  while (!/(IPv4\. (UDP|TCP) listener opened|Total (UDP|General) servers)/i.test(out)) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`coturn did not start:\n${out.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, configPath, output: () => out, stop };
}
