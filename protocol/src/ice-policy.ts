/**
 * Direct first. Both peers hold back their relay (TURN) candidates for a
 * moment so that, where the NATs allow a direct path, ICE finds it before a
 * relayed pair works: werift (the agent) never lets a later nomination replace
 * the first, and a relayed pair through a nearby TURN server is often ready
 * first. Where no direct path exists, the relay arrives RELAY_HOLD_MS later.
 * Browser-safe.
 */

/** How long relay candidates are held back, in ms. */
export const RELAY_HOLD_MS = 1500;

/** Splits relay candidates out of an SDP (for trickling them later). */
export function holdBackRelay(sdp: string): {
  sdp: string;
  relay: { candidate: string; sdpMid: string | null }[];
} {
  const lines = sdp.split(/\r\n/);
  const relay: { candidate: string; sdpMid: string | null }[] = [];
  let mid: string | null = null;
  const kept: string[] = [];
  for (const line of lines) {
    if (line.startsWith('m=')) mid = null;
    if (line.startsWith('a=mid:')) mid = line.slice(6);
    if (line.startsWith('a=candidate:') && / typ relay( |$)/.test(line)) {
      relay.push({ candidate: line.slice(2), sdpMid: mid });
      continue;
    }
    kept.push(line);
  }
  // a=mid may follow candidates in a section: fill in the section's mid
  if (relay.some((r) => r.sdpMid === null)) {
    const firstMid = /a=mid:(\S+)/.exec(sdp)?.[1] ?? null;
    for (const r of relay) r.sdpMid ??= firstMid;
  }
  return { sdp: kept.join('\r\n'), relay };
}
