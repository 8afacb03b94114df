import { describe, expect, it } from 'vitest';
import { parseDeploymentSpec } from './deploy/spec';
import { parseAgentToServer, parseServerToAgent } from './signaling-agent';

const spec = (() => {
  const r = parseDeploymentSpec({ name: 'blog', image: '127.0.0.1:5000/web:1', port: 8080 });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
})();

const resources = {
  capacity: {
    cpuCores: 4,
    memoryBytes: 8 * 1024 ** 3,
    diskFreeBytes: 10 * 1024 ** 3,
    gpus: [],
    os: 'linux',
    arch: 'x64',
    runtime: { name: 'podman', version: '4.3.1' },
  },
  offer: { cpuCores: 2, memoryBytes: null },
  labels: { region: 'home' },
  deployments: true,
};

describe('the cluster messages on the agent channel', () => {
  it('carry resources, replica states and the whole desired set', () => {
    const res = parseAgentToServer(JSON.stringify({ type: 'resources', resources }));
    expect(res.ok && res.value.type === 'resources' && res.value.resources.offer.cpuCores).toBe(2);
    const status = parseAgentToServer(
      JSON.stringify({
        type: 'allocation-status',
        allocations: [{ id: 'a1', state: 'exited', reason: 'exited with code 3', exitCode: 3 }],
      }),
    );
    expect(status.ok).toBe(true);
    // the spec the server parsed goes over the wire and parses the same on the node
    const wire = JSON.stringify({
      type: 'allocations',
      allocations: [{ id: 'a1', deployment: 'blog', spec, version: 1 }],
    });
    const got = parseServerToAgent(wire);
    expect(got.ok && got.value.type === 'allocations' && got.value.allocations[0]!.spec).toEqual(
      spec,
    );
  });

  it('refuse a state the cluster does not have, a bad spec and a bad label', () => {
    const bad = [
      { type: 'allocation-status', allocations: [{ id: 'a1', state: 'sleeping' }] },
      { type: 'resources', resources: { ...resources, labels: { 'bad key!': 'x' } } },
    ];
    for (const m of bad) expect(parseAgentToServer(JSON.stringify(m)).ok, m.type).toBe(false);
    const badSpec = {
      type: 'allocations',
      allocations: [{ id: 'a1', deployment: 'blog', spec: { ...spec, port: 0 }, version: 1 }],
    };
    expect(parseServerToAgent(JSON.stringify(badSpec)).ok).toBe(false);
  });
});
