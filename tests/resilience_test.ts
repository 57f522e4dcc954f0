/**
 * Resilience: hostile clients, misbehaving upstreams, a database outage under load, and SIGTERM with streams in
 * flight. Every test is bounded in time.
 */
import assert from "node:assert/strict";
import { backends, dbTest, freshDb } from "./helpers/db.ts";
import { postMessages, startProxy, waitFor } from "./helpers/proxy.ts";
import { startFakeAnthropic } from "./fakes/fake_anthropic.ts";
import { SseUsageTap } from "../lib/proxy/sse_usage.ts";
import { hashPassword } from "../lib/auth/password.ts";
import { openPostgres } from "../lib/db/postgres.ts";
import { apiClient, spawnProxy } from "./helpers/process.ts";
import { sql } from "../lib/db/sql.ts";

const MESSAGE = {
  model: "claude-sonnet-4-5-20250929",
  max_tokens: 16,
  messages: [{ role: "user", content: "hi" }],
};

/** Sends raw bytes on a new TCP connection and returns what came back before the server closed or `ms` passed. */
async function raw(port: number, bytes: Uint8Array, ms = 2000): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(bytes).catch(() => 0);
    const buf = new Uint8Array(65536);
    const timer = setTimeout(() => conn.close(), ms);
    let out = "";
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        out += new TextDecoder().decode(buf.subarray(0, n));
        if (out.includes("\r\n\r\n")) break;
      }
    } catch { /* closed by the timer */ }
    clearTimeout(timer);
    return out;
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

dbTest("hostile clients get clean 4xx answers and the proxy keeps serving", async (db) => {
  const p = await startProxy(db);
  try {
    const port = Number(new URL(p.origin).port);
    const path = new URL(p.baseUrl).pathname;
    const enc = new TextEncoder();

    // Random bytes instead of HTTP.
    const garbage = await raw(port, crypto.getRandomValues(new Uint8Array(4096)));
    assert.ok(garbage === "" || /^HTTP\/1\.1 4\d\d/.test(garbage), garbage.slice(0, 40));

    // Huge headers: refused, not buffered without bound.
    const huge = await raw(
      port,
      enc.encode(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(2_000_000)}\r\n\r\n`),
    );
    assert.ok(huge === "" || /^HTTP\/1\.1 4\d\d/.test(huge), huge.slice(0, 40));

    // Slow headers: 50 connections trickling a request line do not stop others from being served.
    const slow = await Promise.all(Array.from({ length: 50 }, async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      await c.write(enc.encode("POST /ak/"));
      return c;
    }));
    const ok = await fetch(`${p.origin}/health`);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    for (const c of slow) c.close();

    // Deeply nested, random and non-object JSON bodies: 400 in Anthropic's shape, nothing sent upstream.
    const bodies = [
      "[".repeat(200_000) + "]".repeat(200_000),
      '{"a":'.repeat(50_000) + "1" + "}".repeat(50_000),
      new TextDecoder().decode(crypto.getRandomValues(new Uint8Array(2048))),
      "[]",
      '"string"',
      "",
    ];
    for (const body of bodies) {
      const res = await fetch(`${p.origin}${path}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": "k", "content-type": "application/json" },
        body,
      });
      const answer = await res.json();
      if (res.status === 200) {
        // A deeply nested object is valid JSON: it goes upstream like any other body.
        assert.equal(body.startsWith('{"a":'), true);
        continue;
      }
      assert.equal(res.status, 400, body.slice(0, 20));
      assert.equal(answer.error.type, "invalid_request_error");
    }

    const after = await postMessages(p.baseUrl, MESSAGE);
    assert.equal(after.status, 200, "still serving");
    await after.text();
  } finally {
    await p.close();
  }
});

