/**
 * Proxy routes: `/ak/:key/v1/messages` (any query string, e.g. Claude Code's `?beta=true`) and every other
 * `/ak/:key/v1/*` path, passed through. Thin: the URL is parsed here, everything else happens in `lib/proxy`.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { AppEnv } from "../app.ts";
import type { Proxy } from "../lib/proxy/proxy.ts";
import type { ProxyRequest } from "../lib/proxy/proxy.ts";
import type { KeyGuessThrottle } from "../lib/auth/key_guesses.ts";
import { clientAddress, hasDotSegment } from "../lib/http.ts";
import { HttpError } from "../lib/errors.ts";
import type { PeerWatch } from "../lib/net/peer_watch.ts";

/** Mounts the proxy under `/ak`; unknown keys are throttled per client address by `guesses` (see `lib/proxy`). */
export function proxyRoutes(
  proxy: Proxy,
  opts: { trustForwardedFor: boolean; guesses: KeyGuessThrottle; peers?: PeerWatch },
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const guesses = opts.guesses;
  const toRequest = (c: Context<AppEnv>, signal: AbortSignal): ProxyRequest => {
    refuseRewrittenPath(c.req.url);
    const url = new URL(c.req.url);
    // Both from the raw path, as sent: the router's decoded parameter would not match a percent-encoded key,
    // and the whole path, key included, would then be forwarded upstream.
    const match = /^\/ak\/([^/]*)(\/.*)$/.exec(url.pathname);
    refuseEncodedPlainCharacters(match?.[2] ?? "");
    const address = clientAddress(c, opts.trustForwardedFor) ?? "unknown";
    return {
      requestId: c.get("requestId"),
      clientRequestId: c.get("clientRequestId"),
      rawKey: decodeKey(match?.[1] ?? ""),
      pathAndQuery: (match?.[2] ?? "/") + url.search,
      method: c.req.method,
      headers: c.req.raw.headers,
      request: c.req.raw,
      signal,
      guesses: {
        pace: () => guesses.pace(address),
        fail: () => guesses.fail(address),
      },
      onRecorded: () => c.set("recorded", true),
    };
  };
  /**
   * Hands the request to `handle`, with a signal that fires when the client goes away. Deno's own fires only
   * when the client goes away (deno.json opts out of the legacy abort-after-success behaviour), but not before
   * the answer's headers for bodies over a few hundred bytes: until `handle` returns them, the client's socket
   * is watched as well.
   */
  type Handle = (req: ProxyRequest, c: Context<AppEnv>) => Promise<Response>;
  const proxied = (handle: Handle) => async (c: Context<AppEnv>) => {
    const own = c.req.raw.signal;
    const peer = (c.env as Partial<Deno.ServeHandlerInfo<Deno.NetAddr>> | undefined)?.remoteAddr;
    if (!opts.peers?.active || peer === undefined) return handle(toRequest(c, own), c);
    const left = new AbortController();
    if (own.aborted) left.abort(own.reason);
    else own.addEventListener("abort", () => left.abort(own.reason), { once: true });
    const unwatch = opts.peers.watch(
      peer,
      () => left.abort(new DOMException("client closed the connection", "AbortError")),
    );
    try {
      return await handle(toRequest(c, left.signal), c);
    } finally {
      unwatch();
    }
  };
  // Claude Code probes its base URL (with the trailing slash it was given, if any) and preconnects with
  // `HEAD <base>/api/hello`: answered here, with no key lookup, as `/` is (a 404 would only fill logs; a probe
  // carries nothing to protect).
  app.on(["GET", "HEAD"], ["/:key", "/:key/"], (c) => c.text("claude-code-proxy: ok\n"));
  app.on(["GET", "HEAD"], "/:key/api/hello", (c) => c.json({ status: "ok" }));
  // With a trailing slash too: the API may well serve `/v1/messages/` as messages, and as "any other path" it
  // would go upstream with no usage row, no budget and no routing to Bedrock.
  app.on("POST", ["/:key/v1/messages", "/:key/v1/messages/"], proxied((req) => proxy.messages(req)));
  app.on(
    "POST",
    ["/:key/v1/messages/count_tokens", "/:key/v1/messages/count_tokens/"],
    proxied((req) => proxy.countTokens(req)),
  );
  app.get("/:key/v1/models", proxied((req) => proxy.models(req, null)));
  app.get(
    "/:key/v1/models/:model",
    proxied((req, c) => proxy.models(req, modelId(c.req.param("model") ?? ""))),
  );
  app.all("/:key/v1/*", proxied((req) => proxy.passThrough(req)));
  return app;
}

/**
 * Refuses a path that URL parsing rewrites: `.` or `..` segments (plain or percent-encoded), and backslashes,
 * which a URL parser reads as slashes. The router matches the path as sent (`/v1/x/../messages` and
 * `/v1/x\..\messages` are "any other /v1 path"), but URL parsing, here and in fetch, resolves them: the
 * request would reach the upstream as `/v1/messages` without passing the messages handler (no usage row, no
 * routing to Bedrock, no budget, the organisation's key used). No client needs them. Empty segments go too:
 * servers that merge slashes (nginx does by default) would read `/v1//messages` as `/v1/messages`. (Characters
 * a parser only percent-encodes, such as `{` or `é`, change no segment and pass.)
 */
function refuseRewrittenPath(rawUrl: string): void {
  const start = rawUrl.indexOf("/", rawUrl.indexOf("//") + 2);
  const end = rawUrl.indexOf("?", start);
  const raw = rawUrl.slice(start, end < 0 ? undefined : end);
  if (raw.includes("\\") || raw.includes("//") || hasDotSegment(raw)) {
    throw new HttpError(
      400,
      "invalid_request_error",
      "path has . or .. segments, backslashes or empty segments; expected a plain path such as /ak/<key>/v1/messages",
    );
  }
  // A `;` starts parameters some servers strip before routing (`/v1/messages;x` read as `/v1/messages`): it
  // would reach the upstream's messages unaccounted. No API path has one.
  if (raw.includes(";")) {
    throw new HttpError(
      400,
      "invalid_request_error",
      "path has a ; (path parameters); expected a plain path such as /ak/<key>/v1/messages",
    );
  }
}

/**
 * Refuses a path (after the key) that percent-encodes letters, digits or `-._~`. No client needs to (RFC 3986
 * says not to), and an upstream that decodes them before routing would read `/v1/%6Dessages` as `/v1/messages`:
 * the proxy must see the path the upstream will.
 */
function refuseEncodedPlainCharacters(tail: string): void {
  if (/%(?:3[0-9]|4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a]|2d|2e|5f|7e)/i.test(tail)) {
    throw new HttpError(
      400,
      "invalid_request_error",
      "path percent-encodes letters, digits or -._~; expected them as plain characters, e.g. /ak/<key>/v1/messages",
    );
  }
}

/**
 * A model id from its path segment. One holding a slash or backslash (sent encoded) is refused: no model id has
 * one, and an upstream that decodes them would read `/v1/models/..%2Fmessages` as another path.
 */
function modelId(decoded: string): string {
  if (/[/\\]/.test(decoded)) {
    throw new HttpError(
      400,
      "invalid_request_error",
      "model id holds / or \\; expected a model id such as claude-sonnet-4-5",
    );
  }
  return decoded;
}

/** The key segment, percent-decoded; a malformed escape gives "", which no key matches. */
function decodeKey(segment: string): string {
  if (!segment.includes("%")) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return "";
  }
}
