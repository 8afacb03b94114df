/**
 * The deployments API against a real server (SQLite) with fake agents over
 * real WebSockets speaking the agent protocol: dry run, create, per-node
 * reasons when nothing fits, deploy grants, nodes that do not take
 * deployments, replica states, restarts, node loss and rescheduling after
 * the grace, delete, other users, spec errors, and an agent that reports on
 * a replica that is not its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signServiceAccessToken } from '@peerway/protocol/node';
import { FakeClient, api, makeUser, withServer } from './helpers';
import { ClusterAgent, GiB, MiB, report, spec, uniqueName, until } from './cluster-fixtures';
import type { PeerwayServer } from '../src/server';

let srv: Awaited<ReturnType<typeof withServer>>;
let server: PeerwayServer;
const agents: ClusterAgent[] = [];

beforeAll(async () => {
  srv = await withServer({ rescheduleAfter: '400ms' });
  server = srv.server;
});
afterAll(async () => {
  for (const a of agents) a.close();
  await srv?.stop();
});

async function agent(token: string, resources = report()) {
  const a = new ClusterAgent(server);
  agents.push(a);
  const first = await a.join(token, resources);
  return { a, first };
}

const deploy = (token: string, body: unknown, query = '') =>
  api(server, 'POST', `/api/deployments${query}`, { token, body });

async function postYaml(token: string, text: string) {
  const res = await fetch(`${server.url}/api/deployments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' },
    body: text,
  });
  return { status: res.status, json: (await res.json()) as any };
}

const get = (token: string, name: string) =>
  api(server, 'GET', `/api/deployments/${name}`, { token });

describe('deployments', () => {
  it('a dry run answers with the plan and changes nothing', async () => {
    const { token } = await makeUser(server);
    const { a: n1 } = await agent(token);
    const { a: n2 } = await agent(token, report({ memoryBytes: 8 * GiB }));
    const name = uniqueName();
    const r = await deploy(token, spec(name, { replicas: 2 }), '?dryRun=1');
    expect(r.status).toBe(200);
    expect(r.json.dryRun).toBe(true);
    expect(r.json.plan.place.map((p: any) => p.node).sort()).toEqual(
      [n1.identity.shortId, n2.identity.shortId].sort(),
    );
    expect(r.json.plan.lines.join('\n')).toMatch(/place a replica on node/);
    expect((await get(token, name)).status).toBe(404);
    expect((await api(server, 'GET', '/api/deployments', { token })).json.deployments).toEqual([]);
  });

  it('creates a deployment, sends the nodes their sets and shows replica states and events', async () => {
    const { token } = await makeUser(server);
    const { a: n1, first } = await agent(token);
    expect(first).toEqual([]);
    const name = uniqueName();
    const r = await deploy(token, spec(name));
    expect(r.status).toBe(201);
    expect(r.json.created).toBe(true);
    expect(r.json.warnings).toEqual([]);
    const set = await n1.setWhere((l) => l.length === 1);
    expect(set[0]).toMatchObject({ deployment: name, spec: { name, port: 8080, replicas: 1 } });
    const id = set[0]!.id;

    let d = (await get(token, name)).json;
    expect(d).toMatchObject({ name, spec: { name }, desired: 1 });
    expect(d.replicas).toEqual([
      expect.objectContaining({ id, node: n1.identity.shortId, state: 'pending' }),
    ]);

    n1.status(id, 'pulling', { reason: 'pulling 127.0.0.1:5000/peerway-test/web:1' });
    n1.status(id, 'running');
    d = await until(async () => {
      const j = (await get(token, name)).json;
      return j.replicas[0].state === 'running' && j;
    }, 'the replica running');
    expect(d.running).toBe(1);
    const kinds = d.events.map((e: any) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['created', 'placed', 'pulling', 'started']));
    expect(d.events.find((e: any) => e.kind === 'pulling').message).toContain(
      'pulling 127.0.0.1:5000',
    );

    // GET /api/nodes shows what is allocated there
    const nodes = (await api(server, 'GET', '/api/nodes', { token })).json.nodes;
    expect(nodes[0]).toMatchObject({
      deployments: true,
      runtime: { name: 'podman' },
      allocated: { cpuMillis: 500, memoryBytes: 256 * MiB },
    });
  });

  it('a spec that fits nowhere is accepted with reasons per node, and placed when a node with room appears', async () => {
    const { token } = await makeUser(server);
    const { a: small } = await agent(token, report({ memoryBytes: 512 * MiB }));
    const name = uniqueName();
    const r = await deploy(token, spec(name, { resources: { cpu: 1, memory: '1GiB' } }));
    expect(r.status).toBe(201);
    expect(r.json.pending.replicas).toBe(1);
    expect(r.json.pending.reasons).toEqual([
      {
        node: small.identity.shortId,
        code: 'resources',
        message: 'needs 1 GiB memory, 512 MiB free',
      },
    ]);
    expect(r.json.warnings[0]).toMatch(/stay pending and are placed when a node with room appears/);
    const d = (await get(token, name)).json;
    expect(d.replicas).toEqual([
      expect.objectContaining({ id: null, node: null, state: 'pending' }),
    ]);
    expect(d.replicas[0].reason).toContain('needs 1 GiB memory, 512 MiB free');
    expect(d.events.map((e: any) => e.kind)).toContain('pending');

    const { a: big } = await agent(token, report({ memoryBytes: 8 * GiB }));
    const set = await big.setWhere((l) => l.length === 1);
    expect(set[0]!.deployment).toBe(name);
  });

  it('places on another user’s node only with their deploy grant; that node serves it only while it runs', async () => {
    const deployer = await makeUser(server);
    const lender = await makeUser(server);
    const { a: theirs } = await agent(lender.token);
    const name = uniqueName();
    const r = await deploy(deployer.token, spec(name));
    expect(r.status).toBe(201);
    expect(r.json.pending.otherNodes).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(r.json.pending.reasons)).not.toContain(theirs.identity.shortId);

    // the grant, by the node's owner only
    const grant = (t: string) =>
      api(server, 'POST', `/api/nodes/${theirs.identity.shortId}/deployers`, {
        token: t,
        body: { email: deployer.user.email },
      });
    expect((await grant(deployer.token)).status).toBe(404);
    const g = await grant(lender.token);
    expect(g.status).toBe(201);
    expect(g.json.node.deployers).toEqual([deployer.user.email]);

    const set = await theirs.setWhere((l) => l.length === 1);
    const id = set[0]!.id;
    // announced before it runs: refused
    theirs.announce(name);
    expect((await theirs.nextOf('services-ack')).services[0]).toMatchObject({
      name,
      accepted: false,
    });
    theirs.status(id, 'running');
    theirs.announce(name);
    const ack = await until(async () => {
      const m = await theirs.nextOf('services-ack');
      return m.services[0]?.accepted ? m : null;
    }, 'the announcement accepted');
    expect(ack.services[0]).toMatchObject({ name, accepted: true });

    // a session for the deployer reaches the lender's node
    const accessToken = await signServiceAccessToken({
      privateKey: server.keys.accessPrivateKey,
      issuer: server.config.publicUrl,
      service: name,
      subject: deployer.user.id,
      access: 'private',
    });
    const client = new FakeClient(server);
    await client.open();
    client.send({ type: 'open', ref: 'r', service: name, token: accessToken });
    expect(await client.nextOf('session')).toMatchObject({
      node: { shortId: theirs.identity.shortId },
    });
    client.close();

    // the grant taken back: the replica stops there
    const del = await api(
      server,
      'DELETE',
      `/api/nodes/${theirs.identity.shortId}/deployers/${encodeURIComponent(deployer.user.email)}`,
      { token: lender.token },
    );
    expect(del.status).toBe(200);
    await theirs.setWhere((l) => l.length === 0);
    const d = (await get(deployer.token, name)).json;
    expect(d.events.map((e: any) => e.message).join('\n')).toMatch(
      /not yours and not granted to you/,
    );
  });

  it('never assigns a replica to a node whose agent does not take deployments', async () => {
    const { token } = await makeUser(server);
    const { a: off, first } = await agent(token, report({ deployments: false }));
    expect(first).toEqual([]);
    const name = uniqueName();
    const r = await deploy(token, spec(name));
    expect(r.status).toBe(201);
    expect(r.json.pending.reasons).toEqual([
      expect.objectContaining({ node: off.identity.shortId, code: 'not_enabled' }),
    ]);
    expect(r.json.pending.reasons[0].message).toMatch(/--deployments/);
    await until(
      async () => (await get(token, name)).json.events.some((e: any) => e.kind === 'pending'),
      'the pending event',
    );
    expect((await get(token, name)).json.replicas.every((x: any) => x.node === null)).toBe(true);
  });

  it('a lost node’s replica is rescheduled only after the grace', async () => {
    const { token } = await makeUser(server);
    const { a: n1 } = await agent(token);
    const name = uniqueName();
    expect((await deploy(token, spec(name))).status).toBe(201);
    const set = await n1.setWhere((l) => l.length === 1);
    const id = set[0]!.id;
    n1.status(id, 'running');
    const { a: n2 } = await agent(token);

    const wentAt = Date.now();
    n1.close();
    await n1.closed;
    // within the grace: still on the lost node
    const early = (await get(token, name)).json;
    expect(early.replicas.map((x: any) => x.id)).toEqual([id]);

    const moved = await n2.setWhere((l) => l.length === 1);
    expect(Date.now() - wentAt).toBeGreaterThanOrEqual(400);
    expect(moved[0]!.id).not.toBe(id);
    const d = (await get(token, name)).json;
    expect(d.replicas).toEqual([
      expect.objectContaining({ id: moved[0]!.id, node: n2.identity.shortId }),
    ]);
    const kinds = d.events.map((e: any) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['node-lost', 'rescheduled']));
  });

  it('a draining node’s replica moves: its replacement runs elsewhere before it stops', async () => {
    const { token } = await makeUser(server);
    const { a: n1 } = await agent(token);
    const name = uniqueName();
    expect((await deploy(token, spec(name))).status).toBe(201);
    const [old] = await n1.setWhere((l) => l.length === 1);
    n1.status(old!.id, 'running');
    const { a: n2 } = await agent(token);
    // nothing moves while n1 is not draining
    expect((await get(token, name)).json.replicas.map((x: any) => x.node)).toEqual([
      n1.identity.shortId,
    ]);

    n1.send({ type: 'drain', draining: true });
    const [repl] = await n2.setWhere((l) => l.length === 1);
    // the replacement is placed, the old one still wanted on n1 until it runs
    const during = (await get(token, name)).json;
    expect(during.replicas.map((x: any) => x.node).sort()).toEqual(
      [n1.identity.shortId, n2.identity.shortId].sort(),
    );
    expect(during.replicas.find((x: any) => x.id === old!.id).desired).toBe('run');
    n2.status(repl!.id, 'running');
    await n1.setWhere((l) => l.length === 0);
    const d = (await get(token, name)).json;
    expect(d.replicas.filter((x: any) => x.desired === 'run').map((x: any) => x.id)).toEqual([
      repl!.id,
    ]);
    expect(d.events.map((e: any) => e.message)).toEqual(
      expect.arrayContaining([
        `replica ${old!.id} on node ${n1.identity.shortId} stops: its node is draining, and the replicas run on other nodes`,
      ]),
    );
  });

  it('restarts an exited replica on its node after a backoff', async () => {
    const { token } = await makeUser(server);
    const { a: n1 } = await agent(token);
    const name = uniqueName();
    await deploy(token, spec(name));
    const [first] = await n1.setWhere((l) => l.length === 1);
    n1.status(first!.id, 'running');
    n1.status(first!.id, 'exited', { reason: 'the container exited with code 3', exitCode: 3 });
    const exitedAt = Date.now();
    const [again] = await n1.setWhere((l) => l.length === 1 && l[0]!.id !== first!.id);
    expect(Date.now() - exitedAt).toBeGreaterThanOrEqual(900);
    const d = (await get(token, name)).json;
    expect(d.events.find((e: any) => e.kind === 'restarted').message).toContain(
      `replica ${first!.id} restarted on node ${n1.identity.shortId} as ${again!.id}`,
    );
  });

  it('restart: never leaves an exited replica as it is', async () => {
    const { token } = await makeUser(server);
    const { a: n1 } = await agent(token);
    const name = uniqueName();
    await deploy(token, spec(name, { restart: 'never' }));
    const [one] = await n1.setWhere((l) => l.length === 1);
    n1.status(one!.id, 'exited', { exitCode: 1 });
    await until(async () => (await get(token, name)).json.replicas[0].state === 'exited', 'exited');
    // two reschedule periods later it is still the same replica
    await server.signaling.deployments.settled();
    server.signaling.deployments.kick();
    await server.signaling.deployments.settled();
    const d = (await get(token, name)).json;
    expect(d.replicas.map((x: any) => [x.id, x.state])).toEqual([[one!.id, 'exited']]);
  });

  it('an update that needs new containers replaces the replicas; one that does not keeps them', async () => {
    const { token } = await makeUser(server);
    const { a: n1 } = await agent(token);
    const name = uniqueName();
    await deploy(token, spec(name));
    const [v1] = await n1.setWhere((l) => l.length === 1);
    const scaled = await deploy(token, spec(name, { access: 'public' }));
    expect(scaled.status).toBe(200);
    expect(scaled.json.created).toBe(false);
    expect(scaled.json.plan.keep).toEqual([{ allocation: v1!.id, node: n1.identity.shortId }]);
    const dry = await deploy(token, spec(name, { image: 'web:2' }), '?dryRun=1');
    expect(dry.json.plan.stop).toEqual([
      expect.objectContaining({ allocation: v1!.id, reason: 'updated' }),
    ]);
    const r = await deploy(token, spec(name, { image: 'web:2' }));
    expect(r.status).toBe(200);
    const [v2] = await n1.setWhere((l) => l.length === 1 && l[0]!.id !== v1!.id);
    expect(v2!.spec.image).toBe('web:2');
    const d = (await get(token, name)).json;
    const updates = d.events.filter((e: any) => e.kind === 'updated');
    expect(updates.map((e: any) => /replaced/.test(e.message))).toEqual([false, true]);
  });

  it('delete stops every replica: the nodes get sets without them', async () => {
    const { token } = await makeUser(server);
    const { a: n1 } = await agent(token);
    const { a: n2 } = await agent(token);
    const name = uniqueName();
    await deploy(token, spec(name, { replicas: 2 }));
    await n1.setWhere((l) => l.length === 1);
    await n2.setWhere((l) => l.length === 1);
    expect((await api(server, 'DELETE', `/api/deployments/${name}`, { token })).status).toBe(200);
    await n1.setWhere((l) => l.length === 0);
    await n2.setWhere((l) => l.length === 0);
    expect((await get(token, name)).status).toBe(404);
  });

  it('another user gets 404 for a deployment and 409 for its name', async () => {
    const owner = await makeUser(server);
    const other = await makeUser(server);
    const name = uniqueName();
    expect((await deploy(owner.token, spec(name))).status).toBe(201);
    expect((await get(other.token, name)).status).toBe(404);
    expect(
      (await api(server, 'DELETE', `/api/deployments/${name}`, { token: other.token })).status,
    ).toBe(404);
    const taken = await deploy(other.token, spec(name));
    expect(taken.status).toBe(409);
    expect(taken.json.error.message).toMatch(/belongs to another user's deployment/);
    expect(
      (await api(server, 'GET', '/api/deployments', { token: other.token })).json.deployments,
    ).toEqual([]);
    expect((await get(owner.token, name)).status).toBe(200);
    expect((await api(server, 'GET', '/api/deployments')).status).toBe(401);
  });

  it('spec errors come back as 400 with each field’s path (YAML with lines)', async () => {
    const { token } = await makeUser(server);
    const r = await postYaml(
      token,
      ['name: Bad_Name', 'image: web:1', 'port: 99999', 'resources:', '  memory: lots'].join('\n'),
    );
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('bad_request');
    const byPath = Object.fromEntries(r.json.errors.map((e: any) => [e.path, e]));
    expect(Object.keys(byPath).sort()).toEqual(['name', 'port', 'resources.memory']);
    expect(byPath['port'].line).toBe(3);
    const json = await deploy(token, { name: 'ok-name', image: 'web:1', port: 80, replicas: 0 });
    expect(json.status).toBe(400);
    expect(json.json.errors).toEqual([expect.objectContaining({ path: 'replicas' })]);
    const empty = await deploy(token, {});
    expect(empty.status).toBe(400);
    expect(empty.json.errors[0].message).toMatch(/no spec in the body/);
  });

  it('ignores an agent’s report on a replica that is not its own', async () => {
    const { token } = await makeUser(server);
    const { a: n1 } = await agent(token);
    const other = await makeUser(server);
    const { a: liar } = await agent(other.token);
    const name = uniqueName();
    await deploy(token, spec(name));
    const [one] = await n1.setWhere((l) => l.length === 1);
    liar.status(one!.id, 'running');
    // an announcement is handled after the report sent before it, on one connection
    liar.announce(uniqueName('own'));
    await liar.nextOf('services-ack');
    n1.status(one!.id, 'starting');
    await until(
      async () => (await get(token, name)).json.replicas[0].state === 'starting',
      'starting',
    );
    const d = (await get(token, name)).json;
    expect(d.events.filter((e: any) => e.kind === 'started')).toEqual([]);
    expect(d.replicas[0].state).toBe('starting');
  });
});
