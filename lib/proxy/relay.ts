/**
 * Relaying an upstream answer's body to the client: chunk by chunk with the usage tap beside it (`relay`), bounded
 * in silence (`silenceBounded`), and decoded when an upstream compresses what it was asked not to (`decodeBody`).
 */
import type { PlanResult } from "./plan_client.ts";
import { SseUsageTap, type StreamUsage } from "./sse_usage.ts";
import { SHUTDOWN_MESSAGE, sseErrorEvent } from "./bedrock/errors.ts";
import { type ChunkReader, chunkReader } from "./body_reader.ts";
import { idleWatch } from "./idle_watch.ts";
import { concatChunks } from "../encoding.ts";
import { afterLastEvent } from "./sse_boundary.ts";

const encoder = new TextEncoder();

/**
 * We ask for `accept-encoding: identity`, which also stops fetch from decoding; an upstream that compresses anyway
 * is decoded here (gzip, deflate) so the usage tap can read it. An encoding we cannot decode is passed on with
 * its header, untouched.
 */
export function decodeBody(
  head: Uint8Array[],
  reader: ChunkReader,
  encoding: string | null,
): { head: Uint8Array[]; reader: ChunkReader; encoding: string | null } {
  const e = encoding?.trim().toLowerCase() ?? "";
  if (e === "" || e === "identity") return { head, reader, encoding: null };
  if (e !== "gzip" && e !== "deflate" && e !== "x-gzip") return { head, reader, encoding: e };
  const pending = [...head];
  const raw = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = pending.shift();
      if (next) return controller.enqueue(next);
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  const format = e === "deflate" ? "deflate" : "gzip";
  const decoded = raw.pipeThrough(
    new DecompressionStream(format) as unknown as TransformStream<Uint8Array, Uint8Array>,
  );
  return { head: [], reader: decoded.getReader(), encoding: null };
}

/**
 * A passed-on answer's body, ended with an error once the upstream sends nothing for `ms` while the client waits
 * for more: an answer that stalls after its headers must not hold the client, and the upstream connection, for
 * ever. Read only as the client reads, so a client that reads slowly is no silence of the upstream's.
 */
