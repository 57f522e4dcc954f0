/**
 * Proxy routes: `/ak/:key/v1/messages` (any query string, e.g. Claude Code's `?beta=true`) and every other
 * `/ak/:key/v1/*` path, passed through. Thin: the URL is parsed here, everything else happens in `lib/proxy`.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { AppEnv } from "../app.ts";
import type { Proxy } from "../lib/proxy/proxy.ts";
import type { ProxyRequest } from "../lib/proxy/proxy.ts";
import { FailureThrottle } from "../lib/auth/throttle.ts";
import { clientAddress } from "../lib/http.ts";
import { HttpError } from "../lib/errors.ts";

/** Mounts the proxy under `/ak`; failed key lookups are throttled per client address. */
export function proxyRoutes(
  proxy: Proxy,
  opts: { trustForwardedFor: boolean; guessLimitPerMinute?: number } = { trustForwardedFor: false },
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const guesses = new FailureThrottle({ limit: opts.guessLimitPerMinute ?? 30, windowMs: 60_000 });
  app.use("*", async (c, next) => {
    const wait = guesses.retryAfterSeconds(clientAddress(c, opts.trustForwardedFor) ?? "unknown");
    if (wait > 0) {
      throw new HttpError(
        429,
        "rate_limit_error",
        `too many invalid access keys from this address; retry in ${wait} s`,
        {
          "retry-after": String(wait),
        },
      );
    }
    await next();
  });
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
      onKeyRejected: () => guesses.fail(clientAddress(c, opts.trustForwardedFor) ?? "unknown"),
    };
  };
  app.post("/:key/v1/messages", (c) => proxy.messages(toRequest(c)));
  app.all("/:key/v1/*", (c) => proxy.passThrough(toRequest(c)));
  return app;
}
