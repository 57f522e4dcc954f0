/**
 * `GET /api/usage`, `/api/usage/top-users` and `/api/usage/requests` over recorded usage, with buckets in
 * `PROXY_TIMEZONE`.
 */
import assert from "node:assert/strict";
import { dbTest } from "./helpers/db.ts";
import { makeTestApp } from "./helpers/app.ts";
import { UsageRecorder } from "../lib/usage/recorder.ts";
import type { UsageRecord } from "../lib/db/usage.ts";
import { silentLogger } from "../lib/log.ts";

dbTest(
  "usage reports: totals, series in the configured zone, breakdowns, top users, recent requests",
  async (db) => {
    const now = new Date("2026-06-02T12:00:00Z");
    const t = await makeTestApp(db, { PROXY_TIMEZONE: "Asia/Seoul" }, { now: () => now });
    const h = await t.auth();
    const alice = (await t.call("POST", "/api/users", { email: "alice@example.com" }, h)).body;
    const bob = (await t.call("POST", "/api/users", { email: "bob@example.com" }, h)).body;
    const ka = (await t.call("POST", `/api/users/${alice.id}/access-keys`, {}, h)).body;
    const kb = (await t.call("POST", `/api/users/${bob.id}/access-keys`, {}, h)).body;
    const rec = new UsageRecorder({
      db,
      log: silentLogger,
      timeZone: "Asia/Seoul",
      spoolDir: await Deno.makeTempDir(),
    });
    let n = 0;
    const add = (key: { id: string }, user: { id: string }, at: string, over: Partial<UsageRecord> = {}) =>
      rec.record({
        requestId: `r${n++}`,
        accessKeyId: key.id,
        userId: user.id,
        messageId: null,
        model: "claude-sonnet-4-5",
        modelServed: null,
        stream: true,
        inputTokens: 100,
        outputTokens: 10,
        cacheReadInputTokens: 1,
        cacheCreationInputTokens: 2,
        provider: "anthropic",
        isFallback: false,
        fallbackReason: null,
        statusCode: 200,
        errorType: null,
        stopReason: null,
        latencyMs: 100,
        timeToFirstByteMs: 10,
        costUsd: 0.5,
        createdAt: at,
        ...over,
      });
    // 2026-06-01T16:30Z is 01:30 on 2 June in Seoul; 14:30Z is 23:30 on 1 June.
    add(ka, alice, "2026-06-01T14:30:00Z");
    add(ka, alice, "2026-06-01T16:30:00Z", {
      provider: "bedrock",
      isFallback: true,
      fallbackReason: "overloaded",
      costUsd: 1,
    });
    add(kb, bob, "2026-06-01T16:40:00Z", {
      statusCode: 529,
      errorType: "overloaded_error",
      latencyMs: 300,
      costUsd: 0,
    });
    add(kb, bob, "2026-06-02T11:00:00Z", { model: "claude-haiku-4-5", costUsd: 2 });
    await rec.close();

    const day = await t.call(
      "GET",
      "/api/usage?from=2026-06-01T00:00:00Z&to=2026-06-02T12:00:00Z&granularity=day",
      undefined,
      h,
    );
    assert.equal(day.status, 200, JSON.stringify(day.body));
    assert.equal(day.body.time_zone, "Asia/Seoul");
    assert.equal(day.body.totals.requests, 4);
    assert.equal(day.body.totals.errors, 1);
    assert.equal(day.body.totals.fallbacks, 1);
    assert.equal(day.body.totals.input_tokens, 400);
    assert.equal(day.body.totals.cache_creation_tokens, 8);
    assert.equal(day.body.totals.cost_usd, 3.5);
    assert.equal(day.body.totals.fallback_rate, 0.25);
    assert.equal(day.body.totals.error_rate, 0.25);
    assert.equal(day.body.totals.p50_latency_ms, 100);
    // Day buckets start at Seoul midnight (15:00Z the day before).
    assert.deepEqual(
      day.body.series.map((s: { bucket: string; requests: number }) => [s.bucket, s.requests]),
      [
        ["2026-05-31T15:00:00.000Z", 1],
        ["2026-06-01T15:00:00.000Z", 3],
      ],
    );
    assert.deepEqual(
      day.body.by_provider.map((p: { label: string; requests: number }) => [p.label, p.requests]).sort(),
      [
        ["anthropic", 3],
        ["bedrock", 1],
      ],
    );
    assert.equal(day.body.by_model[0].label, "claude-haiku-4-5", "ordered by cost");
    assert.deepEqual(
      day.body.top_users.map((u: { email: string; cost_usd: number }) => [u.email, u.cost_usd]),
      [
        ["bob@example.com", 2],
        ["alice@example.com", 1.5],
      ],
    );

    const filtered = await t.call(
      "GET",
      `/api/usage?from=2026-06-01T00:00:00Z&provider=bedrock&user_id=${alice.id}`,
      undefined,
      h,
    );
    assert.equal(filtered.body.totals.requests, 1);
    assert.equal(filtered.body.granularity, "hour");

    const top = await t.call("GET", "/api/usage/top-users?from=2026-06-01T00:00:00Z&limit=1", undefined, h);
    assert.deepEqual(top.body.items.map((u: { email: string }) => u.email), ["bob@example.com"]);
    // Paged: the next page holds the next user, and past the end an empty page ends a script's loop.
    const emails = async (offset: number) =>
      (await t.call(
        "GET",
        `/api/usage/top-users?from=2026-06-01T00:00:00Z&limit=1&offset=${offset}`,
        undefined,
        h,
      ))
        .body.items.map((u: { email: string }) => u.email);
    assert.deepEqual(await emails(1), ["alice@example.com"]);
    assert.deepEqual(await emails(2), []);

    const recent = await t.call("GET", "/api/usage/requests?limit=2", undefined, h);
    assert.equal(recent.body.total, 4);
    assert.equal(recent.body.items.length, 2);
    assert.equal(recent.body.items[0].request_id, "r3", "newest first");
    assert.equal(recent.body.items[0].email, "bob@example.com");
    assert.equal(recent.body.items[0].key_prefix, kb.key_prefix);
    // Ordered by what an admin looks for: the most expensive, slowest, largest, or oldest first.
    const sorted = async (sort: string) =>
      (await t.call("GET", `/api/usage/requests?sort=${sort}`, undefined, h)).body.items
        .map((r: { request_id: string }) => r.request_id);
    assert.deepEqual(await sorted("newest"), ["r3", "r2", "r1", "r0"]);
    assert.deepEqual(await sorted("oldest"), ["r0", "r1", "r2", "r3"]);
    assert.deepEqual(await sorted("cost"), ["r3", "r1", "r0", "r2"]);
    assert.deepEqual(await sorted("latency"), ["r2", "r3", "r1", "r0"], "ties newest first");
    const badSort = await t.call("GET", "/api/usage/requests?sort=price", undefined, h);
    assert.equal(badSort.status, 400);
    assert.deepEqual(badSort.body.error, {
      type: "invalid_request_error",
      message: "sort: expected one of newest, oldest, cost, latency, tokens",
      field: "sort",
    });
    const errors = await t.call("GET", "/api/usage/requests?status=error", undefined, h);
    assert.deepEqual(errors.body.items.map((r: { request_id: string }) => r.request_id), ["r2"]);
    // A list of requests takes from/to exactly as given: no rounding to a bucket, no 24 h default for from.
    const ids = async (query: string) =>
      (await t.call("GET", `/api/usage/requests?${query}`, undefined, h)).body.items
        .map((r: { request_id: string }) => r.request_id).sort();
    assert.deepEqual(await ids("from=2026-06-01T14:31:00Z&to=2026-06-01T16:31:00Z"), ["r1"]);
    assert.deepEqual(await ids("to=2026-06-01T16:31:00Z"), ["r0", "r1"]);
    const reversed = await t.call(
      "GET",
      "/api/usage/requests?from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z",
      undefined,
      h,
    );
    assert.equal(reversed.status, 400);
    assert.equal(reversed.body.error.field, "from");

    for (
      const bad of [
        "from=yesterday",
        "granularity=week",
        "user_id=nope",
        "provider=openai",
        "from=2026-06-02T00:00:00Z&to=2026-06-01T00:00:00Z",
        // Outside the years the database handles (they were a 500), or wrapped round (0000 read as 1900).
        "to=%2B275760-09-13T00:00:00Z",
        "from=0000-06-01T00:00:00Z",
        "from=-271821-04-20T00:00:00Z",
        // Not ISO 8601, though `new Date` reads them (in the server's own zone).
        "from=1",
        "from=5%2F1%2F2026",
        // PostgreSQL cannot hold NUL in text: a 500 before.
        "model=a%00b",
      ]
    ) {
      for (const route of ["/api/usage", "/api/usage/requests", "/api/usage/top-users"]) {
        const r = await t.call("GET", `${route}?${bad}`, undefined, h);
        if (route !== "/api/usage" && /granularity|user_id|provider/.test(bad)) continue;
        assert.equal(r.status, 400, `${route}?${bad}`);
        assert.equal(r.body.error.type, "invalid_request_error");
      }
    }
  },
);

