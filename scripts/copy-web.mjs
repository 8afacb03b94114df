#!/usr/bin/env node
// Part of @peerway/signaling-server's build: builds the web client (the
// dashboard, the service shell, its worker and shim) and copies it to
// signaling-server/web/, which the published package ships and the built
// server serves (src/web/service-origin.ts WEB_DIST).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const from = join(root, 'web-client/dist');
const to = join(root, 'signaling-server/web');
execFileSync('npm', ['run', 'build', '-w', '@peerway/web-client'], { cwd: root, stdio: 'inherit' });
if (!existsSync(join(from, 'shell.html')) || !existsSync(join(from, 'dash/dashboard.html')))
  throw new Error(`the web client build left no shell.html or dash/dashboard.html in ${from}`);
rmSync(to, { recursive: true, force: true });
cpSync(from, to, { recursive: true });
console.log(`web client copied to ${to}`);
