import assert from "node:assert/strict";
import { SseUsageTap, usageFromJson } from "./sse_usage.ts";

const usage = {
  input_tokens: 12,
  cache_creation_input_tokens: 5_000,
  cache_read_input_tokens: 40_000,
  cache_creation: { ephemeral_5m_input_tokens: 1_000, ephemeral_1h_input_tokens: 4_000 },
  output_tokens: 1,
};

Deno.test("the tap reads cumulative usage, including the 1-hour share of cache writes", () => {
  const tap = new SseUsageTap();
  const events = [
    ["message_start", { type: "message_start", message: { id: "msg_1", model: "claude-sonnet-4-5", usage } }],
    ["message_delta", {
      type: "message_delta",
      delta: { stop_reason: "end_turn" },
      usage: { output_tokens: 30 },
    }],
    ["message_delta", { type: "message_delta", delta: {}, usage: { output_tokens: 57 } }],
    ["message_stop", { type: "message_stop" }],
  ] as const;
  const text = events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join("");
  const bytes = new TextEncoder().encode(text);
  for (let i = 0; i < bytes.length; i += 7) tap.push(bytes.subarray(i, i + 7)); // split as the network does
  const r = tap.result;
  assert.equal(r.outputTokens, 57, "the last cumulative value, not a sum");
  assert.equal(r.cacheCreationInputTokens, 5_000);
  assert.equal(r.cacheCreation1hInputTokens, 4_000);
  assert.equal(r.cacheReadInputTokens, 40_000);
  assert.equal(r.stopReason, "end_turn");
  assert.equal(r.completed, true);
});

Deno.test("a JSON answer's usage includes the 1-hour share of cache writes; without it, 0", () => {
  const body = (u: unknown) =>
    new TextEncoder().encode(JSON.stringify({ id: "msg_2", model: "m", usage: u }));
  assert.equal(usageFromJson(body(usage)).cacheCreation1hInputTokens, 4_000);
  assert.equal(usageFromJson(body({ input_tokens: 1, output_tokens: 2 })).cacheCreation1hInputTokens, 0);
});

Deno.test("fields of the wrong type (an upstream off contract) are taken as absent, not passed on", () => {
  const json = usageFromJson(new TextEncoder().encode(JSON.stringify({
    id: 42,
    model: { name: "x" },
    stop_reason: 7,
    usage: { input_tokens: "12", output_tokens: 3, cache_read_input_tokens: null },
  })));
  assert.deepEqual(
    [
      json.messageId,
      json.model,
      json.stopReason,
      json.inputTokens,
      json.outputTokens,
      json.cacheReadInputTokens,
    ],
    [null, null, null, 0, 3, 0],
  );
  assert.deepEqual(usageFromJson(new TextEncoder().encode("null")), {});
  assert.deepEqual(usageFromJson(new TextEncoder().encode('{"type":"error","error":"boom"}')).error, {
    type: "api_error",
    message: "",
  });

  const tap = new SseUsageTap();
  const start = { type: "message_start", message: { id: 1, model: 2, usage: "lots" } };
  const delta = { type: "message_delta", delta: { stop_reason: false }, usage: { output_tokens: 9 } };
  tap.push(new TextEncoder().encode(
    `event: message_start\ndata: ${JSON.stringify(start)}\n\nevent: message_delta\ndata: ${
      JSON.stringify(delta)
    }\n\n`,
  ));
  assert.deepEqual([tap.result.messageId, tap.result.model, tap.result.stopReason], [null, null, null]);
  assert.equal(tap.result.outputTokens, 9);
});

