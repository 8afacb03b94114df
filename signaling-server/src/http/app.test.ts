import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, withServer } from '../../test/helpers';

let s: Awaited<ReturnType<typeof withServer>>;
beforeAll(async () => {
  s = await withServer();
});
afterAll(() => s.stop());

describe('the app assembled from route modules', () => {
  it('answers OPTIONS on an API path with its JSON 404, not an automatic Allow reply', async () => {
    for (const path of ['/api/nodes', '/api/tokens', '/api/services', '/api/admin/users']) {
      const r = await api(s.server, 'OPTIONS', path);
      expect(r.status, path).toBe(404);
      expect(r.headers.get('allow'), path).toBeNull();
      expect(r.json, path).toEqual({
        error: { code: 'not_found', message: 'no such API route' },
      });
    }
  });

  it('keeps the one OPTIONS route there is: the access-token preflight', async () => {
    const r = await api(s.server, 'OPTIONS', '/api/services/blog/access-token');
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
  });
});
