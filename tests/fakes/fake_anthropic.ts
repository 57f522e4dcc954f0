/**
 * A local fake of the Anthropic Messages API speaking real HTTP and SSE, for tests and the benchmark.
 *
 * It records every request (method, path and query, headers, raw body bytes) and answers `/v1/messages`
 * (streaming and not), `/v1/messages/count_tokens` and `/v1/models`. Behaviour for the next requests can be
 * scripted: an HTTP error with headers, an `error` event as the first stream event, a connection that dies
 * mid-stream, a gzip body, a slow drip, or no answer at all.
 */

import { PeerWatch } from "../../lib/net/peer_watch.ts";

/** A request as the fake received it. */
export interface RecordedAnthropicRequest {
  method: string;
  pathAndQuery: string;
  headers: Headers;
  body: Uint8Array;
  /** Fires when the proxy aborted the request (its client went away). */
  aborted: Promise<void>;
}

/** One scripted behaviour, consumed by the next `/v1/messages` request. */
export type AnthropicStep =
  | { kind: "error"; status: number; type: string; message: string; headers?: Record<string, string> }
  /** A stream of one `error` event; with `afterEvents`, that many of the answer's events first. */
  | { kind: "error_event"; type: string; message: string; afterEvents?: number }
  /** Streaming: dies after `afterEvents` events. Non-streaming: after half the JSON, which with `declared` came
   * with its full content-length (so the reader expects the rest). */
  | { kind: "die_mid_stream"; afterEvents: number; declared?: boolean }
  /** `afterEvents` whole events, then half of the next one, then the connection dies. */
  | { kind: "die_mid_event"; afterEvents: number }
  /** `afterEvents` whole events, then a clean end of the body, without `message_stop`. */
  | { kind: "end_early"; afterEvents: number }
  | { kind: "hang" }
  /**
   * `afterEvents` whole events (non-streaming: half the JSON), then silence until the caller leaves; with
   * `partial`, the first half of the next event goes out before the silence.
   */
  | { kind: "stall"; afterEvents: number; partial?: boolean }
  /** An error status whose headers come but whose body never does (until the caller leaves). */
  | { kind: "error_headers_only"; status: number }
  /** A 200 stream whose headers come but whose first event never does (until the caller leaves). */
  | { kind: "silent_stream" }
  | { kind: "gzip" }
  /** A streamed answer labelled with an encoding the proxy cannot decode: `bytes` in two chunks, as is. */
  | { kind: "opaque_stream"; encoding: string; bytes: Uint8Array }
  | { kind: "slow"; eventDelayMs: number; declared?: boolean; pieces?: number }
  /** A non-streaming answer whose text is `bytes` long. */
  | { kind: "big_text"; bytes: number };

/** Usage the fake reports. */
export interface FakeUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  /** How the cache writes split by lifetime, as the API reports it. */
  cache_creation?: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
  /** What the API reports of how the answer is billed beyond its tokens. */
  speed?: string;
  inference_geo?: string;
  server_tool_use?: { web_search_requests: number };
}

/** Options of the fake. */
export interface FakeAnthropicOptions {
  /** Delay before answering headers (models the upstream's latency). */
  latencyMs?: number;
  /** Delay between stream events. */
  eventDelayMs?: number;
  /** Number of text deltas in a streamed answer. */
  deltas?: number;
  usage?: Partial<FakeUsage>;
  port?: number;
  /** Keep no request records (benchmark). */
  record?: boolean;
}

/** The running fake. */
export interface FakeAnthropic {
  url: string;
  requests: RecordedAnthropicRequest[];
  script(...steps: AnthropicStep[]): void;
  close(): Promise<void>;
}

const encoder = new TextEncoder();

