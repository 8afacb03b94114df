/**
 * Picks the agent's WebRTC engines: `--engine`, else PEERWAY_ENGINE, else
 * `auto`. A named engine is the only one the agent uses. `auto` holds both:
 * node-datachannel answers by default (it moves more bytes and opens faster,
 * bench/README.md), werift answers a session whose client asks for it.
 *
 * Why both: node-datachannel cannot serve a browser that reaches TURN only
 * over TCP (a network that drops UDP): libjuice answers Chromium's checks
 * there with 400, because it reads a zero ICE tiebreaker as a missing role
 * attribute (upstream paullouisageneau/libjuice#355). The shell sees that it
 * has nothing but a TCP relay and asks again for werift (`open.engine`).
 * Without the addon, `auto` is werift alone. (The agent's own side needs
 * UDP with either engine: werift uses only the first `turn:` URL, which is
 * the UDP one.)
 */
import { nodeDataChannelEngine, loadNodeDataChannel } from './node-datachannel';
import { ENGINES, type RtcEngine } from './types';
import { weriftEngine } from './werift';

export { ENGINES, type EngineName, type RtcEngine, type AnswerSession } from './types';

/** What `--engine` takes. */
export const ENGINE_CHOICES = ['auto', ...ENGINES] as const;

/**
 * The engines to answer with, the default first. A named engine is checked
 * now (a missing addon is a clear error at start, not at the first session).
 */
export function selectEngines(
  name: string | undefined = process.env.PEERWAY_ENGINE,
  log?: { warn(o: object, msg: string): void },
): RtcEngine[] {
  const n = name || 'auto';
  if (!(ENGINE_CHOICES as readonly string[]).includes(n))
    throw new Error(`unknown engine "${name}": use one of ${ENGINE_CHOICES.join(', ')}`);
  if (n === 'werift') return [weriftEngine];
  if (n === 'node-datachannel') {
    loadNodeDataChannel();
    return [nodeDataChannelEngine];
  }
  try {
    loadNodeDataChannel();
    return [nodeDataChannelEngine, weriftEngine];
  } catch (err) {
    log?.warn({ err: (err as Error).message }, 'node-datachannel unavailable: werift only');
    return [weriftEngine];
  }
}
