/**
 * Proxy routes: `/ak/:key/v1/messages` (any query string, e.g. Claude Code's `?beta=true`) and every other
 * `/ak/:key/v1/*` path, passed through. Thin: the URL is parsed here, everything else happens in `lib/proxy`.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { AppEnv } from "../app.ts";
import type { Proxy } from "../lib/proxy/proxy.ts";
import type { ProxyRequest } from "../lib/proxy/proxy.ts";

/** Mounts the proxy under `/ak`. */
export function proxyRoutes(proxy: Proxy): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const toRequest = (c: Context<AppEnv>): ProxyRequest => {
    const url = new URL(c.req.url);
    const key = c.req.param("key") ?? "";
    const prefix = `/ak/${key}`;
    // The raw path tail and query, exactly as sent (no re-encoding).
    const rawPath = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
    return {
      requestId: c.get("requestId"),
      rawKey: decodeURIComponent(key),
      pathAndQuery: rawPath + url.search,
      method: c.req.method,
      headers: c.req.raw.headers,
      request: c.req.raw,
      // Fires only when the client goes away: deno.json opts out of the legacy abort-after-success behaviour.
      signal: c.req.raw.signal,
    };
  };
  app.post("/:key/v1/messages", (c) => proxy.messages(toRequest(c)));
  app.all("/:key/v1/*", (c) => proxy.passThrough(toRequest(c)));
  return app;
}
