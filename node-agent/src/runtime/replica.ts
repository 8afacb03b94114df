/**
 * One replica on this node, from its allocation to a healthy container:
 * pending → pulling (when the image is not here) → starting (the container
 * runs, its health check has not passed yet) → running, or unhealthy while
 * the check fails; exited when the container stops (with its exit code), and
 * failed when it could not be started at all (a registry not allowed, an
 * image not found, an engine that refused). Each state carries its reason in
 * words. Restarting a crashed replica is the caller's decision; so is
 * announcing it (once it is `running`).
 *
 * The engine's events for the allocation are watched from before the
 * container is created, so an exit right after start is never missed.
 */
import type { Logger } from 'pino';
import type { ContainerRuntime, Watch } from './docker-api';
import { RuntimeError } from './errors';
import {
  HealthMonitor,
  probeHttp,
  probeName,
  probeTcp,
  type HealthSpec,
  type HealthTimers,
} from './health';
import type { ContainerRecord, ReplicaState, ReplicaStatus, RunSpec, RuntimeEvent } from './types';

/** How much of a container's last output an `exited` reason quotes, in characters. */
const EXIT_OUTPUT_CHARS = 200;

export interface ReplicaOptions {
  runtime: ContainerRuntime;
  spec: RunSpec;
  health: HealthSpec;
  /** Called on every change of state. */
  onStatus?: (status: ReplicaStatus) => void;
  /** `if-not-present` (default) uses an image already on the node; `always` pulls. */
  pullPolicy?: 'if-not-present' | 'always';
  now?: () => number;
  timers?: HealthTimers;
  log?: Logger;
}

/** How long the steps took, in ms (for the deployment's events and benchmarks). */
export interface ReplicaTimings {
  pullMs?: number;
  /** From the start request to the first passed health check. */
  startToHealthyMs?: number;
}

export class Replica {
  status: ReplicaStatus;
  container: ContainerRecord | null = null;
  readonly timings: ReplicaTimings = {};
  private monitor: HealthMonitor | null = null;
  private watch: Watch | null = null;
  private stopping = false;
  private runStartedAt = 0;
  private readonly waiters = new Set<{
    states: ReplicaState[];
    resolve: (s: ReplicaStatus) => void;
  }>();
  private readonly now: () => number;

  constructor(private readonly opts: ReplicaOptions) {
    this.now = opts.now ?? Date.now;
    this.status = { state: 'pending', reason: 'waiting to start', since: this.now() };
  }

  /** The allocation this replica serves. */
  get allocation(): string {
    return this.opts.spec.labels.allocation;
  }

  /**
   * Pulls if needed, creates and starts the container, and starts health
   * checks. Resolves once the container runs (`starting`) or could not be
   * started (`failed`); never throws.
   */
  async start(): Promise<ReplicaStatus> {
    const { runtime, spec } = this.opts;
    try {
      const always = this.opts.pullPolicy === 'always';
      if (always || !(await runtime.hasImage(spec.image))) {
        this.set('pulling', `pulling ${spec.image}`);
        this.timings.pullMs = (await runtime.pull(spec.image)).ms;
      }
      await this.openWatch();
      this.runStartedAt = performance.now();
      const record = await runtime.run(spec);
      this.container = record;
      if (!record.running) {
        await this.exited(record.exitCode);
        return this.status;
      }
      this.set(
        'starting',
        `container ${record.id.slice(0, 12)} started; waiting for ${probeName(this.opts.health.path)} to pass`,
      );
      this.monitorHealth(record);
    } catch (err) {
      this.closeWatch();
      this.set(
        'failed',
        err instanceof RuntimeError ? err.message : `could not start: ${String(err)}`,
      );
    }
    return this.status;
  }

  /**
   * Takes over a container an earlier agent run left (found by its labels):
   * health checks when it runs, `exited` with its code when it does not.
   */
  async adopt(record: ContainerRecord): Promise<ReplicaStatus> {
    this.container = record;
    try {
      await this.openWatch();
      // it may have changed between the list and the watch
      const now = await this.opts.runtime.inspect(record.id);
      this.container = now;
      if (!now.running) {
        await this.exited(now.exitCode);
        return this.status;
      }
      this.runStartedAt = performance.now();
      this.set(
        'starting',
        `adopted running container ${now.id.slice(0, 12)}; checking ${probeName(this.opts.health.path)}`,
      );
      this.monitorHealth(now);
    } catch (err) {
      this.closeWatch();
      this.set(
        'failed',
        err instanceof RuntimeError ? err.message : `could not adopt: ${String(err)}`,
      );
    }
    return this.status;
  }