dbTest(
  "a body trickled a byte at a time is refused with 408 at the body deadline, and recorded",
  async (db) => {
    const p = await startProxy(db, { env: { PROXY_REQUEST_BODY_TIMEOUT_MS: "500" } });
    try {
      const port = Number(new URL(p.origin).port);
      const path = new URL(p.baseUrl).pathname;
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const enc = new TextEncoder();
      const started = performance.now();
      await conn.write(enc.encode(
        `POST ${path}/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\ncontent-type: application/json\r\n` +
          `content-length: 1000\r\n\r\n{`,
      ));
      // One byte every 100 ms, for as long as the proxy reads: it must not wait for the 1,000th.
      const drip = setInterval(() => conn.write(enc.encode(" ")).catch(() => clearInterval(drip)), 100);
      let answer = "";
      try {
        const buf = new Uint8Array(4096);
        while (!answer.includes("\r\n\r\n")) {
          const n = await conn.read(buf);
          if (n === null) break;
          answer += new TextDecoder().decode(buf.subarray(0, n));
        }
      } finally {
        clearInterval(drip);
        conn.close();
      }
      const waited = performance.now() - started;
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.ok(waited >= 450 && waited < 3000, `answered after ${Math.round(waited)} ms, deadline 500`);
      assert.equal(p.upstream.requests.length, 0, "nothing went upstream");
      await waitFor(() => p.t.services.recorder.stats().queued === 1, 3000, "the usage row");
      await p.t.services.recorder.flush();
      const rows = await db.query<{ status_code: number; error_type: string | null }>(
        sql`SELECT status_code, error_type FROM token_usages`,
      );
      assert.deepEqual(rows.map((r) => [r.status_code, r.error_type]), [[408, "timeout_error"]]);

      const after = await postMessages(p.baseUrl, MESSAGE);
      assert.equal(after.status, 200, "a body sent whole is unaffected");
      await after.text();
    } finally {
      await p.close();
    }
  },
);

Deno.test("fuzz: the SSE usage tap never throws and never invents usage from random input", () => {
  const enc = new TextEncoder();
  const pieces = [
    "event: message_start\n",
    'data: {"type":"message_start","message":{"id":"m","usage":{"input_tokens":5}}}\n\n',
    'event: message_delta\ndata: {"usage":{"output_tokens":7}}\n\n',
    "data: {not json}\n\n",
    ": comment\n",
    "\r\n",
    'event: error\ndata: {"error":null}\n\n',
    "retry: x\n",
    "\u0000\uffff",
  ];
  for (let round = 0; round < 2000; round++) {
    const tap = new SseUsageTap();
    let text = "";
    for (let i = 0; i < 10; i++) text += pieces[Math.floor(Math.random() * pieces.length)];
    const bytes = round % 2 === 0
      ? enc.encode(text)
      : crypto.getRandomValues(new Uint8Array(64 + (round % 512)));
    // Split at random points, as the network does.
    let offset = 0;
    while (offset < bytes.length) {
      const n = 1 + Math.floor(Math.random() * 40);
      tap.push(bytes.subarray(offset, offset + n));
      offset += n;
    }
    const r = tap.result;
    for (const v of [r.inputTokens, r.outputTokens, r.cacheReadInputTokens, r.cacheCreationInputTokens]) {
      assert.ok(Number.isFinite(v) && v >= 0);
    }
    if (round % 2 === 1) assert.equal(r.inputTokens, 0, "random bytes carry no usage");
  }
});

dbTest("slow-drip and silent upstreams give bounded, clean errors, and usage is recorded", async (db) => {
  const p = await startProxy(db, {
    env: { PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: "500", PROXY_UPSTREAM_RESPONSE_TIMEOUT_MS: "1500" },
  });
  try {
    // A slow drip still streams every event: it is slow, not broken.
    p.upstream.script({ kind: "slow", eventDelayMs: 60 });
    const drip = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
    assert.match(await drip.text(), /event: message_stop/);

    // An upstream that never answers: 504 timeout_error (no Bedrock for this key), for a stream after the
    // first-byte timeout, for a non-streaming call (whose headers come with the whole answer) after the response
    // timeout.
    const silentFor = async (stream: boolean) => {
      p.upstream.script({ kind: "hang" });
      const started = Date.now();
      const silent = await postMessages(p.baseUrl, { ...MESSAGE, stream });
      assert.equal(silent.status, 504);
      assert.equal((await silent.json()).error.type, "timeout_error");
      return Date.now() - started;
    };
    const streamWaited = await silentFor(true);
    assert.ok(
      streamWaited >= 450 && streamWaited < 1400,
      `stream: ${streamWaited} ms, first-byte timeout 500`,
    );
    const callWaited = await silentFor(false);
    assert.ok(callWaited >= 1450 && callWaited < 3000, `call: ${callWaited} ms, response timeout 1500`);

    await waitFor(() => p.t.services.recorder.stats().queued === 3, 3000, "usage rows");
    await p.t.services.recorder.flush();
    const rows = await db.query<{ status_code: number; error_type: string | null }>(
      sql`SELECT status_code, error_type FROM token_usages ORDER BY created_at`,
    );
    assert.deepEqual(rows.map((r) => [r.status_code, r.error_type]), [
      [200, null],
      [504, "timeout_error"],
      [504, "timeout_error"],
    ]);
  } finally {
    await p.close();
  }
});

