/**
 * A node owner's first commands, as typed (the real bin): a server URL
 * without its scheme is refused before anything is saved; a config.json
 * broken by hand makes every command say which file, what is wrong and how
 * to fix it, and `init` still works on it, keeping what is valid; `expose`
 * errors speak of `expose NAME TARGET`; `--version` and `--help` say what
 * they should.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Fixture } from './helpers';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../bin/peerway-agent.js');
const fx = new Fixture();
afterAll(() => fx.cleanup());

const agentCli = (home: string, args: string[]) =>
  run(process.execPath, [BIN, ...args], {
    env: { ...process.env, PEERWAY_HOME: home, PEERWAY_LOG_LEVEL: 'silent' },
    timeout: 30_000,
  });
const failure = (home: string, args: string[]) =>
  agentCli(home, args).then(
    (r) => {
      throw new Error(`${args.join(' ')} succeeded: ${r.stdout}`);
    },
    (err: { stderr: string; code: number }) => err,
  );

it('init refuses a server URL without its scheme, says what to type, and saves nothing', async () => {
  const home = fx.tmp('pw-first-');
  const err = await failure(home, ['init', '--server', 'localhost:8080']);
  expect(err.code).toBe(1);
  expect(err.stderr).toMatch(/"localhost:8080" is not a server URL/);
  expect(err.stderr).toMatch(/Type http:\/\/localhost:8080/);
  expect(existsSync(join(home, 'config.json'))).toBe(false);
  // with the scheme it works, and the saved config works for the next command
  await agentCli(home, ['init', '--server', 'http://localhost:8080']);
  await agentCli(home, ['expose', 'wiki', '3000']);
  expect(JSON.parse(readFileSync(join(home, 'config.json'), 'utf8'))).toMatchObject({
    server: 'http://localhost:8080',
  });
});

describe('a broken config.json', () => {
  const cases: [string, string, RegExp][] = [
    ['bad JSON', '{"server": "http://localhost:8080",', /is not valid JSON/],
    [
      'a server URL without its scheme',
      JSON.stringify({ server: 'localhost:8080', name: 'attic' }),
      /server: "localhost:8080" is not a server URL: .*Type http:\/\/localhost:8080/,
    ],
    [
      'wrong types',
      JSON.stringify({ server: 'http://localhost:8080', name: 'attic', services: 'wiki' }),
      /services: .*expected array/i,
    ],
  ];
  for (const [what, text, problem] of cases) {
    it(`(${what}): every command says which file, what and how to fix it; init rewrites it`, async () => {
      const home = fx.tmp('pw-first-');
      const path = join(home, 'config.json');
      writeFileSync(path, text);
      const commands = [
        ['status'],
        ['expose', 'wiki', '3000'],
        ['login', `pwt_${'0'.repeat(12)}_${'A'.repeat(32)}`],
        ['claim-url'],
        ['run'],
      ];
      const errors = await Promise.all(commands.map((args) => failure(home, args)));
      errors.forEach((err, i) => {
        const cmd = commands[i]![0];
        expect(err.stderr, cmd).toContain(path);
        expect(err.stderr, cmd).toMatch(problem);
        expect(err.stderr, cmd).toMatch(/`peerway-agent init --server URL` to rewrite it/);
      });
      expect(readFileSync(path, 'utf8')).toBe(text); // nothing lost by the refusals
      const init = await agentCli(home, ['init', '--server', 'http://127.0.0.1:9']);
      expect(init.stdout).toMatch(/was broken; a copy of it is in .*config\.json\.broken/);
      expect(readFileSync(`${path}.broken`, 'utf8')).toBe(text);
      const cfg = JSON.parse(readFileSync(path, 'utf8'));
      expect(cfg.server).toBe('http://127.0.0.1:9');
      if (what !== 'bad JSON') expect(cfg.name).toBe('attic'); // the valid fields are kept
      expect((await agentCli(home, ['status'])).stdout).toMatch(/server\s+http:\/\/127\.0\.0\.1:9/);
    }, 90_000);
  }
});

it('expose errors speak of expose NAME TARGET and say what a valid name is', async () => {
  const home = fx.tmp('pw-first-');
  const err = await failure(home, ['expose', 'My_Blog', '3000']);
  expect(err.stderr).not.toMatch(/--service/);
  expect(err.stderr).toMatch(/expose My_Blog 3000: "My_Blog" is not a valid service name/);
  expect(err.stderr).toMatch(/lower-case letters a-z, digits 0-9 and "-"/);
  expect(err.stderr).toMatch(/try "my-blog"/);
  expect(err.stderr).toMatch(/peerway-agent expose NAME TARGET/);
  const target = await failure(home, ['expose', 'blog', 'ftp://x']);
  expect(target.stderr).toMatch(/expose blog ftp:\/\/x: .*http or https/);
  expect(target.stderr).not.toMatch(/--service/);
  expect(existsSync(join(home, 'config.json'))).toBe(false);
});

it('--version prints the package version; --help says how to install and get more help', async () => {
  const home = fx.tmp('pw-first-');
  const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')) as {
    version: string;
  };
  expect((await agentCli(home, ['--version'])).stdout.trim()).toBe(pkg.version);
  const help = (await agentCli(home, ['--help'])).stdout;
  expect(help).toMatch(/npm install -g @peerway\/node-agent/);
  expect(help).toMatch(/peerway-agent <command> --help/);
  for (const cmd of ['init', 'login', 'expose', 'run', 'status', 'claim-url'])
    expect(help).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
});
