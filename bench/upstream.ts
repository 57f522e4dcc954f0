/**
 * The benchmark's fake Anthropic API, run as its own process so its CPU is not counted as the proxy's.
 *
 * `POST /v1/messages` waits `--latency` ms, then answers like the real API: a ~3 KB JSON message, or an SSE
 * stream of `message_start` (~500 B, with usage), `content_block_start`, `ping`, `--deltas` text deltas of 20–60
 * bytes of text every `--interval` ms, then `content_block_stop`, `message_delta` (with usage) and
 * `message_stop`. A request may override the pacing with `x-bench-deltas` / `x-bench-interval-ms` headers (the
 * proxy forwards them untouched): the open-streams scenario uses that for a slow drip.
 *
 * Unlike `tests/fakes/fake_anthropic.ts` it keeps nothing per request and encodes the constant events once, so
 * it stays cheap next to the process it measures. It never JSON-parses the request body: the load generator
 * puts `"stream":true` at its start.
 *
 * With `--cert=<pem> --key=<pem>` it serves HTTPS, and HTTP/2 to clients that offer it (as api.anthropic.com does).
 *
 * ```sh
 * deno run -A bench/upstream.ts --latency=50 --interval=15 --deltas=60   # prints {"url":"http://127.0.0.1:…"}
 * ```
 */

const encoder = new TextEncoder();

/** Options of the fake upstream. */
export interface UpstreamOptions {
  latencyMs: number;
  intervalMs: number;
  deltas: number;
}

const MODEL = "claude-sonnet-4-5-20250929";
/** The usage every answer reports (output tokens aside), which the bench checks the recorded totals against. */
export const USAGE = {
  input_tokens: 1200,
  cache_creation_input_tokens: 512,
  cache_read_input_tokens: 30000,
  cache_creation: { ephemeral_5m_input_tokens: 512, ephemeral_1h_input_tokens: 0 },
  output_tokens: 1,
  service_tier: "standard",
};
const WORDS = "the proxy forwards every byte of this answer while a tap beside it reads the usage".split(" ");

/** Text of delta `i`: 20 to 60 bytes, varying like real token groups. */
function deltaText(i: number): string {
  const target = 20 + ((i * 37) % 41);
  let text = "";
  for (let w = i; text.length < target; w++) text += WORDS[w % WORDS.length] + " ";
  return text.slice(0, target);
}

function sse(event: string, data: unknown): Uint8Array<ArrayBuffer> {
  return encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function messageStart(id: string): Uint8Array<ArrayBuffer> {
  return sse("message_start", {
    type: "message_start",
    message: {
      id,
      type: "message",
      role: "assistant",
      model: MODEL,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: USAGE,
      container: null,
      context_management: null,
    },
  });
}

interface Encoded {
  opening: Uint8Array[];
  deltas: Uint8Array[];
  closing: Uint8Array[];
  json: (id: string) => Uint8Array<ArrayBuffer>;
}

const cache = new Map<number, Encoded>();

/** The constant events of an answer with `deltas` text deltas, encoded once. */
function encoded(deltas: number): Encoded {
  let e = cache.get(deltas);
  if (e) return e;
  const texts = Array.from({ length: deltas }, (_, i) => deltaText(i));
  const outputTokens = Math.max(1, Math.round(texts.join("").length / 4));
  const jsonTail = JSON.stringify({
    type: "message",
    role: "assistant",
    model: MODEL,
    content: [{ type: "text", text: texts.join("") }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { ...USAGE, output_tokens: outputTokens },
  }).slice(1);
  e = {
    opening: [
      sse("content_block_start", {
        type: "content_block_start",
        index: 0,
        content_block: { type: "text", text: "" },
      }),
      sse("ping", { type: "ping" }),
    ],
    deltas: texts.map((text) =>
      sse("content_block_delta", {
        type: "content_block_delta",
        index: 0,
        delta: { type: "text_delta", text },
      })
    ),
    closing: [
      sse("content_block_stop", { type: "content_block_stop", index: 0 }),
      sse("message_delta", {
        type: "message_delta",
        delta: { stop_reason: "end_turn", stop_sequence: null },
        usage: { output_tokens: outputTokens },
      }),
      sse("message_stop", { type: "message_stop" }),
    ],
    json: (id) => encoder.encode(`{"id":${JSON.stringify(id)},${jsonTail}`),
  };
  cache.set(deltas, e);
  return e;
}

const STREAM_MARK = encoder.encode('"stream":true');

/** True when `"stream":true` appears in the first 256 bytes (the load generator puts it first). */
function wantsStream(body: Uint8Array): boolean {
  const end = Math.min(body.length, 256) - STREAM_MARK.length;
  outer: for (let i = 0; i <= end; i++) {
    for (let j = 0; j < STREAM_MARK.length; j++) if (body[i + j] !== STREAM_MARK[j]) continue outer;
    return true;
  }
  return false;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The request handler. */
export function handler(opts: UpstreamOptions): (req: Request) => Promise<Response> {
  let counter = 0;
  const headersFor = (n: number, type: string) => ({
    "content-type": type,
    "request-id": `req_bench_${n}`,
    "anthropic-organization-id": "org-bench",
    "anthropic-ratelimit-requests-remaining": "999",
  });
  return async (req) => {
    const body = await req.bytes();
    const n = ++counter;
    const id = `msg_bench_${n.toString().padStart(18, "0")}`;
    if (new URL(req.url).pathname !== "/v1/messages" || req.method !== "POST") {
      return new Response('{"type":"error","error":{"type":"not_found_error","message":"no route"}}', {
        status: 404,
        headers: { "content-type": "application/json" },
      });
    }
    const deltas = Number(req.headers.get("x-bench-deltas") ?? opts.deltas);
    const interval = Number(req.headers.get("x-bench-interval-ms") ?? opts.intervalMs);
    const e = encoded(deltas);
    if (opts.latencyMs > 0) await sleep(opts.latencyMs);
    if (!wantsStream(body)) {
      return new Response(e.json(id), { status: 200, headers: headersFor(n, "application/json") });
    }
    // message_start with the headers, content_block_start and ping at once, then one delta per interval.
    let i = 0;
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(messageStart(id));
        for (const chunk of e.opening) c.enqueue(chunk);
      },
      async pull(c) {
        if (i < e.deltas.length) {
          await sleep(interval);
          if (cancelled) return;
          c.enqueue(e.deltas[i++]);
          return;
        }
        for (const chunk of e.closing) c.enqueue(chunk);
        c.close();
      },
      cancel() {
        cancelled = true;
      },
    }, { highWaterMark: 0 });
    return new Response(stream, {
      status: 200,
      headers: { ...headersFor(n, "text/event-stream; charset=utf-8"), "cache-control": "no-cache" },
    });
  };
}

function flag(args: string[], name: string, fallback: number): number {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.slice(name.length + 3)) : fallback;
}

if (import.meta.main) {
  const opts: UpstreamOptions = {
    latencyMs: flag(Deno.args, "latency", 50),
    intervalMs: flag(Deno.args, "interval", 15),
    deltas: flag(Deno.args, "deltas", 60),
  };
  const path = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const [cert, key] = [path("cert"), path("key")];
  const tls = cert && key ? { cert: Deno.readTextFileSync(cert), key: Deno.readTextFileSync(key) } : {};
  Deno.serve({
    hostname: "127.0.0.1",
    port: flag(Deno.args, "port", 0),
    ...tls,
    onListen: ({ port }) =>
      console.log(JSON.stringify({ url: `${cert ? "https" : "http"}://127.0.0.1:${port}` })),
  }, handler(opts));
}