/** Records `rows` as the proxy would, with hour and day aggregates in `timeZone`. */
async function recordUsage(
  db: Parameters<Parameters<typeof dbTest>[1]>[0],
  timeZone: string,
  rows: Array<{ key: { id: string }; user: { id: string }; id: string; at: string; latencyMs?: number }>,
): Promise<void> {
  const rec = new UsageRecorder({ db, log: silentLogger, timeZone, spoolDir: await Deno.makeTempDir() });
  for (const r of rows) {
    rec.record({
      requestId: r.id,
      accessKeyId: r.key.id,
      userId: r.user.id,
      messageId: null,
      model: "claude-sonnet-4-5",
      modelServed: null,
      stream: true,
      inputTokens: 100,
      outputTokens: 10,
      cacheReadInputTokens: 0,
      cacheCreationInputTokens: 0,
      provider: "anthropic",
      isFallback: false,
      fallbackReason: null,
      statusCode: 200,
      errorType: null,
      stopReason: null,
      latencyMs: r.latencyMs ?? 100,
      timeToFirstByteMs: 10,
      costUsd: 0.5,
      createdAt: r.at,
    });
  }
  await rec.close();
}

dbTest(
  "a report counts whole buckets and echoes them, so totals, percentiles and the request list agree",
  async (db) => {
    const now = new Date("2026-11-29T16:00:00Z");
    const t = await makeTestApp(db, { PROXY_TIMEZONE: "America/New_York" }, { now: () => now });
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "carol@example.com" }, h)).body;
    const key = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    // Twelve requests between 14:43 and 14:45, latencies 100, 110, ... 210 ms.
    await recordUsage(
      db,
      "America/New_York",
      Array.from({ length: 12 }, (_, i) => ({
        key,
        user,
        id: `w${i}`,
        at: new Date(Date.parse("2026-11-29T14:43:00Z") + i * 10_000).toISOString(),
        latencyMs: 100 + i * 10,
      })),
    );

    const report = await t.call(
      "GET",
      "/api/usage?from=2026-11-29T14:00:00Z&to=2026-11-29T14:00:01Z&granularity=hour",
      undefined,
      h,
    );
    assert.equal(report.status, 200, JSON.stringify(report.body));
    assert.equal(report.body.from, "2026-11-29T14:00:00.000Z");
    assert.equal(report.body.to, "2026-11-29T15:00:00.000Z", "to rounded up to the end of its hour");
    assert.equal(report.body.totals.requests, 12);
    assert.equal(report.body.totals.p50_latency_ms, 155, "percentiles over the same hour as the totals");
    assert.equal(report.body.totals.avg_latency_ms, 155);
    assert.deepEqual(
      report.body.series.map((s: { bucket: string; requests: number }) => [s.bucket, s.requests]),
      [["2026-11-29T14:00:00.000Z", 12]],
    );

    const listed = await t.call(
      "GET",
      `/api/usage/requests?from=${report.body.from}&to=${report.body.to}&limit=1`,
      undefined,
      h,
    );
    assert.equal(listed.body.total, report.body.totals.requests, "the echoed range lists what was counted");

    const top = await t.call(
      "GET",
      "/api/usage/top-users?from=2026-11-29T14:00:00Z&to=2026-11-29T14:00:01Z&granularity=hour",
      undefined,
      h,
    );
    assert.equal(top.body.to, "2026-11-29T15:00:00.000Z");
    assert.deepEqual(
      top.body.items.map((u: { email: string; requests: number }) => [u.email, u.requests]),
      [["carol@example.com", 12]],
    );
  },
);

