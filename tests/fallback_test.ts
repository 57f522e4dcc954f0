/**
 * Automatic Bedrock fallback end to end: the proxy in front of the fake Anthropic API and the fake Bedrock runtime
 * (SigV4-checked, real AWS event-stream frames), driven by the real `@anthropic-ai/sdk` and raw fetch.
 */
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { dbTest } from "./helpers/db.ts";
import { type ProxyFixture, startProxy, waitFor } from "./helpers/proxy.ts";
import { type FakeBedrock, fakeTokenCount, startFakeBedrock } from "./fakes/fake_bedrock.ts";
import type { AnthropicStep } from "./fakes/fake_anthropic.ts";
import { sql } from "../lib/db/sql.ts";
import type { Db } from "../lib/db/db.ts";
import type { ServiceOverrides } from "../lib/services.ts";
import { collectGarbage } from "./helpers/gc.ts";
import { createLocalEncryptor } from "../lib/crypto/mod.ts";

const IAM = { id: "AKIAFAKEBEDROCK00001", secret: "fake/bedrock/secret/key/0123456789abcdef" };
const API_KEY = "ABSKZmFrZS1iZWRyb2NrLWFwaS1rZXk=";
const MESSAGE = {
  model: "claude-sonnet-4-5-20250929",
  max_tokens: 256,
  messages: [{ role: "user" as const, content: "Hello" }],
};

interface Fixture extends ProxyFixture {
  bedrock: FakeBedrock;
}

async function setup(
  db: Db,
  opts: {
    env?: Record<string, string>;
    credentials?: "iam" | "api_key" | "none";
    user?: Record<string, unknown>;
    overrides?: ServiceOverrides;
  } = {},
): Promise<Fixture> {
  const bedrock = await startFakeBedrock({
    iamCredentials: { [IAM.id]: IAM.secret },
    apiKeys: [API_KEY],
    reply: {
      text: ["Hello ", "from ", "Bedrock."],
      usage: {
        input_tokens: 40,
        output_tokens: 7,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 20,
      },
    },
  });
  const p = await startProxy(db, {
    env: { PROXY_BEDROCK_ENDPOINT: bedrock.url, PROXY_BEDROCK_REGION: "us-east-1", ...opts.env },
    user: opts.user,
    overrides: opts.overrides,
  });
  const h = await p.t.auth();
  if (opts.credentials !== "none") {
    const body = opts.credentials === "api_key"
      ? { bedrock_api_key: API_KEY, region: "us-west-2" }
      : { aws_access_key_id: IAM.id, aws_secret_access_key: IAM.secret };
    const put = await p.t.call("PUT", `/api/access-keys/${p.keyId}/bedrock-key`, body, h);
    assert.equal(put.status, 200, JSON.stringify(put.body));
  }
  return {
    ...p,
    bedrock,
    async close() {
      await p.close();
      await bedrock.close();
    },
  };
}

/** Bedrock's refusal of a model id it does not offer (under this profile, in this region), `times` over. */
function invalidModelId(times = 1) {
  return {
    kind: "error",
    status: 400,
    errorType: "ValidationException",
    message: "The provided model identifier is invalid.",
    times,
  } as const;
}