/** Starts the fake on 127.0.0.1 and an ephemeral port. */
export async function startFakeAnthropic(opts: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  const requests: RecordedAnthropicRequest[] = [];
  const steps: AnthropicStep[] = [];
  const usage: FakeUsage = {
    input_tokens: 1200,
    output_tokens: 85,
    cache_read_input_tokens: 30000,
    cache_creation_input_tokens: 512,
    ...opts.usage,
  };
  const deltas = opts.deltas ?? 8;
  let counter = 0;
  let closeNow!: () => void;
  const closing = new Promise<void>((r) => (closeNow = r));
  const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());
  // Deno's signal misses a caller that leaves before the headers when its body was large (the proxy's are, and
  // the proxy watches its own clients the same way): the fake watches its callers' sockets to tell it too.
  const peers = new PeerWatch({ intervalMs: 50, minAgeMs: 0 });

  const handler = async (req: Request, info: Deno.ServeHandlerInfo): Promise<Response> => {
    const url = new URL(req.url);
    const body = new Uint8Array(await req.arrayBuffer());
    let abortedResolve!: () => void;
    const aborted = new Promise<void>((r) => (abortedResolve = r));
    info.completed.catch(() => abortedResolve());
    req.signal.addEventListener("abort", () => abortedResolve(), { once: true });
    if (opts.record !== false) {
      const unwatch = peers.watch(info.remoteAddr as Deno.NetAddr, abortedResolve);
      aborted.then(unwatch);
      info.completed.then(unwatch, unwatch);
      requests.push({
        method: req.method,
        pathAndQuery: url.pathname + url.search,
        headers: req.headers,
        body,
        aborted,
      });
    }
    const auth = req.headers.get("x-api-key") ?? req.headers.get("authorization");
    if (!auth) {
      return json(401, {
        type: "error",
        error: { type: "authentication_error", message: "x-api-key header is required" },
      });
    }

    /** A scripted error or hang, answered the same on every route; null for any other step. */
    const erring = async (step: AnthropicStep | undefined): Promise<Response | null> => {
      if (step?.kind === "hang") {
        await Promise.race([aborted, closing]);
        return new Response(null, { status: 499 });
      }
      if (step?.kind === "error_headers_only") {
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            await Promise.race([aborted, closing]);
            try {
              controller.close();
            } catch { /* cancelled already */ }
          },
          cancel() {
            abortedResolve();
          },
        });
        return new Response(body, {
          status: step.status,
          headers: { "content-type": "application/json", "request-id": `req_fake_${++counter}` },
        });
      }
      if (step?.kind === "error") {
        return json(step.status, { type: "error", error: { type: step.type, message: step.message } }, {
          "request-id": `req_fake_${++counter}`,
          ...step.headers,
        });
      }
      return null;
    };
    // On the side routes a scripted error or hang is for whichever request comes next, this one included.
    const sideStep = () =>
      steps[0]?.kind === "error" || steps[0]?.kind === "hang" ? steps.shift() : undefined;
    if (url.pathname === "/v1/models") {
      const scripted = await erring(sideStep());
      if (scripted) return scripted;
      return json(200, {
        data: [{ type: "model", id: "claude-sonnet-4-5-20250929", display_name: "Claude Sonnet 4.5" }],
        has_more: false,
      });
    }
    if (url.pathname === "/v1/messages/count_tokens") {
      const scripted = await erring(sideStep());
      if (scripted) return scripted;
      return json(200, { input_tokens: 42 });
    }
    if (url.pathname !== "/v1/messages" || req.method !== "POST") {
      return json(404, {
        type: "error",
        error: { type: "not_found_error", message: `no route ${url.pathname}` },
      });
    }

    let parsed: { model?: string; stream?: boolean };
    try {
      parsed = JSON.parse(new TextDecoder().decode(body));
    } catch {
      return json(400, { type: "error", error: { type: "invalid_request_error", message: "bad json" } });
    }
    const step = steps.shift();
    await sleep(opts.latencyMs ?? 0);
    const scripted = await erring(step);
    if (scripted) return scripted;
    const id = `msg_fake_${++counter}`;
    const model = parsed.model ?? "claude-sonnet-4-5-20250929";
    const headers = {
      "request-id": `req_fake_${counter}`,
      "anthropic-ratelimit-requests-remaining": "999",
      "anthropic-organization-id": "org-fake",
    };
    if (!parsed.stream) {
      const message = {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [{
          type: "text",
          text: step?.kind === "big_text" ? "x".repeat(step.bytes) : "Hello from the fake Anthropic API.",
        }],
        stop_reason: "end_turn",
        stop_sequence: null,
        usage,
      };
      if (step?.kind === "gzip") {
        const gz = await new Response(
          new Blob([JSON.stringify(message)]).stream().pipeThrough(new CompressionStream("gzip")),
        ).arrayBuffer();
        return new Response(gz, {
          status: 200,
          headers: { ...headers, "content-type": "application/json", "content-encoding": "gzip" },
        });
      }
      if (step?.kind === "die_mid_stream" || step?.kind === "slow" || step?.kind === "stall") {
        // Half the JSON, then the connection dies (or, slow, the rest after a pause).
        const bytes = encoder.encode(JSON.stringify(message));
        const half = bytes.length >> 1;
        let sentHalf = false;
        // Slow with pieces: the JSON in that many parts, each after the pause (none before the first).
        const pieces = step.kind === "slow" ? Math.max(2, step.pieces ?? 2) : 2;
        let piece = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (step.kind === "slow" && pieces > 2) {
              if (piece > 0) await sleep(step.eventDelayMs);
              const size = Math.ceil(bytes.length / pieces);
              controller.enqueue(bytes.slice(piece * size, (piece + 1) * size));
              if (++piece === pieces) controller.close();
              return;
            }
            if (!sentHalf) {
              sentHalf = true;
              controller.enqueue(bytes.slice(0, half));
              return;
            }
            if (step.kind === "die_mid_stream") return controller.error(new Error("fake upstream died"));
            if (step.kind === "stall") {
              await Promise.race([aborted, closing]);
              try {
                controller.close();
              } catch { /* cancelled already */ }
              return;
            }
            await sleep(step.eventDelayMs);
            controller.enqueue(bytes.slice(half));
            controller.close();
          },
          cancel() {
            abortedResolve();
          },
        });
        return new Response(body, {
          status: 200,
          headers: {
            ...headers,
            "content-type": "application/json",
            ...("declared" in step && step.declared ? { "content-length": String(bytes.length) } : {}),
          },
        });
      }
      return json(200, message, headers);
    }

    if (step?.kind === "opaque_stream") {
      const half = step.bytes.length >> 1;
      const chunks = [step.bytes.slice(0, half), step.bytes.slice(half)];
      return new Response(
        new ReadableStream<Uint8Array>({
          async pull(controller) {
            const next = chunks.shift();
            if (!next) return controller.close();
            controller.enqueue(next);
            await sleep(5);
          },
        }),
        {
          status: 200,
          headers: { ...headers, "content-type": "text/event-stream", "content-encoding": step.encoding },
        },
      );
    }
    const events = streamEvents(id, model, usage, deltas);
    if (step?.kind === "error_event") {
      events.splice(step.afterEvents ?? 0, events.length, ["error", {
        type: "error",
        error: { type: step.type, message: step.message },
      }]);
    }
    const delay = step?.kind === "slow" ? step.eventDelayMs : opts.eventDelayMs ?? 0;
    const dieAfter = step?.kind === "die_mid_stream" || step?.kind === "die_mid_event"
      ? step.afterEvents
      : Infinity;
    if (step?.kind === "end_early") events.splice(step.afterEvents);
    let i = 0;
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (i === 0 && step?.kind === "silent_stream") {
          await Promise.race([aborted, closing]);
          try {
            controller.close();
          } catch { /* cancelled already */ }
          return;
        }
        if (i > 0) await sleep(delay);
        if (cancelled) return;
        if (step?.kind === "stall" && i >= step.afterEvents) {
          if (step.partial && i < events.length) {
            const [event, data] = events[i];
            const bytes = encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
            controller.enqueue(bytes.subarray(0, bytes.length >> 1));
          }
          await Promise.race([aborted, closing]);
          try {
            controller.close();
          } catch { /* cancelled already */ }
          return;
        }
        if (i >= dieAfter) {
          if (step?.kind === "die_mid_event" && i < events.length) {
            const [event, data] = events[i];
            const bytes = encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
            controller.enqueue(bytes.subarray(0, bytes.length >> 1));
            await sleep(10); // the half goes out on its own before the connection dies
          }
          controller.error(new Error("fake upstream died"));
          return;
        }
        if (i >= events.length) {
          controller.close();
          return;
        }
        const [event, data] = events[i++];
        controller.enqueue(encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      },
      cancel() {
        cancelled = true;
        abortedResolve();
      },
    });
    return new Response(stream, {
      status: 200,
      headers: {
        ...headers,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
      },
    });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: opts.port ?? 0, onListen: () => {} }, handler);
  await peers.listening(server.addr.port);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    script: (...s) => steps.push(...s),
    close: async () => {
      closeNow();
      peers.close();
      await server.shutdown();
    },
  };
}

/** The event sequence of a real streamed answer, with realistic sizes. */
export function streamEvents(
  id: string,
  model: string,
  usage: FakeUsage,
  deltas: number,
): Array<[string, unknown]> {
  const events: Array<[string, unknown]> = [
    ["message_start", {
      type: "message_start",
      message: {
        id,
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1 },
      },
    }],
    ["content_block_start", {
      type: "content_block_start",
      index: 0,
      content_block: { type: "text", text: "" },
    }],
    ["ping", { type: "ping" }],
  ];
  for (let d = 0; d < deltas; d++) {
    events.push(["content_block_delta", {
      type: "content_block_delta",
      index: 0,
      delta: { type: "text_delta", text: `word${d} of a streamed answer, about forty bytes. ` },
    }]);
  }
  events.push(["content_block_stop", { type: "content_block_stop", index: 0 }]);
  events.push(["message_delta", {
    type: "message_delta",
    delta: { stop_reason: "end_turn", stop_sequence: null },
    usage: { output_tokens: usage.output_tokens },
  }]);
  events.push(["message_stop", { type: "message_stop" }]);
  return events;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
