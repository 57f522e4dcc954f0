import assert from "node:assert/strict";
import { planAnswerOf, replayPlanAnswer } from "./plan_answer.ts";

const encoder = new TextEncoder();

function upstream(status: number, headers: Record<string, string>): Response {
  return new Response(null, { status, statusText: "Too Many Requests", headers });
}

Deno.test("a kept answer replays with its status, its headers and its bytes, marked as the proxy's", async () => {
  const kept = planAnswerOf(
    upstream(429, {
      "retry-after": "7",
      "request-id": "req_1",
      "connection": "close",
      "content-type": "a/b",
    }),
    [encoder.encode('{"type":"error",'), encoder.encode('"error":{}}')],
    false,
  );
  const res = replayPlanAnswer(kept, "px_1", "rate_limited");
  assert.equal(res.status, 429);
  assert.equal(res.statusText, "Too Many Requests");
  assert.equal(await res.text(), '{"type":"error","error":{}}');
  assert.equal(res.headers.get("retry-after"), "7");
  assert.equal(res.headers.get("request-id"), "req_1");
  assert.equal(res.headers.get("connection"), null, "hop-by-hop headers stay behind");
  assert.equal(res.headers.get("x-proxy-request-id"), "px_1");
  assert.equal(res.headers.get("x-proxy-provider"), "anthropic");
  assert.equal(res.headers.get("x-proxy-fallback-reason"), "rate_limited");
  const again = replayPlanAnswer(kept, "px_2", null);
  assert.equal(
    again.headers.get("x-proxy-request-id"),
    "px_2",
    "the kept headers are not changed by a replay",
  );
  assert.equal(again.headers.get("x-proxy-fallback-reason"), null);
  assert.equal(await again.text(), '{"type":"error","error":{}}', "and it can be replayed again");
});

Deno.test("raw bytes keep their content-encoding; a body the proxy decoded drops it", () => {
  const head = [encoder.encode("\x1f\x8b")];
  const gz = upstream(503, { "content-encoding": "gzip" });
  assert.equal(planAnswerOf(gz, head, true).headers.get("content-encoding"), "gzip");
  assert.equal(planAnswerOf(gz, head, false).headers.get("content-encoding"), null);
  const identity = upstream(503, { "content-encoding": "identity" });
  assert.equal(planAnswerOf(identity, head, true).headers.get("content-encoding"), null);
});

Deno.test("a status that cannot carry a body replays without one", async () => {
  const res = replayPlanAnswer(planAnswerOf(upstream(204, {}), [encoder.encode("x")], false), "px", null);
  assert.equal(res.status, 204);
  assert.equal(res.body, null);
  assert.equal(await res.text(), "");
});
