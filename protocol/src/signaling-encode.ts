/** The one place signaling messages become text, for both channels. */
import type { AgentToServer, ServerToAgent } from './signaling-agent';
import type { ClientToServer, ServerToClient } from './signaling-client';

/** Serialises a signaling message (the one place messages become text). */
export function encodeMessage(
  msg: AgentToServer | ServerToAgent | ClientToServer | ServerToClient,
): string {
  return JSON.stringify(msg);
}