Deno.test("a count no API sends (huge, infinite, fractional, negative) is ignored, never priced", () => {
  const tap = new SseUsageTap();
  // JSON.parse reads 1e400 as Infinity.
  const text = `event: message_start\ndata: {"type":"message_start","message":{"id":"m","usage":` +
    `{"input_tokens":12,"cache_creation_input_tokens":1e300,"cache_read_input_tokens":1.5,"output_tokens":1}}}\n\n` +
    `event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"output_tokens":1e400,"input_tokens":-4}}\n\n`;
  tap.push(new TextEncoder().encode(text));
  const r = tap.result;
  assert.deepEqual(
    [r.inputTokens, r.outputTokens, r.cacheCreationInputTokens, r.cacheReadInputTokens],
    [12, 1, 0, 0],
    "the counts sent before stand; the broken ones are as if not sent",
  );
  const json = usageFromJson(new TextEncoder().encode(
    `{"id":"m","usage":{"input_tokens":1e300,"output_tokens":1e400,"cache_read_input_tokens":7}}`,
  ));
  assert.deepEqual([json.inputTokens, json.outputTokens, json.cacheReadInputTokens], [0, 0, 7]);
});

Deno.test("the tap and the JSON reader take fast mode, the inference geo and web searches for pricing", () => {
  const billed = {
    input_tokens: 10,
    output_tokens: 1,
    speed: "fast",
    inference_geo: "us",
    server_tool_use: { web_search_requests: 2 },
  };
  const tap = new SseUsageTap();
  tap.push(new TextEncoder().encode(
    `event: message_start\ndata: ${
      JSON.stringify({ type: "message_start", message: { usage: billed } })
    }\n\n` +
      `event: message_delta\ndata: ${
        JSON.stringify({
          type: "message_delta",
          delta: {},
          usage: { output_tokens: 9, server_tool_use: { web_search_requests: 3 } },
        })
      }\n\n`,
  ));
  assert.equal(tap.result.speed, "fast");
  assert.equal(tap.result.inferenceGeo, "us");
  assert.equal(tap.result.webSearchRequests, 3, "cumulative, as the token counts");
  const json = usageFromJson(new TextEncoder().encode(JSON.stringify({ id: "m", usage: billed })));
  assert.deepEqual([json.speed, json.inferenceGeo, json.webSearchRequests], ["fast", "us", 2]);
  const plain = usageFromJson(new TextEncoder().encode(JSON.stringify({ id: "m", usage: { speed: 6 } })));
  assert.deepEqual([plain.speed, plain.inferenceGeo, plain.webSearchRequests], [null, null, 0]);
});

Deno.test("cut short before its final count, a stream's output is estimated from the text, thinking and tool input relayed", () => {
  const sse = (events: unknown[]) =>
    new TextEncoder().encode(
      events.map((d) => `event: ${(d as { type: string }).type}\ndata: ${JSON.stringify(d)}\n\n`).join(""),
    );
  const delta = (index: number, delta: Record<string, string>) => ({
    type: "content_block_delta",
    index,
    delta,
  });
  const start = { type: "message_start", message: { id: "m", usage: { input_tokens: 5, output_tokens: 1 } } };
  const tap = new SseUsageTap();
  tap.push(sse([
    start,
    delta(0, { type: "thinking_delta", thinking: "a".repeat(40) }),
    delta(0, { type: "signature_delta", signature: "s".repeat(400) }),
    delta(1, { type: "text_delta", text: 'he said "b":"c" \\ and ' + "x".repeat(19) }),
    delta(12, { type: "input_json_delta", partial_json: '{"path":' }),
  ]));
  // 40 + 41 characters as escaped on the wire (4 quotes and a backslash: 46) + 8 as 10 escaped; no signature.
  assert.equal(tap.result.deltaChars, 40 + 46 + 10);
  assert.equal(tap.result.outputTokens, 1);
  tap.estimateCutShort();
  assert.equal(tap.result.outputTokens, 24);
  assert.equal(tap.result.outputEstimated, true);

  // Once the final count came, it stands, cut short or not.
  const counted = new SseUsageTap();
  counted.push(sse([
    start,
    delta(0, { type: "text_delta", text: "y".repeat(400) }),
    { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 90 } },
  ]));
  counted.estimateCutShort();
  assert.deepEqual([counted.result.outputTokens, counted.result.outputEstimated], [90, false]);
});
