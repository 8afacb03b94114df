/**
 * Services: the caller's list, each one's access, shares (who may open it)
 * and serving grants (whose nodes may serve it), and the service access
 * tokens a shell presents to open a session.
 */
import type { Request, Response } from 'express';
import { z } from 'zod';
import { PeerwayError, isValidServiceName } from '@peerway/protocol';
import { signServiceAccessToken } from '@peerway/protocol/node';
import type { ServerKeys } from '../../auth/keys';
import type { Store } from '../../store/store';
import { needUser } from '../caller';
import { body, route } from '../errors';
import type { RouteModule } from '../route-module';
import type { Views } from '../views';

const AccessBody = z.object({ access: z.enum(['private', 'public', 'shared']) });
const ShareBody = z.object({ email: z.string().max(320) });

/** The service routes. */
export function serviceRoutes(deps: {
  store: Pick<
    Store,
    | 'getService'
    | 'getUserByEmail'
    | 'setServiceAccess'
    | 'addShare'
    | 'removeShare'
    | 'hasShare'
    | 'addServeGrant'
    | 'removeServeGrant'
  >;
  views: Pick<Views, 'myServices'>;
  /** The key service access tokens are signed with, and their `iss` (the public URL). */
  tokens: { privateKey: ServerKeys['accessPrivateKey']; issuer: string };
  /** Told when a service's access, shares or serving grants change, so sessions that lost their right end. */
  onServiceChanged?(name: string): void;
}): RouteModule {
  const { store, views } = deps;
  return (r) => {
    const ownService = async (req: Request) => {
      const user = needUser(req);
      const s = await store.getService(String(req.params.name));
      if (!s || s.ownerId !== user.id)
        throw new PeerwayError('not_found', `you have no service ${req.params.name}`);
      return s;
    };

    r.get(
      '/api/services',
      route(async (req, res) => {
        res.json({ services: await views.myServices(needUser(req)) });
      }),
    );
    r.put(
      '/api/services/:name/access',
      route(async (req, res) => {
        const s = await ownService(req);
        await store.setServiceAccess(s.name, body(AccessBody, req).access);
        deps.onServiceChanged?.(s.name);
        res.json({ ok: true });
      }),
    );
    r.post(
      '/api/services/:name/shares',
      route(async (req, res) => {
        const s = await ownService(req);
        const u = await store.getUserByEmail(body(ShareBody, req).email);
        if (!u) throw new PeerwayError('not_found', 'no user with that email on this server');
        await store.addShare(s.name, u.id);
        res.status(201).json({ ok: true });
      }),
    );
    r.delete(
      '/api/services/:name/shares/:email',
      route(async (req, res) => {
        const s = await ownService(req);
        const u = await store.getUserByEmail(String(req.params.email));
        if (u) await store.removeShare(s.name, u.id);
        deps.onServiceChanged?.(s.name);
        res.json({ ok: true });
      }),
    );
    // The right to serve: a user's nodes may announce the service and take its
    // visitors (with their tokens). A separate grant from a share, which only
    // lets a user open it.
    r.post(
      '/api/services/:name/servers',
      route(async (req, res) => {
        const s = await ownService(req);
        const u = await store.getUserByEmail(body(ShareBody, req).email);
        if (!u) throw new PeerwayError('not_found', 'no user with that email on this server');
        if (u.id === s.ownerId)
          throw new PeerwayError('bad_request', 'your own nodes serve your services already');
        await store.addServeGrant(s.name, u.id);
        deps.onServiceChanged?.(s.name);
        res.status(201).json({ ok: true });
      }),
    );
    r.delete(
      '/api/services/:name/servers/:email',
      route(async (req, res) => {
        const s = await ownService(req);
        const u = await store.getUserByEmail(String(req.params.email));
        if (u) await store.removeServeGrant(s.name, u.id);
        deps.onServiceChanged?.(s.name);
        res.json({ ok: true });
      }),
    );
    r.options('/api/services/:name/access-token', (_req, res) => {
      cors(res);
      res.sendStatus(204);
    });
    r.post(
      '/api/services/:name/access-token',
      route(async (req, res) => {
        cors(res);
        const name = String(req.params.name);
        const s = isValidServiceName(name) ? await store.getService(name) : null;
        if (!s)
          throw new PeerwayError('service_unknown', `there is no service "${name}" on this server`);
        // The caller's own right (owner, or a share while shared), apart from
        // anyone's right to a public service: a node that declared the service
        // private serves only tokens minted for an own right.
        const user = s.access === 'public' ? req.user : needUser(req);
        const ownRight =
          !!user &&
          (user.id === s.ownerId ||
            (s.access === 'shared' && (await store.hasShare(name, user.id))));
        if (!ownRight && s.access !== 'public')
          throw new PeerwayError(
            'forbidden',
            `${user!.email} has no access to "${name}"; ask its owner to share it`,
          );
        const token = await signServiceAccessToken({
          privateKey: deps.tokens.privateKey,
          issuer: deps.tokens.issuer,
          service: name,
          subject: user?.id ?? 'anonymous',
          access: ownRight ? 'private' : 'public',
        });
        res.json({ token, service: name });
      }),
    );
  };
}

function cors(res: Response): void {
  // Service origins (other subdomains) fetch access tokens for public
  // services; never with credentials, so `*` exposes nothing.
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type');
  res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
}
