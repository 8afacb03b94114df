/**
 * Podman for tests: its command line with this machine's settings passed as
 * flags (the agent's own rule: runc, cgroupfs, file events, unless the
 * machine has a containers.conf of its own), so no test writes
 * /etc/containers/containers.conf; an API service of its own on a socket in
 * the test's directory; and removal of exactly what a test run made, found
 * by its `peerway.test=<run id>` label.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  defaultPodmanFlags,
  startPodmanService,
  type PodmanService,
} from '@peerway/node-agent/runtime';

const exec = promisify(execFile);

/** The label every container and image a test makes carries. */
export const TEST_LABEL = 'peerway.test';

/** Runs `podman <flags> <args>`; resolves with stdout, rejects with stderr in the message. */
export async function podman(args: string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await exec('podman', [...defaultPodmanFlags(), ...args], {
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`podman ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, {
      cause: err,
    });
  }
}

/** Starts an API service of the test's own at `<dir>/podman.sock`. */
export function startTestEngine(dir: string): Promise<PodmanService> {
  return startPodmanService({ socketPath: join(dir, 'podman.sock') });
}

/** Removes the containers, then the images, labelled `peerway.test=<runId>`; says what went. */
export async function removeLabelled(
  runId: string,
): Promise<{ containers: number; images: number }> {
  const filter = `label=${TEST_LABEL}=${runId}`;
  const containers = (await podman(['ps', '-a', '-q', '--filter', filter]))
    .split('\n')
    .filter(Boolean);
  if (containers.length) await podman(['rm', '-f', '-t', '0', ...containers]);
  const images = [
    ...new Set((await podman(['images', '-q', '--filter', filter])).split('\n').filter(Boolean)),
  ];
  if (images.length) await podman(['rmi', '-f', ...images]);
  return { containers: containers.length, images: images.length };
}
