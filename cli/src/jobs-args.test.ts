import { describe, expect, it } from 'vitest';
import { JOB_STATES } from '@peerway/protocol';
import {
  JOB_EXIT,
  describeError,
  exitFor,
  parseInput,
  parseWaitTimeout,
  submissionBody,
  type SubmitFlags,
} from './jobs-args';

const flags = (over: Partial<SubmitFlags> = {}): SubmitFlags => ({
  type: 'simulation',
  require: [],
  model: [],
  ...over,
});
const noFiles = (file: string): string => {
  throw Object.assign(new Error(`no ${file}`), { code: 'ENOENT' });
};

describe('submissionBody', () => {
  it('sends only what was given (the server fills in the defaults)', () => {
    expect(submissionBody(flags(), noFiles)).toEqual({ ok: true, value: { type: 'simulation' } });
  });

  it('puts every flag at its field', () => {
    const r = submissionBody(
      flags({
        type: 'comfyui',
        input: '{"prompt":{"3":{"class_type":"KSampler"}}}',
        priority: '-5',
        require: ['region=home', 'tier=a=b'],
        gpu: '2',
        memory: '8GiB',
        service: 'render',
        model: ['sdxl.safetensors', 'lora.safetensors'],
        idempotencyKey: 'k-1',
        timeout: '30',
        maxAttempts: '5',
      }),
      noFiles,
    );
    expect(r).toEqual({
      ok: true,
      value: {
        type: 'comfyui',
        input: { prompt: { '3': { class_type: 'KSampler' } } },
        priority: -5,
        timeoutS: 30,
        maxAttempts: 5,
        idempotencyKey: 'k-1',
        requirements: {
          service: 'render',
          gpu: 2,
          memory: '8GiB',
          models: ['sdxl.safetensors', 'lora.safetensors'],
          // only the first "=" splits: a value may hold one
          labels: { region: 'home', tier: 'a=b' },
        },
      },
    });
  });

  it('names the flag that is wrong, in words', () => {
    const bad = (over: Partial<SubmitFlags>) => {
      const r = submissionBody(flags(over), noFiles);
      return r.ok ? 'accepted' : r.message;
    };
    expect(bad({ priority: 'high' })).toBe('--priority high: give a whole number');
    expect(bad({ priority: '1.5' })).toBe('--priority 1.5: give a whole number');
    expect(bad({ gpu: '' })).toBe('--gpu : give a whole number');
    expect(bad({ maxAttempts: '3x' })).toBe('--max-attempts 3x: give a whole number');
    expect(bad({ require: ['region'] })).toMatch(/--require region: write LABEL=VALUE/);
    expect(bad({ require: ['=home'] })).toMatch(/--require =home: write LABEL=VALUE/);
    expect(bad({ require: ['a=1', 'a=2'] })).toBe('--require a is given twice');
    expect(bad({ input: '{delayMs: 5}' })).toMatch(
      /^--input is not JSON: .* \(JSON, or @FILE for a file of JSON\)$/,
    );
    expect(bad({ input: '@' })).toMatch(/name a file after "@"/);
    expect(bad({ input: '@/nope.json' })).toBe(
      '--input @/nope.json: cannot read /nope.json: ENOENT',
    );
  });
});

describe('parseInput', () => {
  it('reads @FILE and @- through the reader', () => {
    const read = (f: string) => (f === '-' ? '[1,2]' : `{"file":"${f}"}`);
    expect(parseInput('@in.json', read)).toEqual({ ok: true, value: { file: 'in.json' } });
    expect(parseInput('@-', read)).toEqual({ ok: true, value: [1, 2] });
    expect(parseInput('@-', () => 'nope')).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^standard input is not JSON/),
    });
    expect(parseInput('@in.json', () => '{')).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^in\.json is not JSON/),
    });
  });
});

describe('describeError', () => {
  it('names the flag beside the field the server named', () => {
    expect(describeError({ path: 'requirements.memory', message: 'not a size' })).toBe(
      'requirements.memory (--memory): not a size',
    );
    expect(describeError({ path: 'requirements.labels.Bad key', message: 'label keys' })).toBe(
      'requirements.labels.Bad key (--require): label keys',
    );
    expect(describeError({ path: 'input.delayMs', message: 'too big' })).toBe(
      'input.delayMs (--input): too big',
    );
    expect(describeError({ path: 'backoff.type', message: 'no' })).toBe('backoff.type: no');
    expect(describeError({ path: '', message: 'too large' })).toBe('too large');
  });
});

describe('exit codes', () => {
  it('0 succeeded, 1 dead or cancelled, and a wait goes on through failed (it retries)', () => {
    const codes = Object.fromEntries(JOB_STATES.map((s) => [s, exitFor(s)]));
    expect(codes).toEqual({
      queued: null,
      leased: null,
      running: null,
      failed: null,
      succeeded: JOB_EXIT.ok,
      dead: JOB_EXIT.failed,
      cancelled: JOB_EXIT.failed,
    });
    expect(JOB_EXIT).toEqual({ ok: 0, failed: 1, timeout: 2 });
  });

  it('--wait-timeout is seconds > 0, or none', () => {
    expect(parseWaitTimeout(undefined)).toEqual({ ok: true, value: undefined });
    expect(parseWaitTimeout('1.5')).toEqual({ ok: true, value: 1500 });
    expect(parseWaitTimeout('0')).toMatchObject({ ok: false });
    expect(parseWaitTimeout('soon')).toMatchObject({
      ok: false,
      message: '--wait-timeout soon: give seconds, e.g. 120',
    });
  });
});
