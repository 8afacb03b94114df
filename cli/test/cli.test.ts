/**
 * `peerway`, the cluster owner's CLI, as a user runs it (its bin, a child
 * process) against a real server (SQLite) with a node that reports its
 * resources over the real agent WebSocket (a fake agent: the containers
 * themselves are the agent's tests). login, nodes, deploy --dry-run, deploy
 * (spec errors at their paths), deployments, deployment, undeploy, --json.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeUser, withServer } from '../../signaling-server/test/helpers';
import { ClusterAgent, report } from '../../signaling-server/test/cluster-fixtures';

const BIN = resolve(import.meta.dirname, '../bin/peerway.js');
const home = mkdtempSync(join(tmpdir(), 'pw-cli-'));
let srv: Awaited<ReturnType<typeof withServer>>;
let token = '';
let node: ClusterAgent;
let beat: ReturnType<typeof setInterval>;

/** Runs `peerway`; `onOut` sees stdout as it comes (to act on a line it printed). */
function peerway(
  args: string[],
  env: Record<string, string> = {},
  onOut: (soFar: string) => void = () => {},
) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      {
        env: { ...process.env, PEERWAY_HOME: home, PEERWAY_SERVER: '', PEERWAY_TOKEN: '', ...env },
      },
      (err, stdout, stderr) =>
        res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    let out = '';
    child.stdout?.on('data', (d: Buffer) => onOut((out += d.toString())));
  });
}

beforeAll(async () => {
  srv = await withServer();
  ({ token } = await makeUser(srv.server));
  node = new ClusterAgent(srv.server);
  await node.join(token, report());
  // a fake agent says nothing by itself: heartbeats keep it online while the CLI runs
  beat = setInterval(() => node.send({ type: 'heartbeat' }), 1000);
});
afterAll(async () => {
  clearInterval(beat);
  node?.close();
  await srv?.stop();
  rmSync(home, { recursive: true, force: true });
});

it('refuses in words before login, and a wrong token at login', async () => {
  const before = await peerway(['nodes']);
  expect(before.code).toBe(1);
  expect(before.stderr).toMatch(/not logged in: run `peerway login --server URL --token TOKEN`/);
  const bad = await peerway(['login', '--server', srv.server.url, '--token', 'pwt_nope_nope']);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/token rejected/);
  const noScheme = await peerway(['login', '--server', 'localhost:1', '--token', token]);
  expect(noScheme.stderr).toMatch(/needs its scheme/);
});

it('logs in, lists the node with its resources, plans, deploys, shows and undeploys', async () => {
  const login = await peerway(['login', '--server', srv.server.url, '--token', token]);
  expect(login.stdout).toMatch(/Logged in to http:\/\/\S+ as u-[0-9a-f]+@test\.invalid/);
  expect(statSync(join(home, 'cli.json')).mode & 0o777).toBe(0o600);

  const nodes = await peerway(['nodes']);
  expect(nodes.stderr).toBe('');
  expect(nodes.stdout).toContain(node.identity.shortId);
  expect(nodes.stdout).toMatch(/online/);
  const nodesJson = JSON.parse((await peerway(['nodes', '--json'])).stdout);
  expect(nodesJson.nodes[0].deployments).toBe(true);

  const spec = join(home, 'web.yaml');
  writeFileSync(
    spec,
    'name: cli-web\nimage: 127.0.0.1:5000/web:1\nport: 8080\nresources: { cpu: 0.5, memory: 128MiB }\n',
  );
  const plan = await peerway(['deploy', spec, '--dry-run']);
  expect(plan.code).toBe(0);
  expect(plan.stdout).toContain(node.identity.shortId);
  expect(plan.stdout).toMatch(/dry run: nothing changed/);
  expect((await peerway(['deployments'])).stdout).toMatch(/No deployments/);

  const bad = join(home, 'bad.yaml');
  writeFileSync(bad, 'name: Bad_Name\nimage: web:1\nport: 99999\n');
  const refused = await peerway(['deploy', bad]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/bad\.yaml: name: /);
  expect(refused.stderr).toMatch(/bad\.yaml: port: /);

  // deploy follows the rollout: the node hears its new set and reports the
  // replica's states; the CLI prints each and exits 0 once it runs
  let sawPulling: () => void = () => {};
  const printedPulling = new Promise<void>((r) => (sawPulling = r));
  const rollout = peerway(['deploy', spec, '--timeout', '60'], {}, (out) => {
    if (/: pulling /.test(out)) sawPulling();
  });
  const [assigned] = await node.setWhere((l) => l.length === 1, 30_000);
  expect(assigned!.deployment).toBe('cli-web');
  const list = await peerway(['deployments']);
  expect(list.stdout).toMatch(/cli-web\s+0\/1/);
  node.status(assigned!.id, 'pulling', { reason: 'pulling 127.0.0.1:5000/web:1' });
  await printedPulling; // the CLI showed the state before the node moves on
  node.status(assigned!.id, 'running');
  node.announce('cli-web');
  const done = await rollout;
  expect(done.stderr).toBe('');
  expect(done.code).toBe(0);
  expect(done.stdout).toMatch(/Deployed cli-web: http:\/\/cli-web\./);
  expect(done.stdout).toMatch(/pulling \(pulling 127\.0\.0\.1:5000\/web:1\)/);
  expect(done.stdout).toMatch(/cli-web: 1\/1 running at http:\/\/cli-web\./);
  const one = await peerway(['deployment', 'cli-web']);
  expect(one.stdout).toContain(node.identity.shortId);
  expect(JSON.parse((await peerway(['deployment', 'cli-web', '--json'])).stdout).name).toBe(
    'cli-web',
  );

  const gone = await peerway(['undeploy', 'cli-web']);
  expect(gone.stdout).toMatch(/Deleted cli-web/);
  const after = await peerway(['deployment', 'cli-web']);
  expect(after.code).toBe(1);
  expect(after.stderr).toMatch(/no deployment cli-web/);
  await node.setWhere((l) => l.length === 0, 30_000);
});

it('exits 2 when the replicas do not run within --timeout, saying where to look', async () => {
  const spec = join(home, 'slow.yaml');
  writeFileSync(spec, 'name: cli-slow\nimage: 127.0.0.1:5000/web:1\nport: 8080\n');
  const r = await peerway(['deploy', spec, '--timeout', '2']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(
    /cli-slow: 0\/1 running after 2 s; `peerway deployment cli-slow` shows why/,
  );
  expect((await peerway(['undeploy', 'cli-slow'])).code).toBe(0);
});

it('takes PEERWAY_SERVER and PEERWAY_TOKEN instead of a login', async () => {
  const r = await peerway(['deployments', '--json'], {
    PEERWAY_HOME: mkdtempSync(join(tmpdir(), 'pw-cli-env-')),
    PEERWAY_SERVER: srv.server.url,
    PEERWAY_TOKEN: token,
  });
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ deployments: [] });
});
