/**
 * `simulation`: waits `delayMs` (reporting `progressSteps` steps spread
 * over it), then fails (always with `fail: true`, or at the rate `fail`
 * gives, 0..1) or returns `output`. For tests and benchmarks: it needs
 * nothing on the node.
 */
import type { SimulationInput, WorkerConnector } from '@peerway/protocol';
import { JobError, abortableDelay } from '../errors';
import type { Connector, JobContext, JobOutcome } from './types';

export interface SimulationOptions {
  /** 0 ≤ x < 1; decides a rate's failures (default Math.random). */
  random?: () => number;
}

export class SimulationConnector implements Connector {
  readonly type = 'simulation' as const;

  constructor(private readonly o: SimulationOptions = {}) {}

  describe(): Promise<WorkerConnector> {
    return Promise.resolve({ type: 'simulation', services: [], models: [], images: [] });
  }

  async run(raw: unknown, ctx: JobContext): Promise<JobOutcome> {
    const input = raw as SimulationInput;
    const steps = input.progressSteps;
    if (steps > 0) {
      const each = input.delayMs / steps;
      for (let i = 1; i <= steps; i++) {
        // each step waits until its share of the delay has passed since the start
        await abortableDelay(Math.round(each * i) - Math.round(each * (i - 1)), ctx.signal);
        ctx.progress({ value: i, max: steps });
      }
    } else if (input.delayMs > 0) await abortableDelay(input.delayMs, ctx.signal);
    const fails =
      input.fail === true ||
      (typeof input.fail === 'number' && (this.o.random ?? Math.random)() < input.fail);
    if (fails)
      throw new JobError(
        input.fail === true
          ? 'simulated failure (fail: true)'
          : `simulated failure (fail rate ${String(input.fail)})`,
        true,
      );
    return { output: input.output ?? null };
  }
}
