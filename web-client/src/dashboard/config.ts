/** The gateway's settings the server writes into the page (`window.__PEERWAY_DASH__`). */
export interface DashConfig {
  publicUrl: string;
  baseDomain: string;
}

declare global {
  interface Window {
    __PEERWAY_DASH__?: DashConfig;
  }
}

/** The page's settings; without the server's (vite dev), this origin's. */
export const config: DashConfig = window.__PEERWAY_DASH__ ?? {
  publicUrl: location.origin,
  baseDomain: location.hostname,
};
