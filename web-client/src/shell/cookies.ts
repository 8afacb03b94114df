/**
 * The per-service cookie jar. A service worker cannot set cookies (a
 * `Set-Cookie` on a Response it builds is dropped), so Peerway keeps them:
 * fed from tunneled responses, applied to tunneled requests, and exposed to
 * the app's scripts through `document.cookie` without HttpOnly ones. Each
 * service has its own origin, so its own localStorage, so its own jar.
 * tough-cookie does the RFC 6265 work.
 */
import { CookieJar } from 'tough-cookie';

const KEY = 'peerway:cookies';

export class CookieStore {
  private jar: CookieJar;

  constructor(private readonly origin: string) {
    let jar: CookieJar | null = null;
    try {
      const saved = localStorage.getItem(KEY);
      if (saved) jar = CookieJar.deserializeSync(saved);
    } catch {
      jar = null;
    }
    this.jar = jar ?? new CookieJar();
  }

  private save(): void {
    try {
      localStorage.setItem(KEY, JSON.stringify(this.jar.serializeSync()));
    } catch {
      // storage full or disabled: the jar still works for this page
    }
  }

  /** The Cookie header for a request to `path` (HttpOnly included). */
  header(path: string): string {
    return this.jar.getCookieStringSync(this.origin + path, { http: true });
  }

  /** Takes the Set-Cookie headers of a response to `path`. */
  fromResponse(path: string, setCookies: string[]): void {
    for (const c of setCookies) {
      try {
        this.jar.setCookieSync(c, this.origin + path, { http: true, ignoreError: true });
      } catch {
        // a malformed cookie is dropped, as a browser would
      }
    }
    if (setCookies.length > 0) this.save();
  }

  /** `document.cookie` for the app's scripts: no HttpOnly cookies. */
  scriptGet(path: string): string {
    return this.jar.getCookieStringSync(this.origin + path, { http: false });
  }

  /** `document.cookie = …` from the app's scripts: may not touch HttpOnly cookies. */
  scriptSet(path: string, value: string): void {
    try {
      this.jar.setCookieSync(value, this.origin + path, { http: false, ignoreError: true });
      this.save();
    } catch {
      // ignored, as a browser ignores a bad cookie string
    }
  }
}