dbTest(
  "from and to without an offset are read in PROXY_TIMEZONE; impossible dates are a 400 naming them",
  async (db) => {
    const now = new Date("2026-12-01T00:00:00Z");
    const t = await makeTestApp(db, { PROXY_TIMEZONE: "Asia/Seoul" }, { now: () => now });
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "dave@example.com" }, h)).body;
    const key = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    // 23:30 on 28 November and 00:30 on 29 November in Seoul.
    await recordUsage(db, "Asia/Seoul", [
      { key, user, id: "late", at: "2026-11-28T14:30:00Z" },
      { key, user, id: "early", at: "2026-11-28T15:30:00Z" },
    ]);

    const day = await t.call("GET", "/api/usage?from=2026-11-29&to=2026-11-30&granularity=day", undefined, h);
    assert.equal(day.status, 200, JSON.stringify(day.body));
    assert.equal(day.body.from, "2026-11-28T15:00:00.000Z", "Seoul midnight");
    assert.equal(day.body.to, "2026-11-29T15:00:00.000Z");
    assert.equal(day.body.totals.requests, 1);

    const ids = async (query: string) =>
      (await t.call("GET", `/api/usage/requests?${query}`, undefined, h)).body.items
        .map((r: { request_id: string }) => r.request_id);
    assert.deepEqual(await ids("from=2026-11-29T00:00&to=2026-11-29T01:00"), ["early"]);
    assert.deepEqual(await ids("to=2026-11-29"), ["late"]);
    assert.deepEqual(await ids("from=2026-11-28T14:00:00Z&to=2026-11-28T15:00:00Z"), ["late"]);

    for (
      const [bad, field] of [
        ["from=2026-02-30", "from"],
        ["to=2026-02-31T00:00:00Z", "to"],
        ["from=2026-13-01", "from"],
        ["from=2026-11-29T24:00", "from"],
        ["to=2026-11-29T25:00:00Z", "to"],
        ["from=2026-11-29T12:60", "from"],
      ]
    ) {
      for (const route of ["/api/usage", "/api/usage/requests", "/api/usage/top-users"]) {
        const r = await t.call("GET", `${route}?${bad}`, undefined, h);
        assert.equal(r.status, 400, `${route}?${bad}`);
        assert.equal(r.body.error.type, "invalid_request_error");
        assert.equal(r.body.error.field, field, `${route}?${bad}`);
        assert.match(r.body.error.message, new RegExp(`^${field}: expected .*, got "`), `${route}?${bad}`);
      }
    }
  },
);

