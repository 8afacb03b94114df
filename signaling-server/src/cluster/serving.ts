/**
 * Who may serve a deployment's service: only a node that holds a replica
 * of it that its agent reported running (healthy). The node's owner does
 * not matter here: a user who granted deploying to their node serves the
 * deployer's replica on it, and the deployer's own nodes serve it only
 * while they run one.
 */
import type { AllocationRecord, Store } from '../store/store';

/** Whether these allocations (one node's, of one deployment) include a running replica. */
export function holdsRunningReplica(allocations: readonly AllocationRecord[]): boolean {
  return allocations.some((a) => a.desired === 'run' && a.state === 'running');
}

/**
 * null when `service` is no deployment (the service rules apply), else
 * whether the node holds a running replica of it.
 */
export async function deploymentServingRight(
  store: Pick<Store, 'getDeployment' | 'listAllocations'>,
  nodeId: string,
  service: string,
): Promise<boolean | null> {
  if (!(await store.getDeployment(service))) return null;
  return holdsRunningReplica(await store.listAllocations({ deployment: service, nodeId }));
}
