/**
 * The store contract: every Store implementation must pass this suite
 * (SQLite now, Redis for several server instances). Call it from a test file
 * with a factory that returns a fresh, migrated, empty store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from './store';

export function runStoreContract(name: string, makeStore: () => Promise<Store>): void {
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
  });
}
