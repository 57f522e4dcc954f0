/**
 * The floor for any Deno proxy: a bare pass-through (request body read, `fetch` to the upstream, response body
 * handed back to `Deno.serve` untouched, so the runtime pipes it natively). No key, no usage tap, no database.
 * `bench/bench.ts` measures it beside the proxy, so the proxy's added latency can be split into what one more
 * Deno hop costs on this machine and what the proxy itself adds.
 *
 * ```sh
 * deno run -A bench/relay.ts --upstream=http://127.0.0.1:8001   # prints {"url":"http://127.0.0.1:…"}
 * ```
 */

const upstream = Deno.args.find((a) => a.startsWith("--upstream="))?.slice("--upstream=".length);
if (!upstream) throw new Error("--upstream=<url> is required");

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(JSON.stringify({ url: `http://127.0.0.1:${port}` })),
}, async (req) => {
  const url = new URL(req.url);
  const headers = new Headers(req.headers);
  headers.delete("host");
  headers.delete("content-length");
  headers.set("accept-encoding", "identity");
  const res = await fetch(upstream + url.pathname + url.search, {
    method: req.method,
    headers,
    body: req.body ? await req.bytes() : null,
    signal: req.signal,
  });
  const out = new Headers(res.headers);
  out.delete("content-length");
  out.delete("content-encoding");
  return new Response(res.body, { status: res.status, headers: out });
});
