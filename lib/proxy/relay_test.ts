import assert from "node:assert/strict";
import { decodeBody, relay } from "./relay.ts";
import type { StreamUsage } from "./sse_usage.ts";

const encoder = new TextEncoder();

const event = (type: string, data: Record<string, unknown>) =>
  `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
const START = event("message_start", {
  message: { id: "msg_1", model: "claude-x", usage: { input_tokens: 7, output_tokens: 1 } },
});
const DELTA = event("content_block_delta", { index: 0, delta: { type: "text_delta", text: "hello" } });
const FINAL = event("message_delta", { delta: { stop_reason: "end_turn" }, usage: { output_tokens: 12 } });
const STOP = event("message_stop", {});

/** An upstream body the test feeds chunk by chunk; `fail` makes its next read throw, as a reset connection. */
function upstream() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    start: (c) => void (controller = c),
    cancel: () => void (cancelled = true),
  });
  const reader = body.getReader();
  return {
    reader,
    cancelled: () => cancelled,
    send: (text: string) => controller.enqueue(encoder.encode(text)),
    end: () => controller.close(),
    fail: () => controller.error(new Error("connection reset")),
  };
}

function relayed(o: { sse: boolean; head?: string[] }) {
  const up = upstream();
  const ends: Array<{ usage: Partial<StreamUsage>; failure: string | null }> = [];
  let aborted = 0;
  const live = new Set<() => void>();
  const stream = relay({
    head: (o.head ?? []).map((t) => encoder.encode(t)),
    reader: up.reader,
    sse: o.sse,
    onEnd: (usage, failure) => ends.push({ usage, failure }),
    abort: () => aborted++,
    live,
    shutdown: new AbortController().signal,
  });
  const out = stream.getReader();
  const decoder = new TextDecoder();
  const next = async () => {
    const r = await out.read();
    return r.done ? null : decoder.decode(r.value);
  };
  return { up, out, next, ends, live, aborted: () => aborted };
}

Deno.test("SSE goes out in whole events: bytes after the last boundary wait for the rest of their event", async () => {
  const r = relayed({ sse: true, head: [START] });
  assert.equal(await r.next(), START, "what came with the headers goes first");
  r.up.send(DELTA.slice(0, 20));
  r.up.send(DELTA.slice(20) + FINAL.slice(0, 5));
  assert.equal(await r.next(), DELTA, "half an event is held, then sent with the rest of it");
  r.up.send(FINAL.slice(5) + STOP);
  r.up.end();
  assert.equal(await r.next(), FINAL + STOP);
  assert.equal(await r.next(), null);
  assert.equal(r.ends.length, 1);
  assert.equal(r.ends[0].failure, null);
  assert.deepEqual(
    [r.ends[0].usage.messageId, r.ends[0].usage.inputTokens, r.ends[0].usage.outputTokens],
    ["msg_1", 7, 12],
    "the tap read the usage on the way: message_delta's count, not added to message_start's",
  );
  assert.equal(r.live.size, 0, "an ended stream is no longer live");
});

Deno.test("an upstream lost mid-stream ends the client's stream with an error event, not half an event", async () => {
  const r = relayed({ sse: true, head: [START] });
  await r.next();
  r.up.send(DELTA + FINAL.slice(0, 10));
  assert.equal(await r.next(), DELTA);
  r.up.fail();
  const last = await r.next();
  assert.match(last!, /^event: error\ndata: .*"api_error".*connection lost mid-stream/);
  assert.equal(await r.next(), null);
  assert.equal(r.ends[0].failure, "interrupted");
});

Deno.test("an upstream that ends before message_stop gets an error event, recorded as cut short", async () => {
  const r = relayed({ sse: true, head: [START + DELTA] });
  await r.next();
  r.up.end();
  assert.match((await r.next())!, /ended before message_stop/);
  assert.equal(await r.next(), null);
  assert.equal(r.ends[0].failure, "interrupted");
});

Deno.test("a client that goes away cancels the upstream read and aborts the call, recorded once", async () => {
  const r = relayed({ sse: true, head: [START] });
  await r.next();
  await r.out.cancel("client gone");
  assert.equal(r.aborted(), 1);
  assert.equal(r.ends.length, 1);
  assert.equal(r.ends[0].failure, "cancelled");
  assert.ok(r.up.cancelled(), "the upstream body was cancelled");
});

Deno.test("interrupting a live stream (the drain deadline) sends the shutdown error event and aborts", async () => {
  const r = relayed({ sse: true, head: [START] });
  await r.next();
  assert.equal(r.live.size, 1);
  for (const interrupt of r.live) interrupt();
  assert.match((await r.next())!, /^event: error\n.*shutting down/s);
  assert.equal(await r.next(), null);
  assert.equal(r.ends[0].failure, "interrupted");
  assert.equal(r.aborted(), 1);
});

Deno.test("a JSON body is passed on chunk by chunk as it comes, with no usage read", async () => {
  const r = relayed({ sse: false });
  r.up.send('{"id":"msg_1",');
  assert.equal(await r.next(), '{"id":"msg_1",');
  r.up.send('"usage":{"input_tokens":3}}');
  r.up.end();
  assert.equal(await r.next(), '"usage":{"input_tokens":3}}');
  assert.equal(await r.next(), null);
  assert.deepEqual(r.ends, [{ usage: {}, failure: null }]);
});

Deno.test("decodeBody decodes gzip, leaves identity alone and passes an unknown encoding on", async () => {
  const text = START + STOP;
  const gz = new Uint8Array(
    await new Response(
      new Blob([text]).stream().pipeThrough(
        new CompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>,
      ),
    ).arrayBuffer(),
  );
  const half = gz.length >> 1;
  const rest = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(gz.subarray(half));
      c.close();
    },
  }).getReader();
  const decoded = decodeBody([gz.subarray(0, half)], rest, " GZIP ");
  assert.equal(decoded.encoding, null);
  assert.deepEqual(decoded.head, []);
  let out = "";
  const d = new TextDecoder();
  for (;;) {
    const r = await decoded.reader.read();
    if (r.done) break;
    out += d.decode(r.value, { stream: true });
  }
  assert.equal(out, text);

  const plain = upstream();
  assert.equal(decodeBody([], plain.reader, "identity").encoding, null);
  const br = decodeBody([encoder.encode("x")], plain.reader, "br");
  assert.equal(br.encoding, "br", "an encoding it cannot decode is passed on with its header");
  assert.equal(br.reader, plain.reader, "and its bytes untouched");
});

Deno.test("a client that goes away after message_stop has the whole answer: recorded as complete, not cancelled", async () => {
  const r = relayed({ sse: true, head: [START] });
  await r.next();
  r.up.send(DELTA + FINAL + STOP); // the upstream's end of body has not come yet
  assert.equal(await r.next(), DELTA + FINAL + STOP);
  await r.out.cancel("client has what it needs");
  assert.equal(r.ends.length, 1);
  assert.equal(r.ends[0].failure, null);
  assert.equal(r.ends[0].usage.outputTokens, 12);
  assert.equal(r.ends[0].usage.outputEstimated, false);
  assert.equal(r.aborted(), 1, "the upstream call is still ended");
});

Deno.test("an upstream lost after message_stop ends the stream cleanly: no error event, recorded as complete", async () => {
  const r = relayed({ sse: true, head: [START] });
  await r.next();
  r.up.send(DELTA + FINAL + STOP);
  assert.equal(await r.next(), DELTA + FINAL + STOP);
  r.up.fail(); // the connection resets before the end of body
  assert.equal(await r.next(), null, "no error event after a whole answer");
  assert.equal(r.ends.length, 1);
  assert.equal(r.ends[0].failure, null);
  assert.equal(r.ends[0].usage.outputTokens, 12);
});
