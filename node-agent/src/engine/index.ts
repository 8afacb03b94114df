/**
 * Picks the agent's WebRTC engine: `--engine`, else PEERWAY_ENGINE, else
 * werift. node-datachannel moves more bytes and opens faster (bench/README.md)
 * but cannot yet serve a browser that reaches TURN only over TCP (a network
 * that drops UDP): libjuice answers Chromium's checks there with 400, because
 * it reads a zero ICE tiebreaker as a missing role attribute (upstream
 * paullouisageneau/libjuice#355). A gateway that does not connect is worse
 * than a slower one, so werift stays the default until that is fixed.
 */
import { nodeDataChannelEngine, loadNodeDataChannel } from './node-datachannel';
import { ENGINES, type EngineName, type RtcEngine } from './types';
import { weriftEngine } from './werift';

export { ENGINES, type EngineName, type RtcEngine, type AnswerSession } from './types';

/** The engine named, checked now (a missing addon is a clear error at start, not at the first session). */
export function selectEngine(name: string | undefined = process.env.PEERWAY_ENGINE): RtcEngine {
  const n = (name || 'werift') as EngineName;
  if (!ENGINES.includes(n))
    throw new Error(`unknown engine "${name}": use one of ${ENGINES.join(', ')}`);
  if (n === 'node-datachannel') {
    loadNodeDataChannel();
    return nodeDataChannelEngine;
  }
  return weriftEngine;
}