dbTest(
  "an upstream that stalls after its headers is cut after the first-byte timeout of silence, and recorded",
  async (db) => {
    const p = await startProxy(db, {
      env: { PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: "400", PROXY_UPSTREAM_RESPONSE_TIMEOUT_MS: "5000" },
    });
    try {
      // A stream that goes silent after three events ends with an Anthropic error event, not never.
      p.upstream.script({ kind: "stall", afterEvents: 3 });
      let started = Date.now();
      const stream = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
      assert.equal(stream.status, 200);
      const text = await stream.text();
      const waited = Date.now() - started;
      assert.match(text, /^event: message_start/);
      assert.match(text, /event: error\ndata: .*sent nothing for 0 s mid-stream; the answer is incomplete/);
      assert.ok(waited >= 350 && waited < 3000, `stream: ${waited} ms, silence allowed 400`);

      // A stream whose first event stops half way: held back until it is whole, so the first-byte timeout
      // covers it (504, no Bedrock for this key), or the client would wait with no headers for ever.
      p.upstream.script({ kind: "stall", afterEvents: 0, partial: true });
      started = Date.now();
      const cut = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
      assert.equal(cut.status, 504);
      assert.equal((await cut.json()).error.type, "timeout_error");
      assert.ok(Date.now() - started < 3000, `${Date.now() - started} ms, first-byte timeout 400`);

      // A non-streaming answer whose body stops half way: 502, bounded by the same silence.
      p.upstream.script({ kind: "stall", afterEvents: 0 });
      started = Date.now();
      const half = await postMessages(p.baseUrl, MESSAGE);
      assert.equal(half.status, 502);
      assert.match((await half.json()).error.message, /sent nothing for 400 ms after its headers/);
      assert.ok(Date.now() - started < 3000);

      // An error status whose body never comes: this key cannot fall back, so once the timer gives up on the
      // body the client gets that status and its headers (no hang), with an error body in Anthropic's shape.
      p.upstream.script({ kind: "error_headers_only", status: 503 });
      started = Date.now();
      const errorHead = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
      assert.equal(errorHead.status, 503);
      assert.match(
        errorHead.headers.get("request-id") ?? "",
        /^req_fake_/,
        "the upstream's headers are kept",
      );
      const errorBody = await errorHead.json();
      assert.equal(errorBody.error.type, "api_error");
      assert.match(errorBody.error.message, /answered 503, but its body was cut off/);
      assert.ok(Date.now() - started < 3000, `error body: ${Date.now() - started} ms`);

      await waitFor(() => p.t.services.recorder.stats().queued === 4, 3000, "usage rows");
      await p.t.services.recorder.flush();
      const rows = await db.query<{ status_code: number; error_type: string | null }>(
        sql`SELECT status_code, error_type FROM token_usages ORDER BY created_at`,
      );
      assert.deepEqual(rows.map((r) => [r.status_code, r.error_type]), [
        [200, "stream_interrupted"],
        [504, "timeout_error"],
        [502, "stream_interrupted"],
        [503, "api_error"],
      ]);
    } finally {
      await p.close();
    }
  },
);

async function adminSetup(origin: string, password: string) {
  const api = await apiClient(origin, password);
  const user = await api("POST", "/users", { email: `drain-${crypto.randomUUID()}@example.com` });
  const key = await api("POST", `/users/${user.id}/access-keys`, {});
  return { key: key.key as string, api };
}