function post(f: Fixture, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${f.baseUrl}/v1/messages?beta=true`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": "sk-ant-client", ...headers },
    body: JSON.stringify(body),
  });
}

async function rows(db: Db) {
  return await db.query<Record<string, unknown>>(sql`SELECT * FROM token_usages ORDER BY created_at, id`);
}

async function flushed(f: Fixture, n: number) {
  await waitFor(() => f.t.services.recorder.stats().queued >= n, 5000, `${n} usage rows`);
  await f.t.services.recorder.flush();
}

/** Posts a request for `model`, expects it answered (200), and returns its usage row once written. */
async function answeredRow(f: Fixture, db: Db, model: string) {
  const res = await post(f, { ...MESSAGE, model });
  assert.equal(res.status, 200);
  await res.text();
  await flushed(f, 1);
  const [r] = await rows(db);
  return r;
}

const future = () => Math.floor(Date.now() / 1000) + 3600;

/** An Anthropic 429 with its own retry-after, for answers that must reach the client as the API sent them. */
const RATE_LIMITED: AnthropicStep = {
  kind: "error",
  status: 429,
  type: "rate_limit_error",
  message: "Number of requests has exceeded your rate limit",
  headers: { "retry-after": "17" },
};

/** Every row of the fallback table, streaming and not. */
const TABLE: Array<{
  name: string;
  step?: AnthropicStep;
  env?: Record<string, string>;
  fallback: boolean;
  reason?: string;
  status?: number;
  counts: boolean;
  opens?: boolean;
  streamOnly?: boolean;
}> = [
  {
    name: "429 rate_limit_error",
    step: {
      kind: "error",
      status: 429,
      type: "rate_limit_error",
      message: "Number of requests has exceeded your rate limit",
    },
    fallback: true,
    reason: "rate_limited",
    counts: true,
  },
  {
    name: "429 usage limit with a reset time",
    step: {
      kind: "error",
      status: 429,
      type: "rate_limit_error",
      message: `Claude AI usage limit reached|${future()}`,
    },
    fallback: true,
    reason: "usage_limit",
    counts: true,
    opens: true,
  },
  {
    name: "429 usage limit announced by headers",
    step: {
      kind: "error",
      status: 429,
      type: "rate_limit_error",
      message: "rate limited",
      headers: {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": String(future()),
      },
    },
    fallback: true,
    reason: "usage_limit",
    counts: true,
    opens: true,
  },
  {
    name: "529 overloaded_error",
    step: { kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" },
    fallback: true,
    reason: "overloaded",
    counts: true,
  },
  {
    name: "500",
    step: { kind: "error", status: 500, type: "api_error", message: "Internal" },
    fallback: true,
    reason: "upstream_500",
    counts: true,
  },
  {
    name: "502",
    step: { kind: "error", status: 502, type: "api_error", message: "Bad gateway" },
    fallback: true,
    reason: "upstream_502",
    counts: true,
  },
  {
    name: "503",
    step: { kind: "error", status: 503, type: "api_error", message: "Unavailable" },
    fallback: true,
    reason: "upstream_503",
    counts: true,
  },
  {
    name: "504",
    step: { kind: "error", status: 504, type: "api_error", message: "Timeout" },
    fallback: true,
    reason: "upstream_504",
    counts: true,
  },
  {
    name: "501",
    step: { kind: "error", status: 501, type: "api_error", message: "Not implemented" },
    fallback: true,
    reason: "upstream_501",
    counts: true,
  },
  {
    name: "520 (the edge in front of the API: the origin failed)",
    step: { kind: "error", status: 520, type: "api_error", message: "Unknown error" },
    fallback: true,
    reason: "upstream_520",
    counts: true,
  },
  {
    name: "524 (the edge: the origin timed out)",
    step: { kind: "error", status: 524, type: "api_error", message: "A timeout occurred" },
    fallback: true,
    reason: "upstream_524",
    counts: true,
  },
  {
    name: "connection refused",
    env: { PROXY_PLAN_API_URL: "http://127.0.0.1:9" },
    fallback: true,
    reason: "connect_error",
    counts: true,
  },
  {
    name: "DNS failure",
    env: { PROXY_PLAN_API_URL: "http://no-such-host.invalid" },
    fallback: true,
    reason: "connect_error",
    counts: true,
  },
  {
    name: "first-byte timeout",
    step: { kind: "hang" },
    env: { PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: "300", PROXY_UPSTREAM_RESPONSE_TIMEOUT_MS: "300" },
    fallback: true,
    reason: "first_byte_timeout",
    counts: true,
  },
  {
    // Streaming: before its first event; non-streaming: after the headers, before the JSON's last byte (the
    // client has seen nothing either way).
    name: "the connection reset after the answer's headers",
    step: { kind: "die_mid_stream", afterEvents: 0, declared: true },
    fallback: true,
    reason: "stream_reset",
    counts: true,
  },
  {
    name: "a stream whose first event is an error",
    step: { kind: "error_event", type: "overloaded_error", message: "Overloaded" },
    fallback: true,
    reason: "stream_error",
    counts: true,
    streamOnly: true,
  },
  {
    name: "400",
    step: { kind: "error", status: 400, type: "invalid_request_error", message: "bad" },
    fallback: false,
    status: 400,
    counts: false,
  },
  {
    name: "401",
    step: { kind: "error", status: 401, type: "authentication_error", message: "bad key" },
    fallback: false,
    status: 401,
    counts: false,
  },
  {
    name: "403",
    step: { kind: "error", status: 403, type: "permission_error", message: "no" },
    fallback: false,
    status: 403,
    counts: false,
  },
  {
    name: "404",
    step: { kind: "error", status: 404, type: "not_found_error", message: "no model" },
    fallback: false,
    status: 404,
    counts: false,
  },
  {
    name: "413",
    step: { kind: "error", status: 413, type: "request_too_large", message: "too big" },
    fallback: false,
    status: 413,
    counts: false,
  },
];

for (const row of TABLE) {
  for (const stream of row.streamOnly ? [true] : [false, true]) {
    dbTest(`fallback table: ${row.name} (${stream ? "streaming" : "non-streaming"})`, async (db) => {
      const f = await setup(db, { env: { PROXY_CIRCUIT_FAILURE_THRESHOLD: "5", ...row.env } });
      try {
        if (row.step) f.upstream.script(row.step);
        const res = await post(f, { ...MESSAGE, stream });
        const text = await res.text();
        if (row.fallback) {
          assert.equal(res.status, 200, text);
          assert.equal(res.headers.get("x-proxy-provider"), "bedrock");
          assert.equal(res.headers.get("x-proxy-fallback-reason"), row.reason);
          if (stream) assert.match(text, /event: message_start[\s\S]*Bedrock\.[\s\S]*event: message_stop/);
          else assert.equal(JSON.parse(text).content[0].text, "Hello from Bedrock.");
          assert.equal(f.bedrock.requests.length, 1);
        } else {
          assert.equal(res.status, row.status);
          assert.equal(res.headers.get("x-proxy-provider"), "anthropic");
          assert.equal(JSON.parse(text).error.type, (row.step as { type: string }).type);
          assert.equal(f.bedrock.requests.length, 0);
        }
        const circuit =
          (await f.t.call("GET", `/api/access-keys/${f.keyId}/circuit`, undefined, await f.t.auth())).body;
        if (row.opens) {
          assert.equal(circuit.state, "open");
          assert.ok(
            new Date(circuit.reopens_at).getTime() > Date.now() + 3000_000,
            "open until the announced reset",
          );
        } else {
          assert.equal(circuit.state, "closed");
          assert.equal(circuit.failures, row.counts ? 1 : 0);
        }
        await flushed(f, 1);
        assert.equal(f.t.services.metrics.streamsOpen, 0, "a finished answer leaves no stream counted open");
        const [r] = await rows(db);
        assert.equal(r.provider, row.fallback ? "bedrock" : "anthropic");
        assert.equal(r.is_fallback, row.fallback);
        assert.equal(r.fallback_reason, row.fallback ? row.reason : null);
        if (row.fallback) {
          assert.equal(r.model_served, "global.anthropic.claude-sonnet-4-5-20250929-v1:0");
          assert.deepEqual(
            [r.input_tokens, r.output_tokens, r.cache_read_input_tokens, r.cache_creation_input_tokens],
            [40, 7, 100, 20],
          );
        }
      } finally {
        await f.close();
      }
    });
  }
}

dbTest(
  "Bedrock credentials removed behind a cached key give way to the plan's retryable answer, not a final 403",
  async (db) => {
    const f = await setup(db);
    try {
      // The key is looked up (and cached with its credentials flag) by a first request the plan answers.
      assert.equal((await post(f, MESSAGE)).status, 200);
      // The credentials go while the key's cache entry stays (as between a delete and its broadcast).
      await db.query(sql`DELETE FROM bedrock_keys WHERE access_key_id = ${f.keyId}`);
      f.t.services.credentials.forget(f.keyId);
      f.upstream.script({ kind: "error", status: 429, type: "rate_limit_error", message: "slow down" });
      const res = await post(f, MESSAGE);
      assert.equal(res.status, 429, "Claude Code retries a 429; a 403 would end its turn");
      assert.equal((await res.json()).error.type, "rate_limit_error");
      assert.equal(f.bedrock.requests.length, 0);
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "a client that leaves while Bedrock works is recorded as 499, not as a Bedrock or plan failure",
  async (db) => {
    const f = await setup(db);
    try {
      for (const stream of [false, true]) {
        f.upstream.script({ kind: "error", status: 429, type: "rate_limit_error", message: "slow down" });
        f.bedrock.script({ kind: "reply", reply: { responseDelayMs: 1_500 } });
        const controller = new AbortController();
        const res = fetch(`${f.baseUrl}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-api-key": "sk-ant-client" },
          body: JSON.stringify({ ...MESSAGE, stream }),
          signal: controller.signal,
        }).catch(() => null);
        const seen = f.bedrock.requests.length;
        await waitFor(() => f.bedrock.requests.length === seen + 1, 3000, "Bedrock got the request");
        controller.abort();
        await res;
      }
      await flushed(f, 2);
      const all = await rows(db);
      assert.deepEqual(
        all.map((r) => [r.status_code, r.error_type, r.provider, r.is_fallback]),
        [[499, "client_closed_request", "bedrock", true], [499, "client_closed_request", "bedrock", true]],
      );
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "a client that leaves before the first event is not an upstream failure: no fallback, no breaker count",
  async (db) => {
    const f = await setup(db);
    try {
      for (let i = 0; i < 4; i++) {
        f.upstream.script({ kind: "silent_stream" });
        const controller = new AbortController();
        const res = fetch(`${f.baseUrl}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-api-key": "sk-ant-client" },
          body: JSON.stringify({ ...MESSAGE, stream: true }),
          signal: controller.signal,
        }).catch(() => null);
        await waitFor(() => f.upstream.requests.length === i + 1, 3000, "the upstream got the request");
        await new Promise((r) => setTimeout(r, 50)); // headers are back; the first event never comes
        controller.abort();
        await res;
      }
      await flushed(f, 4);
      const all = await rows(db);
      assert.equal(all.length, 4);
      for (const row of all) {
        assert.equal(row.status_code, 499);
        assert.equal(row.error_type, "client_closed_request");
        assert.equal(row.provider, "anthropic");
        assert.equal(row.is_fallback, false);
      }
      assert.equal(f.bedrock.requests.length, 0, "nothing went to Bedrock");
      const breaker = f.t.services.breakers.snapshot(f.keyId);
      assert.equal(breaker.state, "closed");
      assert.equal(breaker.failures, 0);
    } finally {
      await f.close();
    }
  },
);

dbTest("a key without Bedrock credentials gets the upstream failure unchanged", async (db) => {
  const f = await setup(db, { credentials: "none" });
  try {
    f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
    const res = await post(f, MESSAGE);
    assert.equal(res.status, 529);
    assert.equal((await res.json()).error.type, "overloaded_error");
    assert.equal(f.bedrock.requests.length, 0);
  } finally {
    await f.close();
  }
});

dbTest("the same SDK stream assertions pass for both providers", async (db) => {
  const f = await setup(db);
  try {
    const client = new Anthropic({ baseURL: f.baseUrl, apiKey: "sk-ant-client", maxRetries: 0 });
    const collect = async () => {
      const s = client.messages.stream(MESSAGE);
      const types: string[] = [];
      for await (const e of s) types.push(e.type);
      const final = await s.finalMessage();
      return { types: types.filter((t, i) => types.indexOf(t) === i), final };
    };
    const direct = await collect();
    f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
    const fallback = await collect();
    assert.deepEqual(fallback.types, direct.types);
    assert.deepEqual(direct.types, [
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    assert.equal(fallback.final.model, MESSAGE.model, "the requested model name comes back");
    assert.equal(fallback.final.role, "assistant");
    assert.equal(fallback.final.stop_reason, "end_turn");
    assert.equal(fallback.final.content[0].type, "text");
    assert.equal(fallback.final.usage.output_tokens, 7);
    assert.equal(fallback.final.usage.cache_read_input_tokens, 100);

    // The SDKs report request-id with every answer and error: on Bedrock it is the proxy's id, which the usage
    // row carries; Bedrock's own goes in x-amzn-requestid for AWS.
    for (const stream of [false, true]) {
      f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
      const { data, response } = await client.messages.create({ ...MESSAGE, stream }).withResponse();
      if (stream) { for await (const _ of data as AsyncIterable<unknown>) { /* read to the end */ } }
      assert.equal(response.headers.get("x-proxy-provider"), "bedrock");
      assert.equal(response.headers.get("request-id"), response.headers.get("x-proxy-request-id"));
      assert.match(response.headers.get("x-amzn-requestid") ?? "", /^[0-9a-f-]{36}$/);
    }
    f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
    f.bedrock.script({ kind: "error", status: 400, errorType: "ValidationException", message: "no" });
    f.t.services.breakers.openUntil(f.keyId, Date.now() + 60_000, "test");
    const refused = await client.messages.create(MESSAGE).catch((e) => e);
    assert.ok(refused instanceof Anthropic.APIError, String(refused));
    assert.match(refused.requestID ?? "", /\S/, "a Bedrock refusal has a request id too");
  } finally {
    await f.close();
  }
});

dbTest(
  "the Bedrock request keeps full fidelity: betas filtered, model and stream removed, version set",
  async (db) => {
    const f = await setup(db);
    try {
      f.upstream.script({ kind: "error", status: 503, type: "api_error", message: "down" });
      const rich = {
        ...MESSAGE,
        stream: true,
        system: [{ type: "text", text: "You are terse.", cache_control: { type: "ephemeral" } }],
        messages: [{
          role: "user",
          content: [
            { type: "text", text: "Look" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
          ],
        }],
        tools: [{
          name: "get_weather",
          description: "Weather",
          input_schema: { type: "object", properties: {} },
        }],
        tool_choice: { type: "auto" },
        thinking: { type: "enabled", budget_tokens: 1024 },
        stop_sequences: ["STOP"],
        temperature: 1,
      };
      const res = await post(f, rich, {
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
      });
      assert.equal(res.status, 200);
      await res.text();
      const sent = f.bedrock.requests[0];
      assert.equal(sent.operation, "invoke-with-response-stream");
      assert.equal(sent.modelId, "global.anthropic.claude-sonnet-4-5-20250929-v1:0");
      assert.equal(sent.auth, "sigv4");
      assert.equal(sent.accessKeyId, IAM.id);
      const body = sent.body as Record<string, unknown>;
      assert.equal(body.anthropic_version, "bedrock-2023-05-31");
      assert.equal("model" in body, false);
      assert.equal("stream" in body, false);
      assert.deepEqual(body.anthropic_beta, ["interleaved-thinking-2025-05-14"]);
      for (
        const k of [
          "system",
          "messages",
          "tools",
          "tool_choice",
          "thinking",
          "stop_sequences",
          "temperature",
        ] as const
      ) {
        assert.deepEqual(body[k], rich[k], k);
      }
    } finally {
      await f.close();
    }
  },
);

dbTest("bedrock_only users go straight to Bedrock with a Bedrock API key (bearer)", async (db) => {
  const f = await setup(db, { credentials: "api_key", user: { routing_strategy: "bedrock_only" } });
  try {
    const res = await post(f, MESSAGE, { "x-api-key": "" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-proxy-provider"), "bedrock");
    await res.json();
    assert.equal(f.upstream.requests.length, 0, "the plan upstream is not contacted");
    assert.equal(f.bedrock.requests[0].auth, "bearer");
    assert.equal(f.bedrock.requests[0].region, undefined);
    await flushed(f, 1);
    const [r] = await rows(db);
    assert.deepEqual([r.provider, r.is_fallback, r.fallback_reason], [
      "bedrock",
      false,
      "routing:bedrock_only",
    ]);
  } finally {
    await f.close();
  }
});

dbTest(
  "the breaker opens after the threshold, sends requests straight to Bedrock, probes once, and closes",
  async (db) => {
    let now = Date.now();
    const f = await setup(db, {
      env: {
        PROXY_CIRCUIT_FAILURE_THRESHOLD: "3",
        PROXY_CIRCUIT_FAILURE_WINDOW: "60",
        PROXY_CIRCUIT_RESET_TIMEOUT: "1800",
      },
      overrides: { now: () => new Date(now) },
    });
    try {
      const h = await f.t.auth();
      for (let i = 0; i < 3; i++) {
        f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
        assert.equal((await (await post(f, MESSAGE)).json()).content[0].text, "Hello from Bedrock.");
      }
      let circuit = (await f.t.call("GET", `/api/access-keys/${f.keyId}/circuit`, undefined, h)).body;
      assert.equal(circuit.state, "open");
      assert.equal(circuit.failures, 3);
      assert.equal(new Date(circuit.reopens_at).getTime(), now + 1800_000);

      const planCalls = f.upstream.requests.length;
      const res = await post(f, { ...MESSAGE, stream: true });
      assert.equal(res.headers.get("x-proxy-fallback-reason"), "circuit_open");
      await res.text();
      assert.equal(
        f.upstream.requests.length,
        planCalls,
        "an open circuit does not contact the plan upstream",
      );
      const metrics = await (await fetch(`${f.origin}/metrics`)).text();
      assert.match(metrics, /^proxy_fallbacks_total\{endpoint="messages",reason="overloaded"\} 3$/m);
      assert.match(metrics, /^proxy_fallbacks_total\{endpoint="messages",reason="circuit_open"\} 1$/m);
      // The API answered those three (529): an Anthropic outage, not a network one.
      assert.match(metrics, /^proxy_upstream_seconds_count\{provider="anthropic",status_class="5xx"\} 3$/m);
      assert.doesNotMatch(metrics, /provider="anthropic",status_class="network"/);

      // After the reset timeout exactly one request probes the plan upstream; concurrent ones go to Bedrock.
      now += 1800_001;
      f.upstream.script({ kind: "slow", eventDelayMs: 100 });
      const concurrent = await Promise.all(
        Array.from({ length: 5 }, () => post(f, { ...MESSAGE, stream: true })),
      );
      const providers = concurrent.map((r) => r.headers.get("x-proxy-provider"));
      await Promise.all(concurrent.map((r) => r.text()));
      assert.equal(providers.filter((p) => p === "anthropic").length, 1, providers.join());
      assert.equal(f.upstream.requests.length, planCalls + 1);
      circuit = (await f.t.call("GET", `/api/access-keys/${f.keyId}/circuit`, undefined, h)).body;
      assert.equal(circuit.state, "closed", "the successful probe closed the circuit");
      assert.ok(f.t.logs.some((l) => l.includes('"msg":"circuit transition"') && l.includes('"to":"open"')));
    } finally {
      await f.close();
    }
  },
);

dbTest("a failed probe reopens the circuit; an admin reset closes it", async (db) => {
  let now = Date.now();
  const f = await setup(db, {
    env: { PROXY_CIRCUIT_FAILURE_THRESHOLD: "1", PROXY_CIRCUIT_RESET_TIMEOUT: "60" },
    overrides: { now: () => new Date(now) },
  });
  try {
    const h = await f.t.auth();
    f.upstream.script({ kind: "error", status: 500, type: "api_error", message: "x" });
    await (await post(f, MESSAGE)).text();
    now += 61_000;
    f.upstream.script({ kind: "error", status: 500, type: "api_error", message: "x" });
    const probe = await post(f, MESSAGE);
    assert.equal(probe.headers.get("x-proxy-fallback-reason"), "upstream_500");
    await probe.text();
    const circuit = (await f.t.call("GET", `/api/access-keys/${f.keyId}/circuit`, undefined, h)).body;
    assert.equal(circuit.state, "open");
    assert.equal(new Date(circuit.reopens_at).getTime(), now + 60_000);
    const reset = await f.t.call("POST", `/api/access-keys/${f.keyId}/circuit/reset`, undefined, h);
    assert.equal(reset.body.state, "closed");
    const after = await post(f, MESSAGE);
    assert.equal(after.headers.get("x-proxy-provider"), "anthropic");
    await after.text();
    const audit = (await f.t.call("GET", "/api/audit", undefined, h)).body.items.map((
      e: { action: string },
    ) => e.action);
    assert.ok(audit.includes("circuit.reset"));
    assert.equal(
      (await f.t.call("GET", "/api/access-keys/00000000-0000-0000-0000-000000000000/circuit", undefined, h))
        .status,
      404,
    );
  } finally {
    await f.close();
  }
});

dbTest(
  "an open circuit whose Bedrock refuses the key's credentials closes, and the Anthropic API answers; one model's access refusal keeps it",
  async (db) => {
    const f = await setup(db, { env: { PROXY_CIRCUIT_RESET_TIMEOUT: "1800" } });
    try {
      const h = await f.t.auth();
      for (
        const [status, errorType] of [[403, "UnrecognizedClientException"], [403, "ExpiredTokenException"]]
      ) {
        // Opened by a blip (Claude Code's own retries supply the failures in seconds) while Bedrock is broken.
        f.t.services.breakers.openUntil(f.keyId, Date.now() + 1_800_000, "test");
        f.bedrock.script({
          kind: "error",
          status: Number(status),
          errorType: String(errorType),
          message: "no",
        });
        const res = await post(f, MESSAGE);
        assert.equal(res.status, 200, `${errorType}: ${await res.clone().text()}`);
        assert.equal(
          res.headers.get("x-proxy-provider"),
          "anthropic",
          "answered by the recovered Anthropic API",
        );
        await res.text();
        const circuit = (await f.t.call("GET", `/api/access-keys/${f.keyId}/circuit`, undefined, h)).body;
        assert.equal(circuit.state, "closed", "not locked onto a Bedrock that cannot answer for 30 minutes");
        const next = await post(f, MESSAGE);
        assert.equal(next.headers.get("x-proxy-provider"), "anthropic");
        await next.text();
      }
      assert.equal(f.bedrock.requests.length, 2, "one Bedrock call each time, then the Anthropic API");
      await flushed(f, 4);
      const recorded = await rows(db);
      assert.deepEqual(recorded.map((r) => [r.provider, r.status_code]), [
        ["anthropic", 200],
        ["anthropic", 200],
        ["anthropic", 200],
        ["anthropic", 200],
      ]);
      // No access to one model (granted model by model): that model's refusal is the answer, and the circuit
      // stays open for the key's other models.
      f.t.services.breakers.openUntil(f.keyId, Date.now() + 1_800_000, "test");
      f.bedrock.script({
        kind: "error",
        status: 403,
        errorType: "AccessDeniedException",
        message: "no access",
      });
      const denied = await post(f, MESSAGE);
      assert.equal(denied.status, 403);
      assert.match(
        (await denied.json()).error.message,
        /refused access with the credentials the proxy admin stored/,
      );
      const still = (await f.t.call("GET", `/api/access-keys/${f.keyId}/circuit`, undefined, h)).body;
      assert.equal(still.state, "open");
      // A Bedrock that answers keeps serving an open circuit.
      const served = await post(f, MESSAGE);
      assert.equal(served.headers.get("x-proxy-provider"), "bedrock");
      assert.equal(served.headers.get("x-proxy-fallback-reason"), "circuit_open");
      await served.text();
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "when the fallback is refused too, the client gets Anthropic's retryable answer, not a final 4xx",
  async (db) => {
    const f = await setup(db);
    try {
      for (const stream of [false, true]) {
        f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
        f.bedrock.script({
          kind: "error",
          status: 403,
          errorType: "AccessDeniedException",
          message: "no access",
        });
        const res = await post(f, { ...MESSAGE, stream });
        assert.equal(res.status, 529, "the SDKs retry a 529; they would not retry Bedrock's 403");
        assert.deepEqual(await res.json(), {
          type: "error",
          error: { type: "overloaded_error", message: "Overloaded" },
        });
        assert.equal(res.headers.get("x-proxy-provider"), "anthropic");
        assert.equal(res.headers.get("x-proxy-fallback-reason"), "overloaded");
        assert.match(res.headers.get("request-id") ?? "", /^req_fake_/, "Anthropic's headers come along");
      }
      // A Bedrock failure the client retries anyway passes as it is.
      f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
      f.bedrock.script({
        kind: "error",
        status: 429,
        errorType: "ThrottlingException",
        message: "slow down",
      });
      const throttled = await post(f, MESSAGE);
      assert.equal(throttled.status, 429);
      assert.equal(throttled.headers.get("x-proxy-provider"), "bedrock");
      await throttled.body?.cancel();

      await flushed(f, 3);
      const all = await rows(db);
      assert.deepEqual(all.map((r) => [r.provider, r.is_fallback, r.status_code, r.error_type]), [
        ["bedrock", true, 529, "permission_error"],
        ["bedrock", true, 529, "permission_error"],
        ["bedrock", true, 429, "rate_limit_error"],
      ]);
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "Anthropic unreachable and the fallback refused: a retryable 503 naming both (circuit open: Bedrock's own error)",
  async (db) => {
    const f = await setup(db, { env: { PROXY_PLAN_API_URL: "http://no-such-host.invalid" } });
    try {
      f.bedrock.script({
        kind: "error",
        status: 400,
        errorType: "ValidationException",
        message: "bad field",
      });
      const res = await post(f, MESSAGE);
      assert.equal(res.status, 503);
      const body = await res.json();
      assert.equal(body.error.type, "api_error");
      assert.match(
        body.error.message,
        /Anthropic API unavailable \(connect_error\).*Bedrock fallback failed: .*bad field/,
      );

      // With the circuit open, retries would meet Bedrock again: its own error is the useful answer.
      f.t.services.breakers.openUntil(f.keyId, Date.now() + 60_000, "test");
      f.bedrock.script({
        kind: "error",
        status: 400,
        errorType: "ValidationException",
        message: "bad field",
      });
      const open = await post(f, MESSAGE);
      assert.equal(open.status, 400);
      assert.equal((await open.json()).error.type, "invalid_request_error");
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "a model id Bedrock refuses is tried under the region's other profiles, and the one that works is kept",
  async (db) => {
    const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
    try {
      const base = "anthropic.claude-3-5-haiku-20241022-v1:0";
      const invalid = invalidModelId();
      f.bedrock.script(invalid); // global. does not exist for this model: us. (the region's geography) does
      const first = await post(f, { ...MESSAGE, model: "claude-3-5-haiku-20241022" });
      assert.equal(first.status, 200);
      assert.equal(first.headers.get("x-proxy-bedrock-model"), `us.${base}`);
      await first.body?.cancel();
      const streamed = await post(f, { ...MESSAGE, model: "claude-3-5-haiku-20241022", stream: true });
      assert.equal(streamed.status, 200);
      assert.match(await streamed.text(), /event: message_stop/);
      assert.deepEqual(f.bedrock.requests.map((r) => r.modelId), [
        `global.${base}`,
        `us.${base}`,
        `us.${base}`,
      ]);

      // An id the operator or the client chose is not second-guessed.
      f.bedrock.script(invalid);
      const chosen = await post(f, { ...MESSAGE, model: `global.${base}` });
      assert.equal(chosen.status, 400);
      assert.equal((await chosen.json()).error.type, "invalid_request_error");
      assert.equal(f.bedrock.requests.length, 4);

      await flushed(f, 3);
      const served = (await rows(db)).map((r) => r.model_served);
      assert.deepEqual(served, [`us.${base}`, `us.${base}`, `global.${base}`]);
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "a model newer than the table goes to Bedrock under its own name; refused under every profile, the default answers",
  async (db) => {
    const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
    try {
      // Claude Code's `sonnet` alias, in the table since Claude Code 2.1.197 asks for it.
      const sonnet5 = await post(f, { ...MESSAGE, model: "claude-sonnet-5" });
      assert.equal(sonnet5.status, 200);
      assert.equal(sonnet5.headers.get("x-proxy-bedrock-model"), "global.anthropic.claude-sonnet-5");
      await sonnet5.body?.cancel();

      // A name of the same shape the table does not know yet is tried as anthropic.<name> first.
      const invalid = invalidModelId(3);
      f.bedrock.script(invalid);
      // As Claude Code asks a model of its time: adaptive thinking and effort, which Sonnet 4.5 refuses.
      const newer = {
        ...MESSAGE,
        model: "claude-sonnet-9",
        max_tokens: 32000,
        thinking: { type: "adaptive" },
        output_config: { effort: "high" },
      };
      const future = await post(f, newer);
      assert.equal(future.status, 200, await future.clone().text());
      const fallbackModel = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"; // the default
      assert.equal(future.headers.get("x-proxy-bedrock-model"), fallbackModel);
      await future.body?.cancel();
      const asked = f.bedrock.requests[1].body as Record<string, unknown>;
      assert.deepEqual([asked.thinking, asked.output_config], [{ type: "adaptive" }, { effort: "high" }]);
      const fitted = f.bedrock.requests[4].body as Record<string, unknown>;
      assert.deepEqual(
        [fitted.thinking, fitted.output_config],
        [{ type: "enabled", budget_tokens: 31999 }, undefined],
        "the default model gets the body fitted to what it takes",
      );
      const again = await post(f, newer);
      assert.equal(again.status, 200);
      await again.body?.cancel();
      assert.deepEqual(f.bedrock.requests.map((r) => r.modelId), [
        "global.anthropic.claude-sonnet-5",
        "global.anthropic.claude-sonnet-9",
        "us.anthropic.claude-sonnet-9",
        "anthropic.claude-sonnet-9",
        fallbackModel,
        fallbackModel, // remembered: the next request does not try the refused ids again
      ]);
      assert.ok(f.t.logs.some((l) => l.includes("answered by the default Bedrock model")));

      await flushed(f, 3);
      assert.deepEqual((await rows(db)).map((r) => r.model_served), [
        "global.anthropic.claude-sonnet-5",
        fallbackModel,
        fallbackModel,
      ]);
      // Made-up names answered by the default earn no metrics label of their own.
      const metrics = await (await fetch(`${f.origin}/metrics`)).text();
      assert.ok(!metrics.includes('model="claude-sonnet-9"'), "no label for a name Bedrock does not know");
      assert.ok(metrics.includes('model="claude-sonnet-5"'));
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "a table model Bedrock refuses under every profile is answered by the default model, fitted, not failed",
  async (db) => {
    const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
    try {
      // As when AWS serves a model on its Messages API route only, or not in this region.
      f.bedrock.script(invalidModelId(3));
      const asked = {
        ...MESSAGE,
        model: "claude-sonnet-5",
        max_tokens: 32000,
        thinking: { type: "adaptive", display: "omitted" },
        output_config: { effort: "high" },
        messages: [{ role: "user", content: "Hello" }, { role: "system", content: "# Environment" }],
      };
      const res = await post(f, asked);
      assert.equal(res.status, 200, await res.clone().text());
      await res.body?.cancel();
      const fallbackModel = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
      assert.deepEqual(f.bedrock.requests.map((r) => r.modelId), [
        "global.anthropic.claude-sonnet-5",
        "us.anthropic.claude-sonnet-5",
        "anthropic.claude-sonnet-5",
        fallbackModel,
      ]);
      const sent = f.bedrock.requests[3].body as Record<string, unknown>;
      assert.deepEqual(sent.thinking, { type: "enabled", budget_tokens: 31999 });
      assert.equal(sent.output_config, undefined);
      assert.deepEqual(sent.messages, [{ role: "user", content: "Hello" }]);
      assert.ok(f.t.logs.some((l) => l.includes("answered by the default Bedrock model")));
      await flushed(f, 1);
      assert.equal((await rows(db))[0].model_served, fallbackModel);
    } finally {
      await f.close();
    }
  },
);

dbTest("at the shutdown deadline a Bedrock stream is ended too, and recorded as interrupted", async (db) => {
  const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
  try {
    f.bedrock.script({
      kind: "reply",
      reply: { text: Array.from({ length: 50 }, () => "word "), eventDelayMs: 100 },
    });
    const res = await post(f, { ...MESSAGE, stream: true });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    // As a long-lived process will have: once garbage was collected, this interrupt used to reach nothing (the
    // signal's link to Bedrock's body was weak), and the stream ran to message_stop in some CI runs.
    collectGarbage();
    f.t.services.proxy.interruptStreams();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.doesNotMatch(text, /event: message_stop/);
    // The client is still reading: it is told why the answer stops, as a relayed stream would tell it.
    assert.match(text, /event: error\ndata: .*"type":"api_error".*shutting down/);
    await flushed(f, 1);
    const [row] = await rows(db);
    assert.equal(row.provider, "bedrock");
    assert.equal(row.status_code, 200);
    assert.equal(row.error_type, "stream_interrupted");
    assert.equal(f.t.services.metrics.streamsOpen, 0);
  } finally {
    await f.close();
  }
});

dbTest("Bedrock errors map to Anthropic errors, before and during the stream", async (db) => {
  const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
  try {
    // The last column: x-should-retry. Claude Code retries even a 401 for minutes unless told it is final; a
    // refusal of the key's Bedrock credentials or of the request will not change on a retry.
    const cases: Array<[number, string, number, string, string | null]> = [
      [429, "ThrottlingException", 429, "rate_limit_error", null],
      [400, "ValidationException", 400, "invalid_request_error", "false"],
      [403, "AccessDeniedException", 403, "permission_error", "false"],
      // Bedrock refusing the key's own credentials is not the developer's login: a 403 saying whose they are
      // (a 401 has Claude Code tell them to run /login).
      [403, "ExpiredTokenException", 403, "permission_error", "false"],
      [503, "ServiceUnavailableException", 529, "overloaded_error", null],
    ];
    for (const [status, errorType, expectStatus, expectType, shouldRetry] of cases) {
      f.bedrock.script({ kind: "error", status, errorType, message: "no" });
      const res = await post(f, MESSAGE);
      assert.equal(res.status, expectStatus, errorType);
      assert.equal(res.headers.get("x-should-retry"), shouldRetry, errorType);
      assert.match(
        res.headers.get("x-amzn-requestid") ?? "",
        /^[0-9a-f-]{36}$/,
        `${errorType}: Bedrock's own id`,
      );
      const body = await res.json();
      assert.equal(body.type, "error");
      assert.equal(body.error.type, expectType, errorType);
      if (expectStatus === 403) {
        assert.match(
          body.error.message,
          /the proxy admin stored for this access key .*your own sign-in is fine/,
        );
      }
    }
    f.bedrock.script({
      kind: "stream_exception",
      afterEvents: 3,
      exceptionType: "modelStreamErrorException",
      message: "boom",
    });
    const res = await post(f, { ...MESSAGE, stream: true });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /event: error\ndata: \{"type":"error","error":\{"type":"api_error"/);
    await flushed(f, cases.length + 1);
    const last = (await rows(db)).at(-1)!;
    assert.equal(last.error_type, "api_error");
  } finally {
    await f.close();
  }
});

