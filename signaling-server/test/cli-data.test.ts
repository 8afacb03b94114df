/**
 * `peerway-server` data commands as an operator runs them (the real bin):
 * they never make an empty data directory by mistake (tokens without
 * --data-dir used to create ./.peerway-data wherever they ran), refuse an
 * email that is none, and both `--version` and `--help` say what to type.
 */
import { afterAll, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomEmail, randomPassword } from './helpers';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../bin/peerway-server.js');
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'pw-cli-data-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The bin, run in `cwd` with no data directory from the environment. */
const server = (cwd: string, ...args: string[]) => {
  const env: NodeJS.ProcessEnv = { ...process.env, PEERWAY_LOG_LEVEL: 'silent' };
  delete env.PEERWAY_DATA_DIR;
  delete env.PEERWAY_REDIS_URL;
  return run(process.execPath, [BIN, ...args], { cwd, env, timeout: 30_000 });
};

it('data commands without --data-dir refuse, in words, and make no directory', async () => {
  const cwd = tmp();
  const commands = [
    ['tokens', 'create', '--email', 'a@example.com'],
    ['tokens', 'list', '--email', 'a@example.com'],
    ['tokens', 'revoke', 'abc', '--email', 'a@example.com'],
    ['users', 'create', '--email', 'a@example.com', '--password', randomPassword()],
  ];
  await Promise.all(
    commands.map((args) =>
      expect(server(cwd, ...args), args.join(' ')).rejects.toMatchObject({
        stderr: expect.stringMatching(
          new RegExp(`no Peerway data in ${join(cwd, '.peerway-data')}: pass --data-dir`),
        ),
      }),
    ),
  );
  expect(readdirSync(cwd)).toEqual([]);
}, 60_000);

it('tokens refuse a named directory no server has used, and leave it uncreated', async () => {
  const dir = join(tmp(), 'nothing-here');
  await expect(
    server(tmp(), 'tokens', 'create', '--email', 'a@example.com', '--data-dir', dir),
  ).rejects.toMatchObject({ stderr: expect.stringMatching(/no Peerway data in .*nothing-here/) });
  expect(existsSync(dir)).toBe(false);
});

it('users create starts a store in a directory named on purpose, then tokens work there', async () => {
  const dir = join(tmp(), 'seeded');
  const email = randomEmail();
  await server(
    tmp(),
    'users',
    'create',
    '--email',
    email,
    '--password',
    randomPassword(),
    '--data-dir',
    dir,
  );
  const { stdout } = await server(tmp(), 'tokens', 'create', '--email', email, '--data-dir', dir);
  expect(stdout.trim()).toMatch(/^pwt_[0-9a-f]+_/);
}, 60_000);

it('users create refuses an email that is none, before touching the store', async () => {
  const dir = join(tmp(), 'store');
  await expect(
    server(
      tmp(),
      'users',
      'create',
      '--email',
      'notanemail',
      '--password',
      randomPassword(),
      '--data-dir',
      dir,
    ),
  ).rejects.toMatchObject({
    stderr: expect.stringMatching(/--email notanemail: not an email address/),
  });
  expect(existsSync(dir)).toBe(false);
});

it('--version prints the package version; --help says how to install and get more help', async () => {
  const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')) as {
    version: string;
  };
  expect((await server(tmp(), '--version')).stdout.trim()).toBe(pkg.version);
  const help = (await server(tmp(), '--help')).stdout;
  expect(help).toMatch(/npm install -g @peerway\/signaling-server/);
  expect(help).toMatch(/peerway-server <command> --help/);
  expect(help).toMatch(/--data-dir/);
});
