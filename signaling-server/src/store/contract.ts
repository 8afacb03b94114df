/**
 * The store contract: every Store implementation must pass this suite
 * (SQLite now, Redis for several server instances). Call it from a test file
 * with a factory that returns a fresh, migrated, empty store, and one that
 * opens another instance over the data of the store made last (another
 * server process on the same file, another server instance on the same Redis).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDeploymentSpec, type DeploymentSpec, type NodeResources } from '@peerway/protocol';
import { MAX_DEPLOYMENT_EVENTS, NameTakenError, PlanConflictError, type Store } from './store';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** A parsed spec (the defaults filled in) with `extra` over a minimal one. */
export function testSpec(name: string, extra: Record<string, unknown> = {}): DeploymentSpec {
  const r = parseDeploymentSpec({ name, image: 'registry.example/blog:1.2', port: 8080, ...extra });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

/** A node's report offering deployments 1 CPU (of 2), 1 GiB and no GPU. */
export const testResources: NodeResources = {
  capacity: {
    cpuCores: 2,
    memoryBytes: GiB,
    diskFreeBytes: 10 * GiB,
    gpus: [],
    os: 'linux',
    arch: 'x64',
    runtime: { name: 'podman', version: '4.3.1' },
  },
  offer: { cpuCores: 1, memoryBytes: null },
  labels: { region: 'home' },
  deployments: true,
};

export function runStoreContract(
  name: string,
  makeStore: () => Promise<Store>,
  openAgain: () => Promise<Store>,
): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });
    const now = 1_800_000_000_000;
    /** A plain user: no password, not an admin, not external. */
    const user = (email: string) =>
      store.createUser({ email, passwordHash: null, isAdmin: false, externalSubject: null });

    it('creates and finds users; email is unique case-insensitively', async () => {
      const u = await store.createUser({
        email: 'Ann@example.com',
        passwordHash: 'h',
        isAdmin: true,
        externalSubject: null,
      });
      expect((await store.getUserById(u.id))?.email).toBe('Ann@example.com');
      expect((await store.getUserByEmail('ann@example.com'))?.id).toBe(u.id);
      await expect(user('ANN@example.com')).rejects.toMatchObject({ code: 'conflict' });
      const ext = await store.createUser({
        email: 'b@x',
        passwordHash: null,
        isAdmin: false,
        externalSubject: 'iss|sub1',
      });
      expect((await store.getUserByExternalSubject('iss|sub1'))?.id).toBe(ext.id);
      expect(await store.countUsers()).toBe(2);
      expect((await store.listUsers()).map((x) => x.isAdmin)).toEqual([true, false]);
    });

    it('stores access tokens by hash only', async () => {
      const u = await user('a@x');
      await store.createAccessToken({ id: 't1', userId: u.id, name: 'ci', tokenHash: 'abc' });
      expect((await store.findAccessTokenByHash('abc'))?.userId).toBe(u.id);
      expect(await store.findAccessTokenByHash('nope')).toBeNull();
      await store.touchAccessToken('t1', now);
      expect((await store.listAccessTokens(u.id))[0]?.lastUsedAt).toBe(now);
      expect(await store.deleteAccessToken('someone-else', 't1')).toBe(false);
      expect(await store.deleteAccessToken(u.id, 't1')).toBe(true);
      expect(await store.findAccessTokenByHash('abc')).toBeNull();
    });

    it("keeps an access token's expiry (none unless given)", async () => {
      const u = await user('a@x');
      await store.createAccessToken({ id: 't1', userId: u.id, name: 'a', tokenHash: 'h1' });
      await store.createAccessToken({
        id: 't2',
        userId: u.id,
        name: 'b',
        tokenHash: 'h2',
        expiresAt: now + 60_000,
      });
      expect((await store.findAccessTokenByHash('h1'))?.expiresAt).toBeNull();
      expect((await store.findAccessTokenByHash('h2'))?.expiresAt).toBe(now + 60_000);
      expect((await store.listAccessTokens(u.id)).map((t) => t.expiresAt)).toEqual([
        null,
        now + 60_000,
      ]);
    });

    it('claims a node once: a second owner is refused, the same owner is told it is theirs', async () => {
      const a = await user('a@x');
      const b = await user('b@x');
      expect(await store.claimNode('n1', a.id)).toEqual({ ok: false, reason: 'not_found' });
      const first = await store.claimNode('n1', a.id, { shortId: 'abc123', name: 'home', now });
      expect(first).toMatchObject({ ok: true, alreadyYours: false });
      expect(await store.claimNode('n1', b.id)).toEqual({ ok: false, reason: 'claimed_by_other' });
      expect(await store.claimNode('n1', a.id)).toMatchObject({ ok: true, alreadyYours: true });
      const [r1, r2] = await Promise.all([
        store.claimNode('n2', a.id, { shortId: 'def456', name: 'x', now }),
        store.claimNode('n2', b.id, { shortId: 'def456', name: 'x', now }),
      ]);
      expect([r1.ok, r2.ok].filter(Boolean)).toHaveLength(1);
    });

    it('keeps nodes, visibility, last seen, and removes them', async () => {
      const a = await user('a@x');
      const n = await store.upsertNode({ id: 'n1', shortId: 'aaa111', name: 'one', now });
      expect(n).toMatchObject({ ownerId: null, isPublic: false, lastSeen: now });
      await store.upsertNode({ id: 'n1', shortId: 'aaa111', name: 'renamed', now: now + 5 });
      expect((await store.getNode('n1'))?.name).toBe('renamed');
      expect((await store.getNodeByShortId('aaa111'))?.id).toBe('n1');
      await store.claimNode('n1', a.id);
      expect(await store.listPublicNodes()).toEqual([]);
      await store.setNodeVisibility('n1', true);
      expect((await store.listPublicNodes()).map((x) => x.id)).toEqual(['n1']);
      await store.setNodeLastSeen('n1', now + 100);
      expect((await store.listNodesByOwner(a.id))[0]?.lastSeen).toBe(now + 100);
      await store.setNodeServices('n1', [{ name: 'blog', description: null }]);
      await store.deleteNode('n1');
      expect(await store.getNode('n1')).toBeNull();
      expect(await store.listServiceNodes('blog')).toEqual([]);
      expect(await store.listAllNodes()).toEqual([]);
    });

    it('reserves service names for the first owner; replicas share a name', async () => {
      const a = await user('a@x');
      const b = await user('b@x');
      expect(await store.reserveService('blog', a.id, 'private', now)).toMatchObject({ ok: true });
      expect(await store.reserveService('blog', b.id, 'public', now)).toEqual({
        ok: false,
        ownerId: a.id,
      });
      expect((await store.reserveService('blog', a.id, 'public', now)).ok).toBe(true);
      expect((await store.getService('blog'))?.access).toBe('private');
      await store.setServiceAccess('blog', 'public');
      expect((await store.listServicesByOwner(a.id)).map((s) => [s.name, s.access])).toEqual([
        ['blog', 'public'],
      ]);
      await store.upsertNode({ id: 'n1', shortId: 'a', name: 'a', now });
      await store.upsertNode({ id: 'n2', shortId: 'b', name: 'b', now });
      await store.setNodeServices('n1', [{ name: 'blog', description: 'my blog' }]);
      await store.setNodeServices('n2', [
        { name: 'blog', description: null },
        { name: 'wiki', description: null },
      ]);
      expect((await store.listServiceNodes('blog')).sort()).toEqual(['n1', 'n2']);
      await store.setNodeServices('n2', [{ name: 'wiki', description: null }]);
      expect(await store.listServiceNodes('blog')).toEqual(['n1']);
      expect(await store.listNodeServices('n1')).toEqual([
        { nodeId: 'n1', name: 'blog', description: 'my blog' },
      ]);
    });

    it('shares services with named users', async () => {
      const a = await user('a@x');
      await store.addShare('blog', a.id);
      await store.addShare('blog', a.id);
      expect(await store.listShares('blog')).toEqual([a.id]);
      expect(await store.hasShare('blog', a.id)).toBe(true);
      await store.removeShare('blog', a.id);
      expect(await store.hasShare('blog', a.id)).toBe(false);
    });

    it('grants the right to serve apart from shares', async () => {
      const a = await user('a@x');
      await store.addShare('blog', a.id);
      expect(await store.hasServeGrant('blog', a.id)).toBe(false);
      await store.addServeGrant('blog', a.id);
      await store.addServeGrant('blog', a.id);
      expect(await store.listServeGrants('blog')).toEqual([a.id]);
      expect(await store.hasServeGrant('wiki', a.id)).toBe(false);
      await store.removeShare('blog', a.id);
      expect(await store.hasServeGrant('blog', a.id)).toBe(true);
      await store.removeServeGrant('blog', a.id);
      expect(await store.hasServeGrant('blog', a.id)).toBe(false);
      expect(await store.listServeGrants('blog')).toEqual([]);
    });

    it('purges unclaimed nodes unseen for long, never a claimed one', async () => {
      const a = await user('a@x');
      for (let i = 0; i < 5; i++)
        await store.upsertNode({ id: `old${i}`, shortId: `o${i}`, name: 'x', now: now + i });
      await store.upsertNode({ id: 'fresh', shortId: 'f', name: 'x', now: now + 1000 });
      await store.upsertNode({ id: 'mine', shortId: 'm', name: 'x', now });
      await store.claimNode('mine', a.id);
      await store.setNodeLastSeen('old4', now + 2000); // came back since
      expect(await store.countUnclaimedNodes()).toBe(6);
      const first = await store.purgeUnclaimedNodes(now + 500, 2);
      expect(first).toEqual(['old0', 'old1']);
      const rest = await store.purgeUnclaimedNodes(now + 500, 100);
      expect(rest.sort()).toEqual(['old2', 'old3']);
      expect(await store.getNode('old0')).toBeNull();
      expect(await store.getNodeByShortId('o1')).toBeNull();
      expect((await store.listAllNodes()).map((n) => n.id).sort()).toEqual([
        'fresh',
        'mine',
        'old4',
      ]);
      expect(await store.countUnclaimedNodes()).toBe(2);
      // claimed after it was created unclaimed: out of the purge's reach
      await store.claimNode('fresh', a.id);
      expect(await store.purgeUnclaimedNodes(now + 10_000, 100)).toEqual(['old4']);
      expect(await store.getNode('fresh')).not.toBeNull();
    });

    it('sets settings only once', async () => {
      expect(await store.getSetting('k')).toBeNull();
      expect(await store.setSettingIfAbsent('k', 'v1')).toBe('v1');
      expect(await store.setSettingIfAbsent('k', 'v2')).toBe('v1');
    });

    it('one-time values are taken once and expire', async () => {
      await store.putOneTime('signup', 'x', 'val', now + 1000);
      expect(await store.peekOneTime('signup', 'x', now)).toBe('val');
      expect(await store.peekOneTime('other', 'x', now)).toBeNull();
      const [t1, t2] = await Promise.all([
        store.takeOneTime('signup', 'x', now),
        store.takeOneTime('signup', 'x', now),
      ]);
      expect([t1, t2].filter((v) => v === 'val')).toHaveLength(1);
      await store.putOneTime('claim', 'y', 'v', now + 10);
      expect(await store.peekOneTime('claim', 'y', now + 11)).toBeNull();
      expect(await store.takeOneTime('claim', 'y', now + 11)).toBeNull();
    });

    it('puts a one-time value only if none is held, atomically', async () => {
      const put = () => store.putOneTimeIfAbsent('spent', 'n1', 'a', now + 1000, now);
      const results = await Promise.all([put(), put(), put()]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.peekOneTime('spent', 'n1', now)).toBe('a');
      // an expired one counts as absent
      await store.putOneTime('spent', 'n2', 'old', now + 10);
      expect(await store.putOneTimeIfAbsent('spent', 'n2', 'new', now + 1000, now + 11)).toBe(true);
      expect(await store.peekOneTime('spent', 'n2', now + 11)).toBe('new');
    });

    it('purges expired one-time values', async () => {
      await store.putOneTime('claim', 'a', 'v', now + 10);
      await store.putOneTime('claim', 'b', 'v', now + 1_000_000);
      const n = await store.purgeExpiredOneTime(now + 11);
      // SQLite drops them here; Redis drops each key itself at its expiry
      expect(n === 1 || n === 0).toBe(true);
      expect(await store.peekOneTime('claim', 'a', now + 11)).toBeNull();
      expect(await store.peekOneTime('claim', 'b', now + 11)).toBe('v');
    });

    /** A user with a deployment `name` at version 1; returns the user. */
    const deployed = async (name: string, email = `${name}@x`) => {
      const u = await user(email);
      await store.putDeployment({ name, ownerId: u.id, spec: testSpec(name), now });
      return u;
    };
    const small = { cpuMillis: 250, memoryBytes: 256 * MiB, gpu: 0 };

    it('creates deployments and updates them by name; the version counts every update', async () => {
      const a = await user('a@x');
      const b = await user('b@x');
      const created = await store.putDeployment({
        name: 'blog',
        ownerId: a.id,
        spec: testSpec('blog', { access: 'public' }),
        now,
      });
      expect(created).toMatchObject({ name: 'blog', ownerId: a.id, version: 1, createdAt: now });
      expect(created.updatedAt).toBe(now);
      const spec = testSpec('blog', { replicas: 3, access: 'public' });
      const updated = await store.putDeployment({
        name: 'blog',
        ownerId: a.id,
        spec,
        now: now + 5,
      });
      expect(updated).toMatchObject({ version: 2, createdAt: now, updatedAt: now + 5 });
      const got = await store.getDeployment('blog');
      expect(got).toEqual(updated);
      expect(got?.spec).toEqual(spec);
      expect(await store.getDeployment('nope')).toBeNull();
      await store.putDeployment({ name: 'alpha', ownerId: b.id, spec: testSpec('alpha'), now });
      await store.putDeployment({ name: 'cms', ownerId: a.id, spec: testSpec('cms'), now });
      expect((await store.listDeployments()).map((d) => d.name)).toEqual(['alpha', 'blog', 'cms']);
      expect((await store.listDeployments(a.id)).map((d) => d.name)).toEqual(['blog', 'cms']);
      expect(await store.listDeployments('nobody')).toEqual([]);
      // its name is the owner's service now, with the spec's access
      expect(await store.getService('blog')).toMatchObject({ ownerId: a.id, access: 'public' });
      expect(await store.reserveService('blog', b.id, 'public', now)).toEqual({
        ok: false,
        ownerId: a.id,
      });
    });

    it('refuses a name another user holds as a deployment or a service, and writes nothing', async () => {
      const a = await user('a@x');
      const b = await user('b@x');
      await store.putDeployment({ name: 'blog', ownerId: a.id, spec: testSpec('blog'), now });
      const taken = store.putDeployment({
        name: 'blog',
        ownerId: b.id,
        spec: testSpec('blog', { replicas: 5 }),
        now,
      });
      await expect(taken).rejects.toBeInstanceOf(NameTakenError);
      await expect(taken).rejects.toMatchObject({
        code: 'conflict',
        heldAs: 'deployment',
        ownerId: a.id,
      });
      expect(await store.getDeployment('blog')).toMatchObject({ ownerId: a.id, version: 1 });
      expect((await store.getDeployment('blog'))?.spec.replicas).toBe(1);

      await store.reserveService('wiki', b.id, 'private', now);
      await expect(
        store.putDeployment({ name: 'wiki', ownerId: a.id, spec: testSpec('wiki'), now }),
      ).rejects.toMatchObject({ code: 'conflict', heldAs: 'service', ownerId: b.id });
      expect(await store.getDeployment('wiki')).toBeNull();
      expect(await store.listDeployments(a.id)).toHaveLength(1);
      // a service of one's own takes a deployment of that name, access unchanged
      await store.reserveService('mine', a.id, 'shared', now);
      await store.putDeployment({ name: 'mine', ownerId: a.id, spec: testSpec('mine'), now });
      expect((await store.getService('mine'))?.access).toBe('shared');
      // two users at once for a new name: one gets it
      const race = await Promise.allSettled([
        store.putDeployment({ name: 'new', ownerId: a.id, spec: testSpec('new'), now }),
        store.putDeployment({ name: 'new', ownerId: b.id, spec: testSpec('new'), now }),
      ]);
      expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect((await store.getDeployment('new'))?.ownerId).toBe(
        (await store.getService('new'))?.ownerId,
      );
    });

    it('refuses a spec that does not parse or is named otherwise', async () => {
      const a = await user('a@x');
      const bad = { ...testSpec('blog'), replicas: 0 };
      await expect(
        store.putDeployment({ name: 'blog', ownerId: a.id, spec: bad, now }),
      ).rejects.toMatchObject({
        code: 'bad_request',
        message: expect.stringContaining('replicas'),
      });
      await expect(
        store.putDeployment({ name: 'blog', ownerId: a.id, spec: testSpec('wiki'), now }),
      ).rejects.toMatchObject({ code: 'bad_request', message: expect.stringContaining('"wiki"') });
      expect(await store.getDeployment('blog')).toBeNull();
      expect(await store.getService('blog')).toBeNull();
    });

    it('applies a plan: places, stops, removes; each applied plan moves the version', async () => {
      await deployed('blog');
      const first = await store.putAllocations('blog', 1, {
        now,
        place: [
          { nodeId: 'n1', resources: small },
          { nodeId: 'n2', resources: small },
        ],
      });
      expect(first.version).toBe(2);
      expect((await store.getDeployment('blog'))?.version).toBe(2);
      const [p1, p2] = first.placed;
      expect(p1).toEqual({
        id: expect.stringMatching(/^[0-9a-f]{16}$/),
        deployment: 'blog',
        nodeId: 'n1',
        state: 'pending',
        reason: null,
        resources: small,
        desired: 'run',
        createdAt: now,
        since: now,
        version: 1,
        failures: 0,
      });
      expect(await store.getAllocation(p1!.id)).toEqual(p1);
      // placed at one time: ordered by ID
      expect(await store.listAllocations({ deployment: 'blog' })).toEqual(
        [...first.placed].sort((x, y) => (x.id < y.id ? -1 : 1)),
      );
      expect(await store.listAllocations({ nodeId: 'n2' })).toEqual([p2]);
      expect(await store.listAllocations({ deployment: 'blog', nodeId: 'n1' })).toEqual([p1]);
      expect(await store.listAllocations({ deployment: 'other' })).toEqual([]);
      expect(await store.allocatedOn('n1')).toEqual(small);

      const second = await store.putAllocations('blog', 2, {
        now: now + 10,
        stop: [p1!.id],
        place: [{ nodeId: 'n1', resources: { cpuMillis: 100, memoryBytes: MiB, gpu: 1 } }],
      });
      expect(second.version).toBe(3);
      expect(await store.getAllocation(p1!.id)).toMatchObject({ desired: 'stop', version: 2 });
      // stopped ones hold nothing
      expect(await store.allocatedOn('n1')).toEqual({ cpuMillis: 100, memoryBytes: MiB, gpu: 1 });
      expect((await store.listAllocations()).map((a) => a.id)).toEqual([
        ...[p1!.id, p2!.id].sort(),
        second.placed[0]!.id,
      ]);
      const third = await store.putAllocations('blog', 3, { now, remove: [p1!.id, p2!.id] });
      expect(third).toEqual({ version: 4, placed: [] });
      expect(await store.getAllocation(p1!.id)).toBeNull();
      expect(await store.listAllocations({ nodeId: 'n2' })).toEqual([]);
      expect(await store.allocatedOn('n2')).toEqual({ cpuMillis: 0, memoryBytes: 0, gpu: 0 });
      // a spec update moves the version too: a plan from before it is stale
      await store.putDeployment({
        name: 'blog',
        ownerId: (await store.getDeployment('blog'))!.ownerId,
        spec: testSpec('blog', { replicas: 2 }),
        now,
      });
      await expect(store.putAllocations('blog', 4, { now, stop: [] })).rejects.toMatchObject({
        why: 'stale_version',
      });
    });

    it('two plans made from one version: exactly one applies, on one instance and on two', async () => {
      await deployed('blog');
      const plan = (s: Store, version: number, nodeId: string) =>
        s.putAllocations('blog', version, { now, place: [{ nodeId, resources: small }] });
      const one = await Promise.allSettled([plan(store, 1, 'n1'), plan(store, 1, 'n2')]);
      expect(one.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      const lost = one.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(PlanConflictError);
      expect(lost.reason).toMatchObject({ code: 'conflict', why: 'stale_version' });
      expect(await store.listAllocations({ deployment: 'blog' })).toHaveLength(1);

      const other = await openAgain();
      try {
        const two = await Promise.allSettled([
          plan(store, 2, 'n1'),
          plan(other, 2, 'n2'),
          plan(other, 2, 'n3'),
        ]);
        expect(two.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of two)
          if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PlanConflictError);
      } finally {
        await other.close();
      }
      expect(await store.listAllocations({ deployment: 'blog' })).toHaveLength(2);
      expect((await store.getDeployment('blog'))?.version).toBe(3);
    });

    it("refuses a plan beyond a node's room (by its report), writing nothing; its own stops free room first", async () => {
      await deployed('a');
      await deployed('b');
      await store.upsertNode({ id: 'n1', shortId: 'aaa111', name: 'one', now });
      await store.putNodeResources('n1', testResources); // 1000 millicores, 1 GiB, no GPU
      const big = { cpuMillis: 600, memoryBytes: 512 * MiB, gpu: 0 };
      const a = await store.putAllocations('a', 1, {
        now,
        place: [{ nodeId: 'n1', resources: big }],
      });
      const full = store.putAllocations('b', 1, {
        now,
        place: [
          { nodeId: 'n9', resources: small }, // no report: not checked
          { nodeId: 'n1', resources: big },
        ],
      });
      await expect(full).rejects.toBeInstanceOf(PlanConflictError);
      await expect(full).rejects.toMatchObject({
        why: 'node_full',
        message: expect.stringContaining('aaa111'),
      });
      expect(await store.listAllocations({ deployment: 'b' })).toEqual([]);
      expect((await store.getDeployment('b'))?.version).toBe(1);
      // a GPU the node does not have
      await expect(
        store.putAllocations('b', 1, {
          now,
          place: [{ nodeId: 'n1', resources: { cpuMillis: 10, memoryBytes: MiB, gpu: 1 } }],
        }),
      ).rejects.toMatchObject({ why: 'node_full' });
      // two that fit one by one but not together
      await expect(
        store.putAllocations('b', 1, {
          now,
          place: [
            { nodeId: 'n1', resources: { ...small, cpuMillis: 300 } },
            { nodeId: 'n1', resources: { ...small, cpuMillis: 300 } },
          ],
        }),
      ).rejects.toMatchObject({ why: 'node_full' });
      await store.putAllocations('b', 1, {
        now,
        place: [{ nodeId: 'n1', resources: { ...big, cpuMillis: 400 } }],
      });
      // moving a's replica on the same node: the stop frees its room before the placement
      await store.putAllocations('a', 2, {
        now,
        stop: [a.placed[0]!.id],
        place: [{ nodeId: 'n1', resources: big }],
      });
      expect(await store.allocatedOn('n1')).toEqual({ cpuMillis: 1000, memoryBytes: GiB, gpu: 0 });
    });

    it('refuses IDs of another deployment and plans for one that is gone', async () => {
      await deployed('a');
      await deployed('b');
      const [x] = (
        await store.putAllocations('a', 1, { now, place: [{ nodeId: 'n1', resources: small }] })
      ).placed;
      for (const changes of [
        { now, stop: [x!.id] },
        { now, remove: [x!.id] },
        { now, stop: ['nope'] },
      ]) {
        await expect(store.putAllocations('b', 1, changes)).rejects.toMatchObject({
          code: 'bad_request',
        });
      }
      expect(await store.getAllocation(x!.id)).toEqual(x);
      expect((await store.getDeployment('b'))?.version).toBe(1);
      await expect(store.putAllocations('gone', 1, { now })).rejects.toMatchObject({
        code: 'not_found',
      });
    });

    it("records agents' reports; ignores another node's and a removed allocation's", async () => {
      await deployed('blog');
      const [x] = (
        await store.putAllocations('blog', 1, { now, place: [{ nodeId: 'n1', resources: small }] })
      ).placed;
      const id = x!.id;
      const report = (nodeId: string, state: string, reason: string | null, at: number) =>
        store.updateAllocationState({ id, nodeId, state: state as 'running', reason, now: at });
      expect(await report('n2', 'failed', 'no', now + 1)).toBeNull();
      expect(await store.getAllocation(id)).toEqual(x);
      expect(await report('n1', 'pulling', null, now + 2)).toMatchObject({
        state: 'pulling',
        since: now + 2,
        version: 2,
      });
      // the same report again changes nothing
      expect(await report('n1', 'pulling', null, now + 3)).toMatchObject({
        since: now + 2,
        version: 2,
      });
      // a new reason, same state: since stays
      expect(await report('n1', 'pulling', '40%', now + 4)).toMatchObject({
        reason: '40%',
        since: now + 2,
        version: 3,
      });
      await report('n1', 'running', null, now + 5);
      expect(await report('n1', 'exited', 'exit code 1', now + 6)).toMatchObject({ failures: 1 });
      await report('n1', 'starting', null, now + 7);
      expect(await report('n1', 'failed', 'exit code 1 three times', now + 8)).toMatchObject({
        failures: 2,
      });
      expect(await report('n1', 'failed', 'still', now + 9)).toMatchObject({ failures: 2 });
      const got = await store.getAllocation(id);
      expect(got).toMatchObject({ state: 'failed', reason: 'still', since: now + 8, failures: 2 });
      // reports race: each lands once
      await Promise.all([
        report('n1', 'starting', 'a', now + 10),
        report('n1', 'running', 'b', now + 11),
        report('n1', 'unhealthy', 'c', now + 12),
      ]);
      expect((await store.getAllocation(id))?.version).toBe(got!.version + 3);
      // an exit the server asked for is no failure
      await store.putAllocations('blog', 2, { now, stop: [id] });
      expect(await report('n1', 'exited', null, now + 13)).toMatchObject({ failures: 2 });
      await expect(report('n1', 'sleeping', null, now)).rejects.toMatchObject({
        code: 'bad_request',
      });
      await store.putAllocations('blog', 3, { now, remove: [id] });
      expect(await report('n1', 'running', null, now + 14)).toBeNull();
      expect(await store.getAllocation(id)).toBeNull();
    });

    it("deleting a deployment removes its allocations and events, nobody else's", async () => {
      await deployed('blog');
      await deployed('wiki');
      const mine = await store.putAllocations('blog', 1, {
        now,
        place: [
          { nodeId: 'n1', resources: small },
          { nodeId: 'n2', resources: small },
        ],
      });
      const theirs = await store.putAllocations('wiki', 1, {
        now,
        place: [{ nodeId: 'n1', resources: small }],
      });
      await store.addDeploymentEvent('blog', { at: now, kind: 'placed', message: 'two' });
      await store.addDeploymentEvent('wiki', { at: now, kind: 'placed', message: 'one' });
      expect(await store.deleteDeployment('blog')).toBe(true);
      expect(await store.getDeployment('blog')).toBeNull();
      for (const a of mine.placed) expect(await store.getAllocation(a.id)).toBeNull();
      expect(await store.listAllocations({ deployment: 'blog' })).toEqual([]);
      expect(await store.listAllocations({ nodeId: 'n1' })).toEqual(theirs.placed);
      expect(await store.listAllocations()).toEqual(theirs.placed);
      expect(await store.allocatedOn('n2')).toEqual({ cpuMillis: 0, memoryBytes: 0, gpu: 0 });
      expect(await store.listDeploymentEvents('blog', 10)).toEqual([]);
      expect(await store.listDeploymentEvents('wiki', 10)).toHaveLength(1);
      expect(await store.addDeploymentEvent('blog', { at: now, kind: 'x', message: 'y' })).toBe(
        false,
      );
      expect(await store.listDeploymentEvents('blog', 10)).toEqual([]);
      expect(await store.deleteDeployment('blog')).toBe(false);
      expect((await store.listDeployments()).map((d) => d.name)).toEqual(['wiki']);
      // the name stays its owner's service
      expect(await store.getService('blog')).not.toBeNull();
      // made again from scratch
      const again = await store.putDeployment({
        name: 'blog',
        ownerId: (await store.getService('blog'))!.ownerId,
        spec: testSpec('blog'),
        now,
      });
      expect(again.version).toBe(1);
    });

    it(`keeps the newest ${MAX_DEPLOYMENT_EVENTS} events of each deployment`, async () => {
      await deployed('blog');
      await deployed('wiki');
      for (let i = 0; i < MAX_DEPLOYMENT_EVENTS + 5; i++) {
        await store.addDeploymentEvent('blog', {
          at: now + i,
          kind: 'state',
          message: `e${i}`,
          ...(i % 2 ? { allocation: 'abc' } : {}),
        });
      }
      expect(
        await store.addDeploymentEvent('wiki', { at: now, kind: 'placed', message: 'w' }),
      ).toBe(true);
      const all = await store.listDeploymentEvents('blog', 1000);
      expect(all).toHaveLength(MAX_DEPLOYMENT_EVENTS);
      expect(all[0]).toEqual({ at: now + 5, kind: 'state', message: 'e5', allocation: 'abc' });
      expect(all.at(-1)?.message).toBe(`e${MAX_DEPLOYMENT_EVENTS + 4}`);
      expect((await store.listDeploymentEvents('blog', 3)).map((e) => e.message)).toEqual([
        `e${MAX_DEPLOYMENT_EVENTS + 2}`,
        `e${MAX_DEPLOYMENT_EVENTS + 3}`,
        `e${MAX_DEPLOYMENT_EVENTS + 4}`,
      ]);
      expect(await store.listDeploymentEvents('blog', 0)).toEqual([]);
      expect(await store.listDeploymentEvents('wiki', 10)).toEqual([
        { at: now, kind: 'placed', message: 'w', allocation: null },
      ]);
    });

    it('grants deploying on a node apart from serve grants and shares', async () => {
      const a = await user('a@x');
      const b = await user('b@x');
      await store.upsertNode({ id: 'n1', shortId: 'aaa111', name: 'one', now });
      await store.upsertNode({ id: 'n2', shortId: 'bbb222', name: 'two', now });
      await store.addDeployGrant('n2', b.id);
      await store.addDeployGrant('n1', b.id);
      await store.addDeployGrant('n1', b.id);
      await store.addDeployGrant('n1', a.id);
      expect(await store.listDeployGrants('n1')).toEqual([a.id, b.id].sort());
      expect(await store.deployableNodes(b.id)).toEqual(['n1', 'n2']);
      expect(await store.hasServeGrant('n1', b.id)).toBe(false);
      expect(await store.hasShare('n1', b.id)).toBe(false);
      await store.removeDeployGrant('n1', b.id);
      expect(await store.deployableNodes(b.id)).toEqual(['n2']);
      expect(await store.listDeployGrants('n1')).toEqual([a.id]);
      await expect(store.addDeployGrant('nope', b.id)).rejects.toMatchObject({ code: 'not_found' });
      await expect(store.addDeployGrant('n1', 'nobody')).rejects.toMatchObject({
        code: 'not_found',
      });
      expect(await store.deployableNodes('nobody')).toEqual([]);
      // a node that goes takes its grants along, removed or purged unclaimed
      await store.deleteNode('n2');
      expect(await store.deployableNodes(b.id)).toEqual([]);
      expect(await store.listDeployGrants('n2')).toEqual([]);
      await store.addDeployGrant('n1', b.id);
      expect(await store.purgeUnclaimedNodes(now + 1, 10)).toEqual(['n1']);
      expect(await store.deployableNodes(b.id)).toEqual([]);
      expect(await store.deployableNodes(a.id)).toEqual([]);
      expect(await store.listDeployGrants('n1')).toEqual([]);
    });

    it('keeps the resource report with the node, wherever nodes are read', async () => {
      const a = await user('a@x');
      await store.upsertNode({ id: 'n1', shortId: 'aaa111', name: 'one', now });
      expect((await store.getNode('n1'))?.resources).toBeNull();
      expect(await store.putNodeResources('n1', testResources)).toBe(true);
      await store.claimNode('n1', a.id);
      await store.setNodeVisibility('n1', true);
      await store.upsertNode({ id: 'n1', shortId: 'aaa111', name: 'renamed', now: now + 1 });
      await store.setNodeLastSeen('n1', now + 2);
      const reads = [
        await store.getNode('n1'),
        await store.getNodeByShortId('aaa111'),
        ...(await store.listAllNodes()),
        ...(await store.listNodesByOwner(a.id)),
        ...(await store.listPublicNodes()),
      ];
      expect(reads).toHaveLength(5);
      for (const n of reads) expect(n?.resources).toEqual(testResources);
      const changed = { ...testResources, labels: { region: 'office' }, deployments: false };
      await store.putNodeResources('n1', changed);
      expect((await store.getNode('n1'))?.resources).toEqual(changed);
      // an unknown node is not made up by its report
      expect(await store.putNodeResources('ghost', testResources)).toBe(false);
      expect(await store.getNode('ghost')).toBeNull();
      expect(await store.listAllNodes()).toHaveLength(1);
      const bad = { ...testResources, capacity: { ...testResources.capacity, cpuCores: -1 } };
      await expect(store.putNodeResources('n1', bad)).rejects.toMatchObject({
        code: 'bad_request',
        message: expect.stringContaining('cpuCores'),
      });
      expect((await store.getNode('n1'))?.resources).toEqual(changed);
    });

    it('everything about deployments is there after a restart', async () => {
      const owner = await deployed('blog');
      await store.upsertNode({ id: 'n1', shortId: 'aaa111', name: 'one', now });
      await store.putNodeResources('n1', testResources);
      await store.addDeployGrant('n1', owner.id);
      const plan = await store.putAllocations('blog', 1, {
        now,
        place: [{ nodeId: 'n1', resources: small }],
      });
      const running = await store.updateAllocationState({
        id: plan.placed[0]!.id,
        nodeId: 'n1',
        state: 'running',
        reason: null,
        now: now + 1,
      });
      await store.addDeploymentEvent('blog', { at: now, kind: 'placed', message: 'on aaa111' });
      const before = await store.getDeployment('blog');
      await store.close();
      store = await openAgain();
      expect(await store.getDeployment('blog')).toEqual(before);
      expect(await store.listAllocations()).toEqual([running]);
      expect(await store.listDeploymentEvents('blog', 5)).toHaveLength(1);
      expect(await store.deployableNodes(owner.id)).toEqual(['n1']);
      expect((await store.getNode('n1'))?.resources).toEqual(testResources);
      expect(await store.allocatedOn('n1')).toEqual(small);
    });
  });
}