dbTest(
  "a Bedrock stream that ends before message_stop ends with an error event and is recorded as cut off",
  async (db) => {
    const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
    try {
      // message_start, content_block_start, ping, one delta: then the connection closes cleanly on a frame boundary.
      f.bedrock.script({ kind: "reply", reply: { text: ["The answer is", " 42."], endAfterEvents: 4 } });
      const res = await post(f, { ...MESSAGE, stream: true });
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /event: content_block_delta\n/);
      assert.doesNotMatch(text, /event: message_stop/);
      assert.match(text, /event: error\ndata: .*"type":"api_error".*ended before message_stop/);

      // Nothing at all: no byte went to the client yet, so it gets an HTTP error instead of an empty 200.
      f.bedrock.script({ kind: "reply", reply: { endAfterEvents: 0 } });
      const empty = await post(f, { ...MESSAGE, stream: true });
      assert.ok(empty.status >= 500, `status ${empty.status}`);
      assert.equal((await empty.json()).type, "error");

      await flushed(f, 2);
      const [cut, none] = await rows(db);
      assert.equal(cut.status_code, 200);
      assert.equal(cut.error_type, "stream_interrupted");
      assert.equal(cut.stop_reason, null);
      assert.ok(Number(none.status_code) >= 500);
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "over budget, Bedrock traffic is refused with 429 naming spend, budget and reset; plan traffic is not",
  async (db) => {
    const f = await setup(db, {
      user: { monthly_budget_usd: 0.01 },
      // An expensive price makes one fallback exceed the budget: (40 + 7 + 100 + 20) tokens at $1000/M ≈ $0.17.
      env: {
        PROXY_TIMEZONE: "Asia/Seoul",
        PROXY_MODEL_PRICING:
          '{"claude-sonnet-4-5":{"input":1000,"output":1000,"cacheRead":1000,"cacheWrite":1000}}',
      },
    });
    try {
      f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
      assert.equal((await post(f, MESSAGE)).status, 200, "under budget: falls back");
      await flushed(f, 1);
      f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
      const refused = await post(f, MESSAGE);
      assert.equal(refused.status, 429);
      const body = await refused.json();
      assert.equal(body.error.type, "rate_limit_error");
      assert.match(
        body.error.message,
        /monthly Bedrock budget reached: spent \$0\.17 of \$0\.01; resets \d{4}-\d\d-\d\dT15:00:00\.000Z \(Asia\/Seoul/,
      );
      // The Anthropic API that could not answer may by the next try: the client is not told to give up, nor
      // to wait for the month's end (the SDKs would sleep that long); with no retry-after from the API, none.
      assert.equal(refused.headers.get("x-should-retry"), null);
      assert.equal(refused.headers.get("retry-after"), null);
      f.upstream.script(RATE_LIMITED);
      const limited = await post(f, MESSAGE);
      assert.equal(limited.status, 429);
      assert.match((await limited.json()).error.message, /monthly Bedrock budget reached/);
      assert.equal(limited.headers.get("retry-after"), "17", "the API's own retry-after");
      const plan = await post(f, MESSAGE);
      assert.equal(plan.status, 200, "plan traffic is unaffected");
      assert.equal(plan.headers.get("x-proxy-provider"), "anthropic");
      await plan.text();
      // With the circuit open, a request would go to Bedrock, which this user may not use: the Anthropic API
      // answers it instead of a 429 for as long as the circuit stays open.
      f.t.services.breakers.openUntil(f.keyId, Date.now() + 60_000, "test");
      const before = f.upstream.requests.length;
      const open = await post(f, MESSAGE);
      assert.equal(open.status, 200);
      assert.equal(open.headers.get("x-proxy-provider"), "anthropic");
      await open.text();
      assert.equal(f.upstream.requests.length, before + 1);
      assert.equal(f.t.services.breakers.snapshot(f.keyId).state, "open", "the circuit is left as it was");
      // ...and when it cannot, the refusal is the budget's, as for any fallback.
      f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
      const both = await post(f, MESSAGE);
      assert.equal(both.status, 529, "no fallback for this request: the API's own answer");
      await both.text();
    } finally {
      await f.close();
    }
  },
);

dbTest("over budget, a key routed to Bedrock only is told at once, not asked to wait", async (db) => {
  const f = await setup(db, {
    user: { routing_strategy: "bedrock_only", monthly_budget_usd: 0.01 },
    env: {
      PROXY_MODEL_PRICING:
        '{"claude-sonnet-4-5":{"input":1000,"output":1000,"cacheRead":1000,"cacheWrite":1000}}',
    },
  });
  try {
    const first = await post(f, MESSAGE);
    assert.equal(first.status, 200, "under budget");
    await first.text();
    await flushed(f, 1);
    const refused = await post(f, MESSAGE);
    assert.equal(refused.status, 429);
    assert.match((await refused.json()).error.message, /monthly Bedrock budget reached/);
    assert.equal(refused.headers.get("x-should-retry"), "false");
    assert.ok(Number(refused.headers.get("retry-after")) > 3600, "until the month resets, for what it says");
    assert.equal(f.upstream.requests.length, 0, "never sent to the Anthropic API");
  } finally {
    await f.close();
  }
});

dbTest("under a budget, a model the price table cannot price is refused on Bedrock", async (db) => {
  const f = await setup(db, { user: { routing_strategy: "bedrock_only", monthly_budget_usd: 50 } });
  try {
    const res = await post(f, { ...MESSAGE, model: "claude-fable-5-3" });
    assert.equal(res.status, 403);
    const body = await res.json();
    assert.equal(body.error.type, "permission_error");
    assert.match(body.error.message, /claude-fable-5-3 .*has no price.*monthly budget.*PROXY_MODEL_PRICING/);
    assert.equal(f.bedrock.requests.length, 0);
  } finally {
    await f.close();
  }
});

dbTest(
  "under a budget, a model the admin priced with PROXY_MODEL_PRICING is served and costed",
  async (db) => {
    const f = await setup(db, {
      user: { routing_strategy: "bedrock_only", monthly_budget_usd: 50 },
      env: { PROXY_MODEL_PRICING: JSON.stringify({ "claude-fable-5-3": { input: 30, output: 150 } }) },
    });
    try {
      const r = await answeredRow(f, db, "claude-fable-5-3");
      assert.ok(Number(r.cost_usd) > 0, `priced: ${r.cost_usd}`);
    } finally {
      await f.close();
    }
  },
);

dbTest("without a budget an unpriced model is served on Bedrock, its cost left unknown", async (db) => {
  const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
  try {
    const r = await answeredRow(f, db, "claude-fable-5-3");
    assert.equal(r.cost_usd, null);
  } finally {
    await f.close();
  }
});

dbTest("an unknown model goes to the default Bedrock model, with a warning, and is recorded", async (db) => {
  const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
  try {
    const res = await post(f, { ...MESSAGE, model: "claude-next", thinking: { type: "adaptive" } });
    assert.equal(res.status, 200, await res.clone().text());
    await res.text();
    assert.equal(f.bedrock.requests[0].modelId, "global.anthropic.claude-sonnet-4-5-20250929-v1:0");
    // Sonnet 4.5 has no adaptive thinking; MESSAGE's max_tokens is too small for manual thinking: none.
    assert.equal((f.bedrock.requests[0].body as Record<string, unknown>).thinking, undefined);
    assert.ok(f.t.logs.some((l) => l.includes("unknown model mapped to the default Bedrock model")));
    await flushed(f, 1);
    const [r] = await rows(db);
    assert.equal(r.model, "claude-next");
    assert.equal(r.model_served, "global.anthropic.claude-sonnet-4-5-20250929-v1:0");
  } finally {
    await f.close();
  }
});

dbTest(
  "a Claude Code request carrying Anthropic-only fields is answered by Bedrock without them, their names logged",
  async (db) => {
    const f = await setup(db);
    try {
      f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
      // Fields of Claude Code 2.1.332's requests Bedrock does not know: it refuses a body with any of them.
      const res = await post(f, {
        ...MESSAGE,
        stream: true,
        system: [{ type: "text", text: "You are Claude Code." }],
        thinking: { type: "enabled", budget_tokens: 1024 },
        max_tokens: 4096,
        metadata: { user_id: "user_1" },
        context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
        fallback_credit_token: "fct_do_not_log_me",
        resumption: { type: "resume", token: "rsm_do_not_log_me" },
        context_hint: { enabled: true, target_tokens_saved: 20000 },
        fallbacks: [{ model: "claude-haiku-4-5" }],
      }, { "anthropic-beta": "claude-code-20250219,context-management-2025-06-27,context-hint-2026-04-09" });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.equal(res.headers.get("x-proxy-provider"), "bedrock");
      assert.match(text, /Bedrock\./);

      const sent = f.bedrock.requests[0].body as Record<string, unknown>;
      assert.deepEqual(Object.keys(sent).sort(), [
        "anthropic_beta",
        "anthropic_version",
        "context_management",
        "max_tokens",
        "messages",
        "system",
        "thinking",
      ]);
      assert.deepEqual(sent.anthropic_beta, ["context-management-2025-06-27"]);
      const line = f.t.logs.find((l) => l.includes('"msg":"fields not sent to bedrock"'));
      assert.ok(line, "the dropped fields are logged");
      assert.deepEqual(JSON.parse(line).fields, [
        "metadata",
        "fallback_credit_token",
        "resumption",
        "context_hint",
        "fallbacks",
      ]);
      assert.ok(!f.t.logs.some((l) => l.includes("do_not_log_me")), "their values are not");
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "a structured-output format goes to Bedrock models that take it, and becomes an instruction for others",
  async (db) => {
    const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
    try {
      const format = {
        type: "json_schema",
        schema: { type: "object", properties: { title: { type: "string" } }, required: ["title"] },
      };
      // Models that take effort: Opus 4.5 and every model from 4.6.
      const asked = {
        ...MESSAGE,
        model: "claude-opus-4-5-20251101",
        system: "Name this chat.",
        output_config: { effort: "low", format },
      };
      const takes = await post(f, asked);
      assert.equal(takes.status, 200, await takes.text());
      const native = f.bedrock.requests[0].body as Record<string, unknown>;
      assert.deepEqual(native.output_config, { effort: "low", format });
      assert.equal(native.system, "Name this chat.");

      // Claude Sonnet 4.6 is not among the models AWS lists for structured outputs.
      const other = await post(f, { ...asked, model: "claude-sonnet-4-6" });
      assert.equal(other.status, 200, await other.text());
      const prompted = f.bedrock.requests[1].body as Record<string, unknown>;
      assert.deepEqual(prompted.output_config, { effort: "low" });
      const system = prompted.system as Array<{ text: string }>;
      assert.equal(system[0].text, "Name this chat.");
      assert.ok(system[1].text.includes(JSON.stringify(format.schema)));
    } finally {
      await f.close();
    }
  },
);

function countTokens(f: Fixture, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${f.baseUrl}/v1/messages/count_tokens?beta=true`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": "sk-ant-client", ...headers },
    body: JSON.stringify(body),
  });
}

const COUNT = {
  model: "claude-sonnet-4-5-20250929",
  system: "You are terse.",
  messages: [{ role: "user", content: "How many tokens is this?" }],
};

dbTest("count_tokens for a key routed to Bedrock is counted there, with the bare model id", async (db) => {
  const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
  try {
    const res = await countTokens(f, COUNT, { "anthropic-beta": "token-efficient-tools-2025-02-19" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-proxy-provider"), "bedrock");
    assert.equal(res.headers.get("x-proxy-fallback-reason"), "routing:bedrock_only");
    assert.match(res.headers.get("x-proxy-request-id") ?? "", /^[0-9a-f-]{36}$/);
    const [seen] = f.bedrock.requests;
    assert.equal(seen.operation, "count-tokens");
    assert.equal(seen.modelId, "anthropic.claude-sonnet-4-5-20250929-v1:0", "no inference-profile prefix");
    assert.equal(res.headers.get("x-proxy-bedrock-model"), seen.modelId);
    assert.deepEqual(await res.json(), { input_tokens: fakeTokenCount(seen.body) });
    const sent = seen.body as Record<string, unknown>;
    assert.equal(sent.anthropic_version, "bedrock-2023-05-31");
    assert.equal(sent.max_tokens, 1);
    assert.equal(sent.system, COUNT.system);
    assert.equal("model" in sent, false);
    assert.equal(f.upstream.requests.length, 0, "the Anthropic API was not asked");

    // A thinking budget needs max_tokens above it, or Bedrock refuses the body.
    const thinking = await countTokens(f, { ...COUNT, thinking: { type: "enabled", budget_tokens: 2048 } });
    assert.equal(thinking.status, 200, await thinking.clone().text());
    assert.equal((f.bedrock.requests[1].body as { max_tokens: number }).max_tokens, 2049);
    await thinking.body?.cancel();

    // A name Bedrock does not serve is counted by the default model, with the body fitted to it (Sonnet 4.5
    // takes neither adaptive thinking nor effort).
    const newer = {
      ...COUNT,
      model: "claude-next",
      thinking: { type: "adaptive" },
      output_config: { effort: "high" },
    };
    const standIn = await countTokens(f, newer);
    assert.equal(standIn.status, 200, await standIn.clone().text());
    await standIn.body?.cancel();
    const fitted = f.bedrock.requests[2];
    assert.equal(fitted.modelId, "anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert.deepEqual(
      [
        (fitted.body as Record<string, unknown>).thinking,
        (fitted.body as Record<string, unknown>).output_config,
      ],
      [undefined, undefined],
    );

    // A name Bedrock refuses as invalid (newer than the table) is counted by the default model instead.
    f.bedrock.script(invalidModelId());
    const guessed = await countTokens(f, { ...newer, model: "claude-sonnet-9" });
    assert.equal(guessed.status, 200, await guessed.clone().text());
    assert.equal(guessed.headers.get("x-proxy-bedrock-model"), "anthropic.claude-sonnet-4-5-20250929-v1:0");
    await guessed.body?.cancel();
    assert.deepEqual(f.bedrock.requests.slice(3).map((r) => r.modelId), [
      "anthropic.claude-sonnet-9",
      "anthropic.claude-sonnet-4-5-20250929-v1:0",
    ]);
    assert.equal((f.bedrock.requests[4].body as Record<string, unknown>).thinking, undefined, "fitted to it");

    const invalid = await fetch(`${f.baseUrl}/v1/messages/count_tokens`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    assert.equal(invalid.status, 400);
    assert.equal((await invalid.json()).error.type, "invalid_request_error");

    f.bedrock.script({
      kind: "error",
      status: 403,
      errorType: "AccessDeniedException",
      message: "no CountTokens",
    });
    const denied = await countTokens(f, COUNT);
    assert.equal(denied.status, 403);
    assert.equal(denied.headers.get("x-proxy-provider"), "bedrock");
    assert.ok(denied.headers.get("x-proxy-request-id"));
    const deniedBody = await denied.json();
    assert.equal(deniedBody.type, "error");
    assert.equal(deniedBody.error.type, "permission_error");
    assert.match(deniedBody.error.message, /AccessDeniedException/);

    await f.t.services.recorder.flush();
    assert.equal((await rows(db)).length, 0, "counting is free: no usage row");
  } finally {
    await f.close();
  }
});

dbTest(
  "count_tokens falls back to Bedrock when the Anthropic API cannot answer, or its circuit is open",
  async (db) => {
    const f = await setup(db);
    try {
      // Answered by the plan: Bedrock is not asked.
      const plain = await countTokens(f, COUNT);
      assert.deepEqual(await plain.json(), { input_tokens: 42 });
      assert.equal(plain.headers.get("x-proxy-provider"), "anthropic");
      assert.equal(f.bedrock.requests.length, 0);

      f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
      const overloaded = await countTokens(f, COUNT);
      assert.equal(overloaded.status, 200);
      assert.equal(overloaded.headers.get("x-proxy-provider"), "bedrock");
      assert.equal(overloaded.headers.get("x-proxy-fallback-reason"), "overloaded", "named as on messages");
      assert.equal((await overloaded.json()).input_tokens, fakeTokenCount(f.bedrock.requests[0].body));
      assert.equal(
        f.t.services.breakers.snapshot(f.keyId).failures,
        0,
        "count_tokens does not drive the breaker",
      );

      // Bedrock refuses too, in a way clients do not retry: they get the Anthropic API's own (retryable) answer.
      f.upstream.script({
        kind: "error",
        status: 429,
        type: "rate_limit_error",
        message: "slow down",
        headers: { "retry-after": "7" },
      });
      f.bedrock.script({ kind: "error", status: 403, errorType: "AccessDeniedException" });
      const both = await countTokens(f, COUNT);
      assert.equal(both.status, 429);
      assert.equal(both.headers.get("retry-after"), "7");
      assert.equal(both.headers.get("x-proxy-fallback-reason"), "rate_limited");
      assert.equal((await both.json()).error.message, "slow down");

      const asked = f.upstream.requests.length;
      f.t.services.breakers.openUntil(f.keyId, Date.now() + 60_000, "test");
      const open = await countTokens(f, COUNT);
      assert.equal(open.headers.get("x-proxy-fallback-reason"), "circuit_open");
      assert.equal(open.status, 200);
      await open.body?.cancel();
      assert.equal(f.upstream.requests.length, asked, "with the circuit open the Anthropic API is not asked");
      // With the circuit open Bedrock's refusal is the answer, and a retry would only meet it again.
      f.bedrock.script({ kind: "error", status: 403, errorType: "ExpiredTokenException" });
      const expired = await countTokens(f, COUNT);
      assert.equal(expired.status, 403);
      assert.equal(expired.headers.get("x-should-retry"), "false");
      assert.match(expired.headers.get("x-amzn-requestid") ?? "", /^[0-9a-f-]{36}$/, "Bedrock's own id");
      assert.equal((await expired.json()).error.type, "permission_error");

      // Past its reopen time the circuit no longer keeps count_tokens away (the probe is left to messages).
      f.t.services.breakers.openUntil(f.keyId, Date.now() - 1, "test");
      const reopened = await countTokens(f, COUNT);
      assert.equal(reopened.headers.get("x-proxy-provider"), "anthropic");
      await reopened.body?.cancel();

      const metrics = await (await fetch(`${f.origin}/metrics`)).text();
      for (const [reason, count] of [["overloaded", 1], ["rate_limited", 1], ["circuit_open", 2]]) {
        assert.match(
          metrics,
          new RegExp(`^proxy_fallbacks_total\\{endpoint="count_tokens",reason="${reason}"\\} ${count}$`, "m"),
        );
      }
      assert.doesNotMatch(metrics, /endpoint="messages"/, "no messages request fell back");
    } finally {
      await f.close();
    }
  },
);

dbTest("count_tokens without Bedrock credentials keeps the Anthropic API's answer", async (db) => {
  const f = await setup(db, { credentials: "none" });
  try {
    f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
    const res = await countTokens(f, COUNT);
    assert.equal(res.status, 529);
    assert.equal(res.headers.get("x-proxy-provider"), "anthropic");
    await res.body?.cancel();
    assert.equal(f.bedrock.requests.length, 0);
  } finally {
    await f.close();
  }
});

dbTest(
  "count_tokens with the Anthropic API unreachable: Bedrock counts; if it refuses too, a retryable 503",
  async (db) => {
    const f = await setup(db, { env: { PROXY_PLAN_API_URL: "http://127.0.0.1:1" } });
    try {
      const res = await countTokens(f, COUNT);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-proxy-fallback-reason"), "connect_error");
      assert.equal((await res.json()).input_tokens, fakeTokenCount(f.bedrock.requests[0].body));

      // Missing bedrock:CountTokens must not reach the client as a final 403 while Anthropic is only down.
      f.bedrock.script({
        kind: "error",
        status: 403,
        errorType: "AccessDeniedException",
        message: "no CountTokens",
      });
      const both = await countTokens(f, COUNT);
      assert.equal(both.status, 503);
      const body = await both.json();
      assert.equal(body.error.type, "api_error");
      assert.match(body.error.message, /Anthropic API unavailable \(connect_error\).*AccessDeniedException/);
    } finally {
      await f.close();
    }
  },
);

dbTest("on Bedrock, an unknown model name served by the default model earns no metrics label", async (db) => {
  const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
  try {
    for (const model of ["claude-made-up-name", "claude-sonnet-4-5-20250929"]) {
      const res = await post(f, { ...MESSAGE, model });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
    await flushed(f, 2);
    const text = f.t.services.metrics.render();
    assert.match(
      text,
      /proxy_requests_total\{provider="bedrock",status="200",model="claude-sonnet-4-5-20250929"\} 1/,
    );
    assert.match(text, /proxy_requests_total\{provider="bedrock",status="200",model="other"\} 1/);
    assert.doesNotMatch(text, /made-up/);
  } finally {
    await f.close();
  }
});

function getModels(f: Fixture, path = "/v1/models?limit=1000") {
  return fetch(`${f.baseUrl}${path}`, {
    headers: { "x-api-key": "sk-ant-client", "anthropic-version": "2023-06-01" },
  });
}

dbTest("model discovery for a key routed to Bedrock lists the models the proxy serves there", async (db) => {
  const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
  try {
    const res = await getModels(f);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-proxy-provider"), "bedrock");
    assert.equal(res.headers.get("x-proxy-fallback-reason"), "routing:bedrock_only");
    const list = await res.json();
    assert.equal(list.has_more, false);
    assert.equal(list.first_id, list.data[0].id);
    assert.equal(list.last_id, list.data.at(-1).id);
    const sonnet = list.data.find((m: { id: string }) => m.id === "claude-sonnet-4-5-20250929");
    assert.deepEqual(sonnet, {
      type: "model",
      id: "claude-sonnet-4-5-20250929",
      display_name: "Claude Sonnet 4.5",
      created_at: "2025-09-29T00:00:00Z",
    });
    assert.ok(
      list.data.every((m: { id: string }) => m.id.startsWith("claude")),
      "what Claude Code's picker takes",
    );

    // Paged as the Anthropic API pages.
    const first = await (await getModels(f, "/v1/models?limit=5")).json();
    assert.deepEqual(first.data, list.data.slice(0, 5));
    assert.equal(first.has_more, true);
    const next = await (await getModels(f, `/v1/models?limit=5&after_id=${first.last_id}`)).json();
    assert.deepEqual(next.data, list.data.slice(5, 10));
    const bad = await getModels(f, "/v1/models?limit=0");
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /^limit: expected a whole number from 1 to 1000/);

    const one = await getModels(f, "/v1/models/claude-opus-4-8");
    assert.equal(one.status, 200);
    assert.equal((await one.json()).display_name, "Claude Opus 4.8");
    const missing = await getModels(f, "/v1/models/claude-nonexistent-1");
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.type, "not_found_error");
    assert.equal(f.upstream.requests.length, 0, "the Anthropic API was not asked");
  } finally {
    await f.close();
  }
});

dbTest("model discovery with the Anthropic API unreachable answers the Bedrock list at once", async (db) => {
  const f = await setup(db, { env: { PROXY_PLAN_API_URL: "http://127.0.0.1:1" } });
  try {
    const res = await getModels(f);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-proxy-fallback-reason"), "connect_error");
    assert.ok((await res.json()).data.length > 5);
    const metrics = await (await fetch(`${f.origin}/metrics`)).text();
    assert.match(metrics, /^proxy_fallbacks_total\{endpoint="models",reason="connect_error"\} 1$/m);
  } finally {
    await f.close();
  }
});

dbTest("model discovery with the Anthropic API up passes its own list on", async (db) => {
  const f = await setup(db);
  try {
    const res = await getModels(f);
    assert.equal(res.headers.get("x-proxy-provider"), "anthropic");
    assert.deepEqual((await res.json()).data.map((m: { id: string }) => m.id), [
      "claude-sonnet-4-5-20250929",
    ]);
    assert.equal(f.upstream.requests.at(-1)!.pathAndQuery, "/v1/models?limit=1000");
  } finally {
    await f.close();
  }
});

dbTest(
  "model discovery: a hung Anthropic API gives way to the Bedrock list within Claude Code's 3 s",
  async (db) => {
    const f = await setup(db);
    try {
      f.upstream.script({ kind: "hang" });
      const t0 = performance.now();
      const res = await getModels(f);
      const ms = performance.now() - t0;
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-proxy-fallback-reason"), "first_byte_timeout");
      assert.ok(ms < 3000, `answered in ${Math.round(ms)} ms`);
      await res.body?.cancel();

      f.t.services.breakers.openUntil(f.keyId, Date.now() + 60_000, "test");
      const asked = f.upstream.requests.length;
      const open = await getModels(f, "/v1/models/claude-sonnet-4-5");
      assert.equal(open.headers.get("x-proxy-fallback-reason"), "circuit_open");
      assert.equal(
        (await open.json()).id,
        "claude-sonnet-4-5-20250929",
        "an alias names the model it points at",
      );
      assert.equal(f.upstream.requests.length, asked, "with the circuit open the Anthropic API is not asked");
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "model discovery for a key without Bedrock credentials passes the Anthropic API's errors on",
  async (db) => {
    const f = await setup(db, { credentials: "none" });
    try {
      f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
      const res = await getModels(f);
      assert.equal(res.status, 529);
      assert.equal(res.headers.get("x-proxy-provider"), "anthropic");
      assert.equal((await res.json()).error.type, "overloaded_error");
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "a non-streaming Bedrock answer cut by the drain deadline is a retryable 503, not a 499",
  async (db) => {
    const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
    try {
      f.bedrock.script({ kind: "reply", reply: { responseDelayMs: 2000 } });
      const pending = post(f, MESSAGE);
      await waitFor(() => f.bedrock.requests.length === 1, 3000, "the Bedrock call");
      f.t.services.proxy.interruptStreams();
      const res = await pending;
      assert.equal(res.status, 503);
      const body = await res.json();
      assert.equal(body.error.type, "api_error");
      assert.match(body.error.message, /shutting down; retry the request/);
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "a key routed to Bedrock without credentials is refused on models and count_tokens as on messages",
  async (db) => {
    const f = await setup(db, { user: { routing_strategy: "bedrock_only" }, credentials: "none" });
    try {
      for (const res of [await getModels(f), await countTokens(f, COUNT), await post(f, MESSAGE)]) {
        assert.equal(res.status, 403);
        assert.equal(res.headers.get("x-should-retry"), "false", "nothing changes until an admin adds them");
        const body = await res.json();
        assert.equal(body.error.type, "permission_error");
        assert.match(body.error.message, /no Bedrock credentials/);
      }
      assert.equal(f.upstream.requests.length, 0);
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "count_tokens: an Anthropic API that hangs gives way to Bedrock after 10 s, not the 300 s for answers",
  async (db) => {
    const f = await setup(db);
    try {
      f.upstream.script({ kind: "hang" });
      const t0 = performance.now();
      const res = await countTokens(f, COUNT);
      const seconds = (performance.now() - t0) / 1000;
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-proxy-fallback-reason"), "first_byte_timeout");
      assert.equal((await res.json()).input_tokens, fakeTokenCount(f.bedrock.requests[0].body));
      assert.ok(seconds > 9.5 && seconds < 15, `answered after ${seconds.toFixed(1)} s`);
    } finally {
      await f.close();
    }
  },
);

dbTest("every answer carries Server-Timing: the proxy's own time and each provider's wait", async (db) => {
  const f = await setup(db);
  try {
    const timing = (res: Response) => res.headers.get("server-timing") ?? "";
    const plan = await post(f, MESSAGE);
    assert.equal(plan.headers.get("x-proxy-provider"), "anthropic");
    assert.match(timing(plan), /^proxy;dur=\d+\.\d, upstream;dur=\d+$/);
    await plan.text();
    f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
    const fallback = await post(f, MESSAGE);
    assert.equal(fallback.headers.get("x-proxy-provider"), "bedrock");
    assert.match(timing(fallback), /^proxy;dur=\d+\.\d, upstream;dur=\d+, bedrock;dur=\d+$/);
    await fallback.text();
    const streamed = await post(f, { ...MESSAGE, stream: true });
    assert.match(timing(streamed), /^proxy;dur=\d+\.\d, upstream;dur=\d+$/);
    await streamed.text();
    const count = await countTokens(f, COUNT);
    assert.match(timing(count), /^proxy;dur=\d+\.\d, upstream;dur=\d+$/);
    await count.text();
    // Answered by Bedrock alone, the Anthropic API never asked.
    f.t.services.breakers.openUntil(f.keyId, Date.now() + 60_000, "test");
    const open = await post(f, MESSAGE);
    assert.equal(open.headers.get("x-proxy-provider"), "bedrock");
    assert.match(timing(open), /^proxy;dur=\d+\.\d, bedrock;dur=\d+$/);
    await open.text();
    const models = await fetch(`${f.baseUrl}/v1/models`, { headers: { "x-api-key": "sk-ant-client" } });
    assert.equal(models.headers.get("x-proxy-provider"), "bedrock");
    assert.match(timing(models), /^proxy;dur=\d+\.\d$/, "the catalogue is the proxy's own");
    await models.text();
  } finally {
    await f.close();
  }
});

dbTest(
  "credentials that cannot be opened during a fallback give way to the Anthropic API's own answer",
  async (db) => {
    // Sealing works; opening fails, as with a KMS that went away after the credentials were stored.
    const local = createLocalEncryptor(crypto.getRandomValues(new Uint8Array(32)));
    let opening = true;
    const encryptor = {
      scheme: local.scheme,
      encrypt: local.encrypt.bind(local),
      decrypt: (...args: Parameters<typeof local.decrypt>) =>
        opening ? local.decrypt(...args) : Promise.reject(new Error("KMS Decrypt failed: unreachable")),
    };
    const f = await setup(db, { env: { PROXY_BEDROCK_KEY_CACHE_TTL: "0" }, overrides: { encryptor } });
    try {
      opening = false;
      f.upstream.script(RATE_LIMITED);
      const res = await post(f, MESSAGE);
      assert.equal(res.status, 429, "the API's answer, not a 500 about credentials");
      assert.equal(res.headers.get("retry-after"), "17");
      assert.equal(res.headers.get("x-proxy-fallback-reason"), "rate_limited");
      await res.text();
      assert.equal(f.bedrock.requests.length, 0);
    } finally {
      await f.close();
    }
  },
);

/**
 * Requests the real Claude Code 2.1.332 sent the Anthropic API (captured through a fake one: plain prompts, tool
 * use, images, PDFs, plan mode, compaction, structured output, MCP, sub-agents; Opus and Sonnet 5.5, Opus 4.6,
 * Sonnet and Haiku 4.5), their long texts cut short. Each must reach Bedrock in a form it takes, for its own
 * model and with the default model standing in: the fake Bedrock refuses what Bedrock has refused.
 */
const CLAUDE_CODE_REQUESTS: Array<{ name: string; anthropic_beta: string; body: Record<string, unknown> }> =
  JSON
    .parse(await Deno.readTextFile(new URL("./fixtures/claude_code_requests.json", import.meta.url)));

dbTest(
  "every captured Claude Code request is answered by Bedrock, for its own model and by the default",
  async (db) => {
    const f = await setup(db, { user: { routing_strategy: "bedrock_only" } });
    try {
      for (const { name, anthropic_beta, body } of CLAUDE_CODE_REQUESTS) {
        for (const model of [body.model as string, "claude-made-up-model"]) {
          const res = await post(f, { ...body, model }, { "anthropic-beta": anthropic_beta });
          assert.equal(res.status, 200, `${name} as ${model}: ${await res.clone().text()}`);
          await res.body?.cancel();
        }
      }
      const sent = f.bedrock.requests.map((r) => JSON.stringify(r.body));
      assert.equal(sent.length, CLAUDE_CODE_REQUESTS.length * 2);
      assert.ok(sent.every((b) => !b.includes("x-anthropic-billing-header") && !b.includes('"scope"')));
    } finally {
      await f.close();
    }
  },
);

dbTest(
  "a request with a tool only the Anthropic API runs is not sent to Bedrock, which runs none",
  async (db) => {
    // Claude Code's web search: a request of its own, with only Anthropic's server tool.
    const search = {
      ...MESSAGE,
      tools: [{ type: "web_search_20250305", name: "web_search", max_uses: 8 }],
    };
    const routed = await setup(db, { user: { routing_strategy: "bedrock_only" } });
    try {
      const res = await post(routed, search);
      assert.equal(res.status, 400);
      assert.equal(res.headers.get("x-should-retry"), "false");
      const body = await res.json();
      assert.equal(body.error.type, "invalid_request_error");
      assert.match(body.error.message, /web_search_20250305 tool runs on the Anthropic API only/);
      assert.equal(routed.bedrock.requests.length, 0, "no Bedrock call that could only be refused");
      await flushed(routed, 1);
      const [row] = await rows(db);
      assert.deepEqual([row.provider, row.status_code, row.error_type], [
        "bedrock",
        400,
        "invalid_request_error",
      ]);
    } finally {
      await routed.close();
    }
  },
);

dbTest(
  "while the Anthropic API is overloaded, a web search gets its retryable answer, not a Bedrock refusal",
  async (db) => {
    const f = await setup(db);
    try {
      f.upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
      const res = await post(f, { ...MESSAGE, tools: [{ type: "web_fetch_20250910", name: "web_fetch" }] });
      assert.equal(res.status, 529);
      assert.equal(res.headers.get("x-proxy-provider"), "anthropic");
      assert.equal((await res.json()).error.type, "overloaded_error");
      assert.equal(f.bedrock.requests.length, 0);
    } finally {
      await f.close();
    }
  },
);
