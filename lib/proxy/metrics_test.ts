import assert from "node:assert/strict";
import { MAX_MODEL_LABELS, ProxyMetrics } from "./metrics.ts";
import type { UsageRecord } from "../db/usage.ts";

function record(model: string, statusCode = 200): UsageRecord {
  return {
    requestId: crypto.randomUUID(),
    accessKeyId: "k",
    userId: "u",
    messageId: null,
    model,
    modelServed: null,
    stream: false,
    inputTokens: 1,
    outputTokens: 1,
    cacheReadInputTokens: 0,
    cacheCreationInputTokens: 0,
    provider: "anthropic",
    isFallback: false,
    fallbackReason: null,
    statusCode,
    errorType: null,
    stopReason: null,
    latencyMs: 10,
    timeToFirstByteMs: 5,
    costUsd: null,
    createdAt: new Date(0).toISOString(),
  };
}

Deno.test("model labels are bounded: client-chosen names past the limit count as other", () => {
  const m = new ProxyMetrics();
  const extra = 50;
  for (let i = 0; i < MAX_MODEL_LABELS + extra; i++) {
    m.observeRequest(record(`made-up-model-${i}`), false, true);
  }
  m.observeRequest(record("made-up-model-0"), false, true); // a name already seen keeps its own label
  const text = m.render();
  const models = new Set([...text.matchAll(/proxy_requests_total\{[^}]*model="([^"]*)"/g)].map((x) => x[1]));
  assert.equal(models.size, MAX_MODEL_LABELS + 1);
  assert.match(text, /proxy_requests_total\{provider="anthropic",status="200",model="other"\} 50\n/);
  assert.match(text, /proxy_requests_total\{provider="anthropic",status="200",model="made-up-model-0"\} 2\n/);
  assert.match(text, /proxy_unpriced_requests_total\{model="other"\} 50\n/);
});

Deno.test("names no provider took as a model count as other and leave the labels to real models", () => {
  const m = new ProxyMetrics();
  // Refused by the Anthropic API, or served by Bedrock's default model for an unknown name: priced or not.
  for (let i = 0; i < MAX_MODEL_LABELS * 2; i++) m.observeRequest(record(`junk-${i}`, 404), true, false);
  m.observeRequest(record("claude-sonnet-4-5[junk]", 200), true, false);
  m.observeRequest(record("claude-sonnet-4-5", 200), true, true);
  m.observeRequest(record("claude-sonnet-4-5", 429), true, false); // labelled already: keeps its label
  const text = m.render();
  assert.match(text, /proxy_requests_total\{provider="anthropic",status="404",model="other"\} 200\n/);
  assert.match(text, /status="200",model="claude-sonnet-4-5"\} 1\n/);
  assert.match(text, /status="429",model="claude-sonnet-4-5"\} 1\n/);
  assert.doesNotMatch(text, /junk/);
});

Deno.test("label values are cut to 100 characters, then escaped: a cut never splits an escape", () => {
  const m = new ProxyMetrics();
  m.observeRequest(record(`a"b\\c\n${"x".repeat(200)}`), true, true);
  m.observeRequest(record(`${"y".repeat(99)}"tail`), true, true);
  const labels = [...m.render().matchAll(/proxy_requests_total\{[^\n]*model="((?:[^"\\]|\\.)*)"\} 1$/gm)]
    .map((x) => x[1]);
  assert.equal(labels.length, 2, "both lines parse as complete labels");
  assert.ok(labels[0].startsWith('a\\"b\\\\c\\n'));
  assert.equal(labels[0].length, 100 + 3, "100 characters, three of them escaped");
  assert.equal(labels[1], `${"y".repeat(99)}\\"`);
});
