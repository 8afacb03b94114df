/**
 * The comfyui connector against a stand-in that speaks ComfyUI's documented
 * API (/prompt, /ws, /history, /view, /models, /interrupt, /queue:
 * e2e/fixtures/comfyui-standin.ts). ComfyUI itself cannot run here (Python,
 * PyTorch, gigabytes of models, a GPU), so this checks the connector
 * speaks that API as ComfyUI does; it is no test of ComfyUI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { parseJobInput } from '@peerway/protocol';
import { generateIdentity } from '@peerway/protocol/node';
import { ComfyUiStandIn, txt2imgWorkflow } from '../../e2e/fixtures/comfyui-standin';
import { ComfyUiConnector } from '../src/jobs/connectors/comfyui';
import type { JobContext, JobProgressReport } from '../src/jobs/connectors/types';
import { JobError } from '../src/jobs/errors';
import { Agent } from '../src/agent';
import { JobsNode } from '../src/jobs';
import { FakeJobServer } from './support/jobs-server';

const log = pino({ level: 'silent' });

function ctx(signal = new AbortController().signal) {
  const progress: JobProgressReport[] = [];
  const c: JobContext = {
    id: 'j1',
    attempt: 1,
    requirements: { models: [], labels: {} },
    signal,
    progress: (p) => progress.push(p),
    log,
  };
  return { c, progress };
}

const input = (workflow: unknown) => {
  const r = parseJobInput('comfyui', { workflow });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.input;
};

describe('the comfyui connector', () => {
  const comfy = new ComfyUiStandIn();
  let connector: ComfyUiConnector;

  beforeAll(async () => {
    await comfy.start();
    connector = new ComfyUiConnector({ url: comfy.url });
  });
  afterAll(() => comfy.close());

  it('reports the models ComfyUI has, from /models', async () => {
    const d = await connector.describe();
    expect(d.type).toBe('comfyui');
    expect(d.models.sort()).toEqual([...comfy.checkpoints, ...comfy.loras].sort());
  });

  it('reads the checkpoints from /object_info when ComfyUI has no /models', async () => {
    const old = new ComfyUiStandIn({ withoutModelsEndpoint: true });
    await old.start();
    try {
      const d = await new ComfyUiConnector({ url: old.url }).describe();
      expect(d.models.sort()).toEqual([...old.checkpoints].sort());
    } finally {
      await old.close();
    }
  });

  it('queues a workflow, follows its progress and fetches its images', async () => {
    const { c, progress } = ctx();
    const out = await connector.run(input(txt2imgWorkflow({ steps: 5, batch: 2 })), c);
    expect(comfy.queued.at(-1)?.clientId).toMatch(/^[0-9a-f]{32}$/);
    const promptId = comfy.queued.at(-1)!.promptId;
    expect(progress.map((p) => p.value)).toEqual([1, 2, 3, 4, 5]);
    expect(progress.every((p) => p.max === 5)).toBe(true);
    expect(out.output).toMatchObject({
      promptId,
      images: [
        {
          node: '9',
          type: 'output',
          subfolder: '',
          file: expect.stringMatching(/^peerway_\d+_\.png$/),
        },
        { node: '9', type: 'output' },
      ],
    });
    expect(out.files).toHaveLength(2);
    for (const f of out.files!) {
      expect(f.contentType).toBe('image/png');
      expect(f.data.subarray(1, 4).toString()).toBe('PNG');
    }
    expect(out.files![0]!.data.equals(out.files![1]!.data)).toBe(false);
  });

  it("fails for good with ComfyUI's own words when it refuses the workflow", async () => {
    const { c } = ctx();
    const err = await connector
      .run(input(txt2imgWorkflow({ ckpt: 'missing.safetensors' })), c)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JobError);
    expect((err as JobError).retryable).toBe(false);
    expect((err as JobError).message).toMatch(
      /Prompt outputs failed validation.*node 4 \(CheckpointLoaderSimple\): Value not in list: ckpt_name: 'missing.safetensors'/,
    );
    const unknown = await connector
      .run(input({ '1': { class_type: 'NoSuchNode', inputs: {} } }), c)
      .catch((e: unknown) => e);
    expect((unknown as JobError).message).toMatch(/node NoSuchNode does not exist/);
  });

  it('reports an execution error with its node', async () => {
    const { c } = ctx();
    const wf = { ...txt2imgWorkflow(), '10': { class_type: 'FailingNode', inputs: {} } };
    const err = (await connector.run(input(wf), c).catch((e: unknown) => e)) as JobError;
    expect(err).toBeInstanceOf(JobError);
    expect(err.message).toMatch(
      /node 10 \(FailingNode\) failed: RuntimeError: the stand-in was asked to fail here/,
    );
    expect(err.retryable).toBe(false);
  });

  it('takes an aborted prompt off the queue and interrupts it', async () => {
    comfy.stepMs = 200;
    try {
      const abort = new AbortController();
      const { c, progress } = ctx(abort.signal);
      const interrupts = comfy.interrupts;
      const run = connector.run(input(txt2imgWorkflow({ steps: 50 })), c);
      await expect.poll(() => progress.length, { timeout: 5_000 }).toBeGreaterThan(0);
      abort.abort('cancelled by its submitter');
      const err = (await run.catch((e: unknown) => e)) as JobError;
      expect(err.message).toBe('cancelled by its submitter');
      await expect.poll(() => comfy.interrupts).toBe(interrupts + 1);
      expect(comfy.deleted).toContain(comfy.queued.at(-1)!.promptId);
    } finally {
      comfy.stepMs = 5;
    }
  });

  it('says so when ComfyUI is not there', async () => {
    const gone = new ComfyUiConnector({ url: 'http://127.0.0.1:9' });
    await expect(gone.describe()).rejects.toThrow(/did not answer \/models/);
    const err = (await gone
      .run(input(txt2imgWorkflow()), ctx().c)
      .catch((e: unknown) => e)) as JobError;
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/could not open ComfyUI's websocket/);
  });

  it('runs as a worker: models in its capabilities, images uploaded before the result', async () => {
    const server = new FakeJobServer();
    await server.start();
    let a: Agent | null = null;
    const jobs = new JobsNode({
      settings: { enabled: true, concurrency: 1, connectors: { comfyui: { url: comfy.url } } },
      connectors: [new ComfyUiConnector({ url: comfy.url })],
      serverUrl: server.url,
      send: (m) => a?.conn.send(m),
      resources: () => null,
      log,
    });
    a = new Agent({
      serverUrl: server.url,
      identity: generateIdentity(),
      name: 'gpu',
      services: [],
      log,
      jobs,
    });
    try {
      a.start();
      const w = await server.next('worker');
      expect(w.capabilities?.connectors[0]?.models).toContain('sd_xl_base_1.0.safetensors');
      await server.next('job-pull');
      server.send({
        type: 'job-lease',
        id: 'img1',
        attempt: 1,
        jobType: 'comfyui',
        input: { workflow: txt2imgWorkflow({ steps: 2 }) },
        requirements: { models: ['sd_xl_base_1.0.safetensors'], labels: {} },
        timeoutS: 60,
        leaseMs: 30_000,
        leaseToken: 'lease-img1',
      });
      const result = await server.next('job-result', (m) => m.id === 'img1');
      const files = server.uploads.filter((u) => u.id === 'img1');
      expect(files).toHaveLength(1);
      expect(files[0]).toMatchObject({ token: 'lease-img1', contentType: 'image/png' });
      expect(files[0]!.what).toMatch(/^files\/peerway_\d+_\.png$/);
      expect(result.output).toMatchObject({
        images: [{ file: files[0]!.what.slice('files/'.length) }],
      });
      expect(
        server
          .all('job-progress')
          .filter((p) => p.id === 'img1')
          .at(-1),
      ).toMatchObject({ value: 2, max: 2 });
    } finally {
      a.stop();
      await server.close();
    }
  });
});