Deno.test({
  name: "SIGTERM with 100 streams in flight: every stream completes, usage is flushed, exit 0",
  ignore: !backends().includes("postgres"),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { db, url, cleanup } = await freshDb("postgres");
  const upstream = await startFakeAnthropic({ eventDelayMs: 100, deltas: 15 }); // ~1.8 s per stream
  const password = "drain test password";
  try {
    const proxy = await spawnProxy({
      PROXY_DATABASE_URL: url,
      PROXY_PLAN_API_URL: upstream.url,
      PROXY_KEY_HASHER_SECRET: "drain-hasher-secret-0123456789abcdef01",
      PROXY_JWT_SECRET: "drain-jwt-secret-0123456789abcdef0123456",
      PROXY_LOCAL_ENCRYPTION_KEY: "0123456789abcdef0123456789abcdef",
      PROXY_ADMIN_PASSWORD_HASH: await hashPassword(password, 1000),
      PROXY_LOG_LEVEL: "warn",
      PROXY_SHUTDOWN_DRAIN_SECONDS: "20",
    });
    const { origin } = proxy;
    const { key } = await adminSetup(origin, password);
    const streams = Array.from({ length: 100 }, async () => {
      const res = await postMessages(`${origin}/ak/${key}`, { ...MESSAGE, stream: true });
      return await res.text();
    });
    await waitFor(() => upstream.requests.length === 100, 10_000, "100 streams open");
    const signalled = Date.now();
    const stopping = proxy.stop();
    const bodies = await Promise.all(streams);
    const status = await stopping;
    assert.equal(status.code, 0);
    assert.ok(Date.now() - signalled < 20_000, "within the drain deadline");
    for (const body of bodies) assert.match(body, /event: message_stop/);
    const [{ n }] = await db.query<{ n: number }>(sql`SELECT count(*) AS n FROM token_usages`);
    assert.equal(n, 100, "every stream's usage was flushed before exit");
  } finally {
    await upstream.close();
    await cleanup();
  }
});

Deno.test({
  name: "a stream that outlasts the drain deadline ends with an error event, and its usage is recorded",
  ignore: !backends().includes("postgres"),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { db, url, cleanup } = await freshDb("postgres");
  const upstream = await startFakeAnthropic({ eventDelayMs: 200, deltas: 100 }); // ~20 s per stream
  const password = "deadline test password";
  try {
    const proxy = await spawnProxy({
      PROXY_DATABASE_URL: url,
      PROXY_PLAN_API_URL: upstream.url,
      PROXY_KEY_HASHER_SECRET: "deadline-hasher-secret-0123456789abcdef",
      PROXY_JWT_SECRET: "deadline-jwt-secret-0123456789abcdef01234",
      PROXY_LOCAL_ENCRYPTION_KEY: "0123456789abcdef0123456789abcdef",
      PROXY_ADMIN_PASSWORD_HASH: await hashPassword(password, 1000),
      PROXY_LOG_LEVEL: "warn",
      PROXY_SHUTDOWN_DRAIN_SECONDS: "1",
    });
    const { key } = await adminSetup(proxy.origin, password);
    const res = await postMessages(`${proxy.origin}/ak/${key}`, { ...MESSAGE, stream: true });
    const body = res.text();
    await waitFor(() => upstream.requests.length === 1, 5000, "the stream is open");
    await new Promise((r) => setTimeout(r, 500)); // a few deltas in
    const signalled = Date.now();
    const status = await proxy.stop();
    assert.equal(status.code, 0);
    assert.ok(Date.now() - signalled < 8_000, `exited in ${Date.now() - signalled} ms`);
    const text = await body;
    assert.match(text, /^event: message_start\n/);
    assert.match(text, /event: error\ndata: .*the proxy is shutting down/);
    assert.doesNotMatch(text, /event: message_stop/);
    const rows = await db.query<{ status_code: number; error_type: string; input_tokens: number }>(
      sql`SELECT status_code, error_type, input_tokens FROM token_usages`,
    );
    assert.equal(rows.length, 1, "the cut stream's usage was recorded before exit");
    assert.equal(rows[0].error_type, "stream_interrupted");
    assert.ok(rows[0].input_tokens > 0, "with the tokens message_start reported");
  } finally {
    await upstream.close();
    await cleanup();
  }
});

Deno.test({
  name: "requests still awaiting their answer at the drain deadline get a retryable 503 and are recorded",
  ignore: !backends().includes("postgres"),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { db, url, cleanup } = await freshDb("postgres");
  const upstream = await startFakeAnthropic({ latencyMs: 6_000 }); // no headers before the process exits
  const password = "deadline answer test password";
  try {
    const proxy = await spawnProxy({
      PROXY_DATABASE_URL: url,
      PROXY_PLAN_API_URL: upstream.url,
      PROXY_KEY_HASHER_SECRET: "answer-hasher-secret-0123456789abcdef00",
      PROXY_JWT_SECRET: "answer-jwt-secret-0123456789abcdef0123456",
      PROXY_LOCAL_ENCRYPTION_KEY: "0123456789abcdef0123456789abcdef",
      PROXY_ADMIN_PASSWORD_HASH: await hashPassword(password, 1000),
      PROXY_LOG_LEVEL: "warn",
      PROXY_SHUTDOWN_DRAIN_SECONDS: "1",
    });
    const { key } = await adminSetup(proxy.origin, password);
    const pending = [false, true].map((stream) =>
      postMessages(`${proxy.origin}/ak/${key}`, { ...MESSAGE, stream })
    );
    await waitFor(() => upstream.requests.length === 2, 5000, "both requests upstream");
    const signalled = Date.now();
    const status = await proxy.stop();
    assert.equal(status.code, 0);
    assert.ok(Date.now() - signalled < 8_000, `exited in ${Date.now() - signalled} ms`);
    for (const res of await Promise.all(pending)) {
      assert.equal(res.status, 503);
      assert.notEqual(res.headers.get("x-should-retry"), "false");
      const body = await res.json();
      assert.equal(body.error.type, "api_error");
      assert.match(body.error.message, /the proxy is shutting down; retry the request/);
    }
    const rows = await db.query<{ status_code: number; error_type: string; stream: boolean }>(
      sql`SELECT status_code, error_type, stream FROM token_usages ORDER BY stream`,
    );
    assert.deepEqual(rows.map((r) => [r.stream, r.status_code, r.error_type]), [
      [false, 503, "api_error"],
      [true, 503, "api_error"],
    ]);
  } finally {
    await upstream.close();
    await cleanup();
  }
});