  /** Resolves with the status once the replica is in one of `states` (at once if it is). */
  until(...states: ReplicaState[]): Promise<ReplicaStatus> {
    if (states.includes(this.status.state)) return Promise.resolve(this.status);
    return new Promise((resolve) => this.waiters.add({ states, resolve }));
  }

  /** Stops watching and checking the container but leaves it running (the agent is going away). */
  detach(): void {
    this.monitor?.stop();
    this.monitor = null;
    this.closeWatch();
  }

  /** Stops and removes the container; the replica ends `exited`. */
  async stop(timeoutS?: number): Promise<void> {
    this.stopping = true;
    this.detach();
    const id = this.container?.id;
    if (!id) return;
    let exitCode: number | null = null;
    try {
      await this.opts.runtime.stop(id, timeoutS ?? this.opts.spec.stopTimeoutS);
      exitCode = (await this.opts.runtime.inspect(id)).exitCode;
    } catch (err) {
      if (!(err instanceof RuntimeError && err.code === 'not_found')) throw err;
    }
    await this.opts.runtime.remove(id);
    this.set('exited', 'stopped and removed by the agent', exitCode ?? undefined);
  }

  private monitorHealth(record: ContainerRecord): void {
    const port = record.hostPort;
    const { health } = this.opts;
    this.monitor = new HealthMonitor({
      spec: health,
      timers: this.opts.timers,
      probe: () =>
        port === null
          ? Promise.resolve({ ok: false, reason: 'the container port is not published' })
          : health.path === null
            ? probeTcp(port, health.timeoutMs)
            : probeHttp(port, health.path, health.timeoutMs),
      onChange: (state, reason) => {
        if (this.stopping || this.status.state === 'exited') return;
        if (state === 'running' && this.timings.startToHealthyMs === undefined) {
          this.timings.startToHealthyMs = Math.round(performance.now() - this.runStartedAt);
        }
        this.set(state, reason);
      },
    });
    this.monitor.start();
  }

  private async openWatch(): Promise<void> {
    const { labels } = this.opts.spec;
    this.watch = await this.opts.runtime.watch(
      { node: labels.node, deployment: labels.deployment, allocation: labels.allocation },
      (e) => void this.onEvent(e),
      (err) => {
        if (this.stopping || !this.watch) return;
        // The engine went away (restarted?); health checks still notice a dead container.
        this.opts.log?.warn(
          { allocation: labels.allocation, err: err?.message },
          'engine events ended',
        );
        this.watch = null;
      },
    );
  }

  private closeWatch(): void {
    const w = this.watch;
    this.watch = null;
    w?.close();
  }

  private async onEvent(e: RuntimeEvent): Promise<void> {
    if (this.stopping || e.type !== 'exited' || !this.container || e.id !== this.container.id)
      return;
    this.monitor?.stop();
    this.monitor = null;
    await this.exited(e.exitCode);
  }

  /** Sets `exited` with the exit code, whether memory ran out, and the last output. */
  private async exited(code: number | null): Promise<void> {
    this.closeWatch();
    const id = this.container?.id;
    let oom = false;
    let output = '';
    if (id) {
      try {
        const now = await this.opts.runtime.inspect(id);
        this.container = now;
        oom = now.oomKilled;
        code ??= now.exitCode;
        output = (await this.opts.runtime.logs(id, 5)).trim();
      } catch {
        // removed already: the code from the event is all there is
      }
    }
    if (this.stopping) return;
    let reason = code === null ? 'the container exited' : `the container exited with code ${code}`;
    if (oom) reason += ' (killed: out of memory)';
    if (output) reason += `; its last output: ${output.slice(-EXIT_OUTPUT_CHARS)}`;
    this.set('exited', reason, code ?? undefined);
  }

  private set(state: ReplicaState, reason: string, exitCode?: number): void {
    this.status = {
      state,
      reason,
      since: this.now(),
      ...(exitCode !== undefined ? { exitCode } : {}),
    };
    this.opts.log?.info({ allocation: this.allocation, state, reason }, 'replica state');
    this.opts.onStatus?.(this.status);
    for (const w of [...this.waiters]) {
      if (w.states.includes(state)) {
        this.waiters.delete(w);
        w.resolve(this.status);
      }
    }
  }
}
