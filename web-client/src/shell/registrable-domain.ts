/**
 * Stands in for `tldts` (the public suffix list, ~260 KB of the shell's
 * cookie chunk) where tough-cookie asks for a name's registrable domain.
 *
 * Why a stand-in is safe here: the list guards cookies shared across
 * sites (a `Domain=co.uk` cookie must not reach every site under co.uk).
 * A Peerway jar belongs to one service origin and is only ever asked for
 * the cookies of that one host, so a cookie that a real browser would
 * refuse for its domain can reach no other site through it; at worst it
 * comes back to the host that set it, like a host-only cookie. What the
 * jar does need from this function: permutations of the service's host
 * name to look cookies up by, and `null` for a single label (tough-cookie
 * then refuses `Domain=com`). Aliased in ../../vite.config.ts.
 */
export function getDomain(hostname: string): string | null {
  const labels = hostname.replace(/\.$/, '').split('.');
  if (labels.length < 2 || labels.some((l) => l === '')) return null;
  return labels.slice(-2).join('.');
}