export function silenceBounded(
  sent: Extract<PlanResult, { ok: true }>,
  ms: number,
): ReadableStream<Uint8Array> | null {
  const body = sent.response.body;
  if (!body) return null;
  const reader = chunkReader(body, sent.signal);
  const idle = idleWatch(ms, () => sent.abort(), "Anthropic API");
  idle.pause();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      idle.resume();
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read();
      } catch (e) {
        idle.stop();
        return c.error(
          idle.error
            ? new Error(`Anthropic API sent nothing for ${ms} ms mid-answer; the answer is incomplete`)
            : e,
        );
      }
      idle.pause();
      if (read.done) {
        idle.stop();
        c.close();
      } else c.enqueue(read.value);
    },
    cancel(reason) {
      idle.stop();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * Relays an upstream body to the client chunk by chunk (never buffered), feeding the usage tap beside it. A client
 * that goes away cancels the upstream read.
 *
 * SSE goes out in whole events: the bytes after a chunk's last event boundary wait for the rest of their event
 * (Anthropic flushes whole events, so this is almost always nothing). An upstream that dies mid-stream, or ends
 * without `message_stop`, then ends the client's stream with a clean Anthropic `error` event, not glued to half
 * an event the SDK could not parse.
 */
export function relay(o: {
  head: Uint8Array[];
  reader: ChunkReader;
  sse: boolean;
  onEnd: (usage: Partial<StreamUsage>, failure: "cancelled" | "interrupted" | null) => void;
  abort: () => void;
  /** Streams in flight: this one registers how to end it early, until it ends. */
  live: Set<() => void>;
  /** Aborted at the drain deadline: a stream that starts after it is ended at once. */
  shutdown: AbortSignal;
  /** The longest the upstream may stay silent mid-answer before the stream is ended as incomplete. */
  idleTimeoutMs?: number;
}): ReadableStream<Uint8Array> {
  // Only SSE has usage to read on the way: a JSON answer reaches here only past MAX_JSON_TAP, unread.
  const tap = o.sse ? new SseUsageTap() : null;
  let ended = false;
  let partial: Uint8Array | null = null; // SSE bytes after the last event boundary, not yet sent
  let stopped = false; // ended early by interrupt(): reads still pending must not touch the controller
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const idle = idleWatch(o.idleTimeoutMs, () => o.abort(), "Anthropic API");
  const end = (failure: "cancelled" | "interrupted" | null) => {
    if (ended) return;
    ended = true;
    idle.stop();
    o.live.delete(interrupt);
    // Cut short (or ended by the upstream's own error event), the answer's final output count never comes: what
    // was relayed stands in for it.
    if (failure || tap?.result.error) tap?.estimateCutShort();
    o.onEnd(tap ? tap.result : {}, failure);
  };
  const interrupt = () => {
    if (ended) return;
    stopped = true;
    partial = null;
    try {
      if (o.sse) {
        controller.enqueue(
          encoder.encode(sseErrorEvent("api_error", SHUTDOWN_MESSAGE)),
        );
        controller.close();
      } else controller.error(new Error("the proxy is shutting down"));
    } catch { /* the client side is gone already */ }
    end("interrupted");
    o.reader.cancel().catch(() => {});
    o.abort();
  };
  o.live.add(interrupt);
  /** What of `chunk` can go out now. */
  const whole = (chunk: Uint8Array): Uint8Array | null => {
    if (!o.sse) return chunk;
    const data = partial ? concatChunks([partial, chunk]) : chunk;
    const cut = afterLastEvent(data);
    partial = cut === data.length ? null : data.slice(cut);
    if (partial && partial.length > MAX_PARTIAL_EVENT) {
      // Not SSE as we know it: pass it on as it comes rather than hold it.
      partial = null;
      return data;
    }
    return cut === 0 ? null : cut === data.length ? data : data.subarray(0, cut);
  };
  const head = [...o.head];
  for (const chunk of head) tap?.push(chunk);
  const cutShort = (controller: ReadableStreamDefaultController<Uint8Array>, message: string) => {
    partial = null;
    controller.enqueue(encoder.encode(sseErrorEvent("api_error", message)));
    end("interrupted");
    controller.close();
  };
  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      if (o.shutdown.aborted) interrupt();
    },
    async pull(controller) {
      for (;;) {
        if (stopped) return;
        const next = head.shift() ?? null;
        let value: Uint8Array;
        if (next) value = next;
        else {
          let read: ReadableStreamReadResult<Uint8Array>;
          try {
            // Only the wait for the upstream counts: while the client is not reading, nothing is asked of it.
            idle.resume();
            read = await o.reader.read();
            idle.pause();
          } catch {
            if (stopped) return;
            if (tap?.result.completed) {
              // Lost after message_stop: the answer is whole; only the upstream's end of body did not come.
              if (partial) controller.enqueue(partial);
              partial = null;
              end(null);
              return controller.close();
            }
            const lost = idle.error
              ? `Anthropic API sent nothing for ${Math.round(o.idleTimeoutMs! / 1000)} s mid-stream`
              : "Anthropic API connection lost mid-stream";
            if (o.sse) return cutShort(controller, `${lost}; the answer is incomplete`);
            end("interrupted");
            return controller.error(new Error(lost));
          }
          if (stopped) return;
          if (read.done) {
            if (tap && !tap.result.completed && tap.result.error === null) {
              return cutShort(
                controller,
                "Anthropic API stream ended before message_stop; the answer is incomplete",
              );
            }
            if (partial) controller.enqueue(partial);
            partial = null;
            end(null);
            return controller.close();
          }
          value = read.value;
          tap?.push(value);
        }
        const out = whole(value);
        if (out) return controller.enqueue(out);
      }
    },
    cancel() {
      stopped = true; // a read still pending must not touch the cancelled controller
      // After message_stop the answer is whole (only the upstream's end of body was still to come): a client
      // that stops reading then did not cut it short.
      end(tap?.result.completed ? null : "cancelled");
      o.reader.cancel().catch(() => {});
      o.abort();
    },
  }, { highWaterMark: 0 });
}

/** Past this, bytes without an event boundary are passed on instead of held (no SSE event is this large). */
const MAX_PARTIAL_EVENT = 1024 * 1024;
