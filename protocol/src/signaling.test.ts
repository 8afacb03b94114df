import { describe, expect, it } from 'vitest';
import { MAX_SIGNALING_MESSAGE_BYTES, parseClientToServer, parseServerToClient } from './signaling';
import { parseAgentToServer, parseServerToAgent } from './signaling-agent';

const NODE_ID = 'A'.repeat(43);
const SIG = 'B'.repeat(86);

describe('signaling parsers', () => {
  it('accept every valid agent → server message', () => {
    const msgs = [
      {
        type: 'auth',
        nodeId: NODE_ID,
        timestamp: 1,
        signature: SIG,
        name: 'n',
        services: [{ name: 'blog' }],
      },
      {
        type: 'heartbeat',
        load: { sessions: 1, cpu: 0.5, rssBytes: 10, txBytesPerSec: 1, rxBytesPerSec: 2 },
      },
      { type: 'services', services: [] },
      { type: 'drain', draining: true },
      { type: 'answer', sessionId: 's1', sdp: 'v=0' },
      {
        type: 'candidate',
        sessionId: 's1',
        candidate: { candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 },
      },
      { type: 'candidate', sessionId: 's1', candidate: null },
      { type: 'session-reject', sessionId: 's1', code: 'expired', message: 'm' },
      { type: 'session-closed', sessionId: 's1' },
      {
        type: 'session-stats',
        sessionId: 's1',
        stats: {
          localCandidateType: 'relay',
          remoteCandidateType: 'host',
          protocol: 'udp',
          relayProtocol: 'tcp',
        },
      },
    ];
    for (const m of msgs)
      expect(parseAgentToServer(JSON.stringify(m))).toMatchObject({
        ok: true,
        value: { type: m.type },
      });
    const auth = parseAgentToServer(JSON.stringify(msgs[0]));
    expect(auth.ok && auth.value.type === 'auth' && auth.value.services[0]!.public).toBe(false);
  });

  it('accept every valid client and server message', () => {
    expect(parseClientToServer('{"type":"open","ref":"r","service":"blog","token":"t"}').ok).toBe(
      true,
    );
    expect(parseClientToServer('{"type":"offer","sessionId":"s","sdp":"v=0"}').ok).toBe(true);
    expect(parseClientToServer('{"type":"close","sessionId":"s"}').ok).toBe(true);
    expect(parseClientToServer('{"type":"ping"}').ok).toBe(true);
    expect(
      parseServerToClient(
        '{"type":"session","ref":"r","sessionId":"s","iceServers":[{"urls":"stun:x"}],"node":{"shortId":"abc","name":"n"}}',
      ).ok,
    ).toBe(true);
    expect(
      parseServerToClient(
        '{"type":"session-error","ref":"r","code":"service_offline","message":"m"}',
      ).ok,
    ).toBe(true);
    expect(
      parseServerToAgent(
        '{"type":"challenge","nonce":"' + 'n'.repeat(43) + '","serverUrl":"http://x"}',
      ).ok,
    ).toBe(true);
    expect(parseServerToAgent('{"type":"heartbeat-ack","serverTime":1}').ok).toBe(true);
  });

  it('flag unknown types as such (so receivers can ignore them)', () => {
    const r = parseAgentToServer('{"type":"future-thing","x":1}');
    expect(r).toMatchObject({ ok: false, unknownType: true, claimedType: 'future-thing' });
  });

  it('strip unknown fields rather than refusing them', () => {
    const r = parseClientToServer('{"type":"ping","extra":{"deep":1},"from":"spoofed"}');
    expect(r.ok && r.value).toEqual({ type: 'ping' });
  });

  it('refuse hostile input with clear errors', () => {
    const bad: [string | Buffer, RegExp][] = [
      ['not json', /not valid UTF-8 JSON/],
      [Buffer.from([0xff, 0xfe, 0x00]), /not valid UTF-8 JSON/],
      ['[]', /must be a JSON object/],
      ['null', /must be a JSON object/],
      ['"str"', /must be a JSON object/],
      ['{"x":1}', /no string "type"/],
      ['{"type":5}', /no string "type"/],
      ['{"type":"answer","sessionId":"s"}', /invalid "answer" message: sdp/],
      ['{"type":"answer","sessionId":"../../etc","sdp":"x"}', /sessionId/],
      ['{"type":"auth","nodeId":"short","timestamp":1,"signature":"x","name":"n"}', /nodeId/],
      ['{"type":"services","services":[{"name":"UPPER"}]}', /DNS label/],
      [
        '{"type":"services","services":[{"name":"a"}' + ',{"name":"a"}'.repeat(100) + ']}',
        /services/,
      ],
      [JSON.stringify({ type: 'answer', sessionId: 's', sdp: 'x'.repeat(40_000) }), /sdp/],
      [
        '{"type":"heartbeat","load":{"sessions":-1,"cpu":0,"rssBytes":0,"txBytesPerSec":0,"rxBytesPerSec":0}}',
        /load.sessions/,
      ],
    ];
    for (const [input, re] of bad) {
      const r = parseAgentToServer(input);
      expect(r.ok, String(input).slice(0, 60)).toBe(false);
      if (!r.ok) {
        expect(r.error.message).toMatch(re);
        expect(r.unknownType).toBe(false);
      }
    }
  });

  it('refuse oversized messages before parsing them', () => {
    const big = JSON.stringify({ type: 'ping', pad: 'x'.repeat(MAX_SIGNALING_MESSAGE_BYTES) });
    expect(parseClientToServer(big)).toMatchObject({
      ok: false,
      error: { code: 'message_too_large' },
    });
    expect(parseClientToServer(Buffer.from(big))).toMatchObject({
      ok: false,
      error: { code: 'message_too_large' },
    });
    // multi-byte characters count as bytes
    const wide = JSON.stringify({ type: 'ping', pad: 'é'.repeat(MAX_SIGNALING_MESSAGE_BYTES / 2) });
    expect(parseClientToServer(wide)).toMatchObject({
      ok: false,
      error: { code: 'message_too_large' },
    });
  });

  it('never throws on random bytes', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(
        Array.from({ length: Math.floor(rand() * 100) }, () => Math.floor(rand() * 256)),
      );
      for (const parse of [
        parseAgentToServer,
        parseClientToServer,
        parseServerToAgent,
        parseServerToClient,
      ]) {
        expect(parse(b).ok).toBe(false);
      }
    }
  });
});
