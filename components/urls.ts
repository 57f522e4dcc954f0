/**
 * The console's URLs in one place. The console is mounted at `/admin`; the session cookie's path is the same.
 */

/** Where the console is mounted. */
export const BASE = "/admin";

/** Builds `path?query` leaving out empty parameters. */
export function withQuery(path: string, params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** Links to the console's pages. */
export const urls = {
  dashboard: BASE,
  login: `${BASE}/login`,
  logout: `${BASE}/logout`,
  users: `${BASE}/users`,
  user: (id: string) => `${BASE}/users/${encodeURIComponent(id)}`,
  key: (id: string) => `${BASE}/keys/${encodeURIComponent(id)}`,
  requests: `${BASE}/requests`,
  audit: `${BASE}/audit`,
  settings: `${BASE}/settings`,
};
