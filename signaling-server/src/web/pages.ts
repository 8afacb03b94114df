/**
 * Gateway pages served by the server itself: sign-in, sign-up and the
 * authorization hop for private services (plain HTML and a few lines of
 * script: no build step needed to sign in), and the dashboard's page for its
 * routes (my nodes, public nodes, admin, add a node).
 */
import express, { type Express, type Request, type Response } from 'express';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sameOriginPath } from '@peerway/protocol';
import type { Store, User } from '../store/store';
import type { ServerKeys } from '../auth/keys';
import { WEB_DIST, serviceOrigin, type OriginConfig } from './service-origin';
import { shellToken, signRenewal, userRight } from './service-token';
import { parse as parseCookie } from 'cookie';
import { decodeJwt } from 'jose';
import { sessionCookie } from '../auth/auth';

/** Paths the dashboard answers (it routes between them in the page). */
export const DASHBOARD_ROUTES = [
  '/',
  '/nodes',
  '/public',
  '/tokens',
  '/admin',
  '/add-node',
  '/deployments',
  '/deployments/:name',
  '/jobs',
  '/jobs/:id',
  '/workers',
];

let dashboardTemplate: string | null = null;
function dashboardHtml(config: { publicUrl: string; baseDomain: string }): string | null {
  if (dashboardTemplate === null) {
    const p = join(WEB_DIST, 'dash', 'dashboard.html');
    if (!existsSync(p)) return null;
    dashboardTemplate = readFileSync(p, 'utf8');
  }
  // JSON in a script: escape "<" so no value can close the tag.
  const json = JSON.stringify(config).replace(/</g, '\\u003c');
  return dashboardTemplate.replace(
    '<head>',
    `<head><script>window.__PEERWAY_DASH__=${json}</script>`,
  );
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A gateway page: its title, its body, a link back to the dashboard's home, and its script. */
function page(title: string, body: string, script = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Peerway</title>
<style>
body{font-family:system-ui,sans-serif;background:#f6f7f9;color:#1d2430;margin:0;padding:2rem 1rem}
main{max-width:36rem;margin:0 auto;background:#fff;border-radius:12px;box-shadow:0 2px 14px rgba(0,0,0,.08);padding:1.5rem 1.75rem}
h1{font-size:1.3rem;margin-top:0} label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.55rem .6rem;border:1px solid #c9d0db;border-radius:8px;font:inherit}
button{margin-top:1rem;padding:.55rem 1rem;border-radius:8px;border:1px solid #3b6fe0;background:#3b6fe0;color:#fff;font:inherit;cursor:pointer}
.err{color:#b3261e;min-height:1.2em} code,pre{background:#eef1f5;border-radius:6px;padding:.15rem .35rem;overflow-x:auto}
pre{padding:.6rem;white-space:pre-wrap;word-break:break-all} table{width:100%;border-collapse:collapse} td,th{text-align:left;padding:.35rem;border-bottom:1px solid #e4e8ee}
a{color:#3b6fe0} .home{max-width:36rem;margin:0 auto .75rem}
</style></head><body><nav class="home" aria-label="Peerway"><a href="/"><span aria-hidden="true">← </span>Peerway home</a></nav><main>${body}</main>${script ? `<script>${script}</script>` : ''}</body></html>`;
}

const authForm = (kind: 'signin' | 'signup', next: string, invite: string, openSignup = true) =>
  page(
    kind === 'signin' ? 'Sign in' : 'Create account',
    `<h1>${kind === 'signin' ? 'Sign in to Peerway' : invite ? 'Create the admin account' : 'Create an account'}</h1>
<form id="f"><label for="email">Email</label><input id="email" name="email" type="email" autocomplete="email" required>
<label for="password">Password</label><input id="password" name="password" type="password" minlength="8" autocomplete="${kind === 'signin' ? 'current-password' : 'new-password'}" required>
<p class="err" id="err" role="alert"></p><button type="submit">${kind === 'signin' ? 'Sign in' : 'Create account'}</button></form>
<p>${kind === 'signin' ? (openSignup ? `No account? <a href="/signup?next=${encodeURIComponent(next)}">Create one</a>` : 'No account? Sign-up is by invitation on this server: ask its admin.') : `Have an account? <a href="/signin?next=${encodeURIComponent(next)}">Sign in</a>`}</p>`,
    `const next=${JSON.stringify(next).replace(/</g, '\\u003c')};const invite=${JSON.stringify(invite).replace(/</g, '\\u003c')};
const idt=new URLSearchParams(location.hash.slice(1)).get('id_token');
if(idt){history.replaceState(null,'',location.pathname+location.search);fetch('/api/auth/external',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({token:idt})}).then(async(r)=>{if(r.ok)location.assign(next);else{const j=await r.json().catch(()=>({}));document.getElementById('err').textContent=(j.error&&j.error.message)||('Error '+r.status)}})}
document.getElementById('f').onsubmit=async(e)=>{e.preventDefault();const b={email:email.value,password:password.value};if(invite)b.invite=invite;
const r=await fetch('/api/auth/${kind === 'signin' ? 'login' : 'signup'}',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify(b)});
if(r.ok){location.assign(next)}else{const j=await r.json().catch(()=>({}));document.getElementById('err').textContent=(j.error&&j.error.message)||('Error '+r.status)}};`,
  );

/** The jti of the gateway session cookie the request came with (verified by the auth middleware). */
function sessionId(req: Request, publicUrl: string): string | undefined {
  const raw = req.headers.cookie
    ? parseCookie(req.headers.cookie)[sessionCookie(publicUrl).name]
    : undefined;
  if (!raw) return undefined;
  try {
    const jti = decodeJwt(raw).jti;
    return typeof jti === 'string' ? jti : undefined;
  } catch {
    return undefined;
  }
}

export function mountPages(
  app: Express,
  deps: { config: OriginConfig & { openSignup?: boolean }; store: Store; keys: ServerKeys },
): void {
  const { config, store } = deps;
  // Where sign-in goes afterwards: a path on the gateway, never another site.
  const gatewayOrigin = new URL(config.publicUrl).origin;
  const next = (v: unknown) => sameOriginPath(v, gatewayOrigin);

  app.get('/signin', (req, res) => {
    res.type('html').send(authForm('signin', next(req.query.next), '', config.openSignup ?? true));
  });
  app.get('/signup', (req, res) => {
    res
      .type('html')
      .send(
        authForm(
          'signup',
          next(req.query.next),
          typeof req.query.invite === 'string' ? req.query.invite.slice(0, 128) : '',
        ),
      );
  });

  // The hop a private service's shell makes: who is signed in here, may they open it?
  app.get('/authorize', (req: Request, res: Response, fail) => {
    void (async () => {
      const service = String(req.query.service ?? '');
      const s = await store.getService(service);
      if (!s)
        return res
          .status(404)
          .type('html')
          .send(
            page(
              'Unknown service',
              `<h1>No service “${esc(service)}”</h1><p>Check the address.</p>`,
            ),
          );
      // A path on the service's own origin (the shell's callback goes there).
      const ret = sameOriginPath(req.query.return, serviceOrigin(config, service));
      const user = req.user as User | null | undefined;
      if (!user) return res.redirect(302, `/signin?next=${encodeURIComponent(req.originalUrl)}`);
      // The user's own right (owner, or a share), apart from anyone's right to a public service.
      const right = await userRight(store, service, user.id);
      if (!right) {
        return res
          .status(403)
          .type('html')
          .send(
            page(
              'No access',
              `<h1>No access to “${esc(service)}”</h1><p>You are signed in as <b>${esc(user.email)}</b>, and this service has not been shared with you. Ask its owner to share it.</p><p><a href="/signin?next=${encodeURIComponent(req.originalUrl)}">Sign in as someone else</a></p>`,
            ),
          );
      }
      // A short token, and (for the user's own right) the credential the
      // shell renews it with on the service origin, which never sees the
      // gateway cookie. Both in the fragment: never sent to any server.
      const token = await shellToken(deps.keys, config.publicUrl, service, user.id, right);
      const renew =
        right === 'private'
          ? `&renew=${encodeURIComponent(await signRenewal(deps.keys, config.publicUrl, service, user.id, sessionId(req, config.publicUrl)))}`
          : '';
      res.setHeader('Cache-Control', 'no-store');
      res.redirect(
        302,
        `${serviceOrigin(config, service)}/__peerway/callback#token=${encodeURIComponent(token)}${renew}&return=${encodeURIComponent(ret)}`,
      );
    })().catch(fail);
  });

  // The dashboard (web-client/dashboard.html, built to dist/dash): its routes get
  // the page, its assets live under /dash/.
  app.use('/dash', express.static(join(WEB_DIST, 'dash'), { index: false, maxAge: '1h' }));
  for (const path of DASHBOARD_ROUTES)
    app.get(path, (_req, res) => {
      const html = dashboardHtml({ publicUrl: config.publicUrl, baseDomain: config.baseDomain });
      res.setHeader('Cache-Control', 'no-store');
      if (!html)
        return void res
          .status(503)
          .type('text/plain')
          .send('The dashboard is not built: run `npm run build -w @peerway/web-client`.\n');
      res.type('html').send(html);
    });
}
