/**
 * Which headers cross the proxy. Everything the Anthropic API and its clients exchange passes unchanged
 * (`anthropic-version`, every `anthropic-beta`, `request-id`, `anthropic-ratelimit-*`, `retry-after`, …) except
 * hop-by-hop headers, framing headers the proxy recomputes, and the proxy's own.
 */

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const NOT_FORWARDED_UPSTREAM = new Set([
  ...HOP_BY_HOP,
  "host",
  "content-length",
  "accept-encoding",
  "cookie",
  "forwarded",
  "x-real-ip",
]);

// The body may have been decoded by fetch and is re-framed by the server: never pass these on as they came.
const NOT_RETURNED = new Set([...HOP_BY_HOP, "content-length", "content-encoding"]);

function connectionListed(headers: Headers): Set<string> {
  const listed = new Set<string>();
  const value = headers.get("connection");
  if (value) { for (const name of value.split(",")) listed.add(name.trim().toLowerCase()); }
  return listed;
}

/**
 * Headers for the upstream request: the client's, minus hop-by-hop and proxy headers, with
 * `accept-encoding: identity` (Deno's fetch would decode a compressed body yet keep its header). Name/value pairs
 * (lower-case names, each once) rather than a `Headers`: `fetch` copies pairs in half the time.
 */
export function upstreamRequestHeaders(incoming: Headers): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const listed = connectionListed(incoming);
  incoming.forEach((value, name) => {
    if (NOT_FORWARDED_UPSTREAM.has(name) || listed.has(name)) return;
    if (name.startsWith("x-forwarded-") || name.startsWith("x-proxy-") || name.startsWith("x-amzn-")) return;
    out.push([name, value]);
  });
  out.push(["accept-encoding", "identity"]);
  return out;
}

/** Headers for the client: the upstream's, minus hop-by-hop and framing headers. */
export function clientResponseHeaders(upstream: Headers): Headers {
  const out = new Headers();
  const listed = connectionListed(upstream);
  upstream.forEach((value, name) => {
    if (NOT_RETURNED.has(name) || listed.has(name)) return;
    out.append(name, value);
  });
  return out;
}

/** Every `anthropic-beta` value the client sent (several headers and comma lists alike). */
export function betaValues(headers: Headers): string[] {
  const raw = headers.get("anthropic-beta");
  if (!raw) return [];
  return raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
}