Deno.test({
  name: "a database outage of a minute under load: cached keys keep working, then every row lands once",
  ignore: !backends().includes("postgres"),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { db, url, cleanup } = await freshDb("postgres");
  const upstream = await startFakeAnthropic({ latencyMs: 5 });
  const password = "outage test password";
  const name = new URL(url).pathname.slice(1);
  const admin = openPostgres({ url: Deno.env.get("PROXY_TEST_DATABASE_URL")!, max: 1 });
  let proxy: Awaited<ReturnType<typeof spawnProxy>> | null = null;
  try {
    proxy = await spawnProxy({
      PROXY_DATABASE_URL: url,
      PROXY_PLAN_API_URL: upstream.url,
      PROXY_KEY_HASHER_SECRET: "outage-hasher-secret-0123456789abcdef0",
      PROXY_JWT_SECRET: "outage-jwt-secret-0123456789abcdef012345",
      PROXY_LOCAL_ENCRYPTION_KEY: "0123456789abcdef0123456789abcdef",
      PROXY_ADMIN_PASSWORD_HASH: await hashPassword(password, 1000),
      PROXY_LOG_LEVEL: "error",
      PROXY_ACCESS_KEY_CACHE_TTL: "5", // expires during the outage: served stale, never refused
      PROXY_USAGE_QUEUE_MAX: "500", // small, so the outage also exercises the spool file
    });
    const { origin } = proxy;
    const { key } = await adminSetup(origin, password);
    const statuses = new Map<number, number>();
    let running = true;
    const send = async () => {
      const res = await postMessages(`${origin}/ak/${key}`, { ...MESSAGE, stream: Math.random() < 0.5 });
      await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    };
    await send(); // caches the key
    const load = Array.from({ length: 8 }, async () => {
      while (running) await send();
    });

    await admin.exec(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await admin.query(sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name}`);
    const downUntil = Date.now() + 60_000;
    let readyDown = false;
    while (Date.now() < downUntil) {
      const r = await fetch(`${origin}/ready`);
      await r.body?.cancel();
      if (r.status === 503) readyDown = true;
      await new Promise((res) => setTimeout(res, 2000));
    }
    await admin.exec(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    running = false;
    await Promise.all(load);
    assert.ok(readyDown, "/ready reported the database down");
    assert.deepEqual([...statuses.keys()], [200], `statuses: ${JSON.stringify([...statuses])}`);
    const served = statuses.get(200)!;
    assert.ok(served > 500, `served ${served}`);

    await waitFor(
      async () => {
        const [{ n }] = await db.query<{ n: number }>(sql`SELECT count(*) AS n FROM token_usages`);
        return n >= served;
      },
      60_000,
      "every row written after recovery",
    );
    const [{ n, distinct }] = await db.query<{ n: number; distinct: number }>(
      sql`SELECT count(*) AS n, count(DISTINCT request_id) AS distinct FROM token_usages`,
    );
    assert.equal(n, served, "each request exactly once");
    assert.equal(distinct, served);
    const [{ total }] = await db.query<{ total: number }>(
      sql`SELECT sum(request_count) AS total FROM usage_aggregates WHERE granularity = 'day'`,
    );
    assert.equal(total, served, "aggregates counted each request once");
  } finally {
    await admin.exec(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`).catch(() => {});
    await admin.close();
    await proxy?.stop();
    await upstream.close();
    await cleanup();
  }
});