dbTest(
  "latency percentiles cover only ranges whose request rows retention has kept; totals cover any range",
  async (db) => {
    const now = new Date("2026-06-02T12:00:00Z");
    const t = await makeTestApp(db, { PROXY_USAGE_RETENTION_DAYS: "30" }, { now: () => now });
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "old@example.com" }, h)).body;
    const key = (await t.call("POST", `/api/users/${user.id}/access-keys`, {}, h)).body;
    // Three requests in March; retention (30 days) has deleted all but the fastest, as it does in batches.
    const row = (id: string, at: string, latencyMs: number) => ({ key, user, id, at, latencyMs });
    await recordUsage(db, "UTC", [
      row("p0", "2026-03-10T10:00:00Z", 900),
      row("p1", "2026-03-10T11:00:00Z", 800),
      row("p2", "2026-03-10T12:00:00Z", 1),
      row("p3", "2026-06-01T10:00:00Z", 250),
    ]);
    await db.exec("DELETE FROM token_usages WHERE latency_ms IN (900, 800)");

    const old = await t.call("GET", "/api/usage?from=2026-03-01&to=2026-04-01&granularity=day", undefined, h);
    assert.equal(old.status, 200);
    assert.equal(old.body.totals.requests, 3, "totals come from the aggregates, kept for ever");
    assert.equal(old.body.totals.p50_latency_ms, null, "not the one row retention has not reached yet");
    assert.equal(old.body.totals.p95_latency_ms, null);
    const recent = await t.call(
      "GET",
      "/api/usage?from=2026-05-20&to=2026-06-02&granularity=day",
      undefined,
      h,
    );
    assert.equal(recent.body.totals.requests, 1);
    assert.equal(recent.body.totals.p50_latency_ms, 250);
  },
);
