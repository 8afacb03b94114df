/**
 * An agent's resource report as the server keeps it. The report passed the
 * protocol's schema already; it is the owner's own node and the owner's own
 * caps, so it is believed — except figures no machine has, which are cut to
 * a ceiling so one report cannot make a node look like a data centre.
 */
import type { NodeResources } from '@peerway/protocol';

/** Ceilings for what one node reports. */
export const NODE_REPORT_LIMITS = {
  cpuCores: 1024,
  memoryBytes: 64 * 1024 ** 4,
  diskFreeBytes: 1024 ** 5 * 16,
  gpus: 16,
} as const;

/** The report with each figure cut to its ceiling; `clamped` names what was cut. */
export function clampNodeReport(r: NodeResources): { report: NodeResources; clamped: string[] } {
  const clamped: string[] = [];
  const cut = (what: string, v: number, max: number) => {
    if (v <= max) return v;
    clamped.push(what);
    return max;
  };
  const L = NODE_REPORT_LIMITS;
  const gpus =
    r.capacity.gpus.length > L.gpus
      ? (clamped.push('capacity.gpus'), r.capacity.gpus.slice(0, L.gpus))
      : r.capacity.gpus;
  const report: NodeResources = {
    ...r,
    capacity: {
      ...r.capacity,
      cpuCores: cut('capacity.cpuCores', r.capacity.cpuCores, L.cpuCores),
      memoryBytes: cut('capacity.memoryBytes', r.capacity.memoryBytes, L.memoryBytes),
      diskFreeBytes: cut('capacity.diskFreeBytes', r.capacity.diskFreeBytes, L.diskFreeBytes),
      gpus,
    },
    offer: {
      cpuCores:
        r.offer.cpuCores === null ? null : cut('offer.cpuCores', r.offer.cpuCores, L.cpuCores),
      memoryBytes:
        r.offer.memoryBytes === null
          ? null
          : cut('offer.memoryBytes', r.offer.memoryBytes, L.memoryBytes),
    },
  };
  return { report, clamped };
}
