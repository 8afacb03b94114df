import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadConfig,
  loadOrCreateIdentity,
  normaliseTarget,
  parseServiceFlag,
  saveConfig,
  serviceUrl,
} from './home';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'pw-home-'));
  dirs.push(d);
  return d;
};
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('targets', () => {
  it('normalises ports, host:port and URLs', () => {
    expect(normaliseTarget('3000')).toBe('http://127.0.0.1:3000');
    expect(normaliseTarget('localhost:8080')).toBe('http://localhost:8080');
    expect(normaliseTarget('https://10.0.0.5:8443/app/')).toBe('https://10.0.0.5:8443/app');
  });
  it('refuses what is not an http(s) origin', () => {
    expect(() => normaliseTarget('ftp://x')).toThrow(/http or https/);
    expect(() => normaliseTarget('http://user:pw@x')).toThrow(/credentials/);
    expect(() => normaliseTarget('http://[bad')).toThrow(/not a target/);
  });
});

describe('--service flags', () => {
  it('parses NAME=TARGET with options', () => {
    expect(parseServiceFlag('web=3000')).toEqual({
      name: 'web',
      target: 'http://127.0.0.1:3000',
      public: false,
      timeoutMs: 30_000,
    });
    expect(parseServiceFlag('api=localhost:8080,public,timeoutMs=5000')).toMatchObject({
      target: 'http://localhost:8080',
      public: true,
      timeoutMs: 5000,
    });
  });
  it('says what is wrong', () => {
    expect(() => parseServiceFlag('3000')).toThrow(/use NAME=TARGET/);
    expect(() => parseServiceFlag('web=3000,pubic')).toThrow(/unknown option "pubic"/);
    expect(() => parseServiceFlag('Web=3000')).toThrow(/DNS label/);
    expect(() => parseServiceFlag('web=ftp://x')).toThrow(/http or https/);
    expect(() => parseServiceFlag('web=3000,timeoutMs=5')).toThrow(/timeoutMs/i);
  });
  it('names the public URL after the server host', () => {
    expect(serviceUrl('http://localhost:8080', 'wiki')).toBe('http://wiki.localhost:8080/');
    expect(serviceUrl('https://peerway.example', 'wiki')).toBe('https://wiki.peerway.example/');
  });
});

describe('home directory', () => {
  it('makes the identity once, mode 0600, and keeps it', () => {
    const d = tmp();
    const a = loadOrCreateIdentity(d);
    expect(statSync(join(d, 'agent.json')).mode & 0o777).toBe(0o600);
    expect(loadOrCreateIdentity(d).nodeId).toBe(a.nodeId);
  });
  it('names the file and field of a bad config', () => {
    const d = tmp();
    writeFileSync(
      join(d, 'config.json'),
      JSON.stringify({ services: [{ name: 'Bad Name', target: '3000' }] }),
    );
    expect(() => loadConfig(d)).toThrow(
      /config\.json: services\.0\.name: a service name is a DNS label/,
    );
    writeFileSync(join(d, 'config.json'), '{oops');
    expect(() => loadConfig(d)).toThrow(/config\.json is not valid JSON/);
    saveConfig(
      {
        services: [
          { name: 'a', target: '1' },
          { name: 'a', target: '2' },
        ],
      },
      d,
    );
    expect(() => loadConfig(d)).toThrow(/declared twice/);
    writeFileSync(join(d, 'agent.json'), '{"privateKey":5}');
    expect(() => loadOrCreateIdentity(d)).toThrow(/agent\.json has no privateKey/);
  });
});
