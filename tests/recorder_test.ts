/**
 * The usage recorder on both backends: exact rows and aggregates, idempotent replays, database failure with
 * retry, overflow to the spool file and replay, and shutdown.
 */
import assert from "node:assert/strict";
import { dbTest, flakyDb as flaky, wrapDb } from "./helpers/db.ts";
import { EXPIRED_MESSAGE, UsageRecorder } from "../lib/usage/recorder.ts";
import type { UsageRecord } from "../lib/db/usage.ts";
import type { Db } from "../lib/db/db.ts";
import { sql } from "../lib/db/sql.ts";
import { createLogger, type Logger, silentLogger } from "../lib/log.ts";
import { parseUsageLines, replayUsageFiles, UNRECORDED_MESSAGE } from "../lib/usage/unrecorded.ts";

async function seedKey(db: Db): Promise<{ userId: string; keyId: string }> {
  const [u] = await db.query<{ id: string }>(
    sql`INSERT INTO users (email) VALUES (${"rec@example.com"}) RETURNING id`,
  );
  const [k] = await db.query<{ id: string }>(
    sql`INSERT INTO access_keys (user_id, key_hash, key_prefix) VALUES (${u.id}, ${"h"}, ${"ak_x"}) RETURNING id`,
  );
  return { userId: u.id, keyId: k.id };
}

function usage(
  ids: { userId: string; keyId: string },
  n: number,
  over: Partial<UsageRecord> = {},
): UsageRecord {
  return {
    requestId: `req-${n}`,
    accessKeyId: ids.keyId,
    userId: ids.userId,
    messageId: `msg_${n}`,
    model: "claude-sonnet-4-5",
    modelServed: "claude-sonnet-4-5-20250929",
    stream: true,
    inputTokens: 10,
    outputTokens: 20,
    cacheReadInputTokens: 3,
    cacheCreationInputTokens: 4,
    provider: "anthropic",
    isFallback: false,
    fallbackReason: null,
    statusCode: 200,
    errorType: null,
    stopReason: "end_turn",
    latencyMs: 100,
    timeToFirstByteMs: 5,
    costUsd: 0.001,
    createdAt: "2026-06-01T10:15:00.000Z",
    ...over,
  };
}

/** A recorder on `db` in UTC, spooling to a fresh directory. */
async function dbRecorder(db: Db, log: Logger = silentLogger): Promise<UsageRecorder> {
  return new UsageRecorder({ db, log, timeZone: "UTC", spoolDir: await Deno.makeTempDir() });
}

/**
 * Records `records` with the database down and shuts the recorder down, so they wait in a fresh spool
 * directory; the database is up again when this returns, for a second recorder on `f` to replay them.
 */
async function spooledWhileDown(db: Db, records: UsageRecord[]) {
  const spoolDir = await Deno.makeTempDir();
  const f = flaky(db);
  const first = new UsageRecorder({ db: f, log: silentLogger, timeZone: "UTC", spoolDir });
  f.down = true;
  for (const r of records) first.record(r);
  await first.close(300);
  f.down = false;
  return { f, spoolDir };
}

/** The rows written, and the aggregates summed per granularity. */
async function totals(db: Db) {
  const [rows] = await db.query<{ n: number; input: number; output: number; cr: number; cw: number }>(sql`
    SELECT count(*) AS n, coalesce(sum(input_tokens),0) AS input, coalesce(sum(output_tokens),0) AS output,
      coalesce(sum(cache_read_input_tokens),0) AS cr, coalesce(sum(cache_creation_input_tokens),0) AS cw
    FROM token_usages`);
  const aggs = await db.query<
    {
      granularity: string;
      request_count: number;
      total_input_tokens: number;
      total_cost_usd: number;
      total_cache_read_tokens: number;
      error_count: number;
    }
  >(sql`
    SELECT granularity, sum(request_count) AS request_count, sum(total_input_tokens) AS total_input_tokens,
      sum(total_cost_usd) AS total_cost_usd, sum(total_cache_read_tokens) AS total_cache_read_tokens,
      sum(error_count) AS error_count
    FROM usage_aggregates GROUP BY granularity ORDER BY granularity`);
  return { rows, aggs };
}

dbTest("flushed rows and hour/day aggregates are exact, cache tokens and errors included", async (db) => {
  const ids = await seedKey(db);
  const spoolDir = await Deno.makeTempDir();
  const rec = new UsageRecorder({ db, log: silentLogger, timeZone: "Asia/Seoul", spoolDir });
  for (let i = 0; i < 1203; i++) {
    rec.record(usage(ids, i, i % 100 === 0 ? { statusCode: 529, errorType: "overloaded_error" } : {}));
  }
  await rec.close();
  const { rows, aggs } = await totals(db);
  assert.deepEqual([rows.n, rows.input, rows.output, rows.cr, rows.cw], [1203, 12030, 24060, 3609, 4812]);
  assert.deepEqual(
    aggs.map((
      a,
    ) => [a.granularity, a.request_count, a.total_input_tokens, a.total_cache_read_tokens, a.error_count]),
    [
      ["day", 1203, 12030, 3609, 13],
      ["hour", 1203, 12030, 3609, 13],
    ],
  );
  assert.ok(Math.abs(aggs[0].total_cost_usd - 1.203) < 1e-9);
  // Day buckets follow Asia/Seoul midnight: 10:15Z is 19:15 in Seoul, the bucket starts at 15:00Z the day before.
  const [day] = await db.query<{ time_bucket: Date }>(
    sql`SELECT time_bucket FROM usage_aggregates WHERE granularity = 'day'`,
  );
  assert.equal(day.time_bucket.toISOString(), "2026-05-31T15:00:00.000Z");
  const [key] = await db.query<{ last_used_at: Date }>(sql`SELECT last_used_at FROM access_keys`);
  assert.equal(key.last_used_at.toISOString(), "2026-06-01T10:15:00.000Z");
});

dbTest("a replayed row is neither inserted nor counted twice", async (db) => {
  const ids = await seedKey(db);
  const rec = await dbRecorder(db);
  rec.record(usage(ids, 1));
  rec.record(usage(ids, 2));
  await rec.flush();
  rec.record(usage(ids, 1));
  rec.record(usage(ids, 3));
  await rec.close();
  const { rows, aggs } = await totals(db);
  assert.equal(rows.n, 3);
  assert.deepEqual(aggs.map((a) => a.request_count), [3, 3]);
});

dbTest(
  "hostile text (NUL, lone surrogates, kilobytes) in model, speed, region and the rest is stored cleaned, blocking no row",
  async (db) => {
    const ids = await seedKey(db);
    const rec = await dbRecorder(db);
    rec.record(usage(ids, 1, { model: "claude\u0000x", stopReason: "a\u0000b" }));
    rec.record(usage(ids, 2, { model: "claude-\ud800", messageId: "msg_\udfff" }));
    rec.record(usage(ids, 3, { model: "m".repeat(4096), errorType: "e".repeat(5000) }));
    rec.record(usage(ids, 4));
    // The answer's own speed and region, cut to 32 characters in the middle of an emoji, or with a NUL.
    rec.record(
      usage(ids, 5, { speed: "fast\u0000", inferenceGeo: ("x".repeat(31) + "\u{1F600}").slice(0, 32) }),
    );
    rec.record(usage(ids, 6, { webSearchRequests: 1.5 }));
    await rec.flush();
    assert.equal(rec.stats().queued, 0, "every row written");
    const rows = await db.query<
      {
        request_id: string;
        model: string;
        stop_reason: string;
        message_id: string;
        speed: string;
        inference_geo: string;
        web_search_requests: number;
      }
    >(
      sql`SELECT request_id, model, stop_reason, message_id, speed, inference_geo, web_search_requests
          FROM token_usages ORDER BY request_id`,
    );
    assert.deepEqual(rows.map((r) => r.request_id), ["req-1", "req-2", "req-3", "req-4", "req-5", "req-6"]);
    assert.equal(rows[4].speed, "fast\uFFFD");
    assert.equal(rows[4].inference_geo, "x".repeat(31) + "\uFFFD");
    assert.equal(rows[5].web_search_requests, 2);
    assert.equal(rows[0].model, "claude\uFFFDx");
    assert.equal(rows[0].stop_reason, "a\uFFFDb");
    assert.equal(rows[1].model, "claude-\uFFFD");
    assert.equal(rows[1].message_id, "msg_\uFFFD");
    assert.equal(rows[2].model, "m".repeat(256));
    await rec.close();
  },
);

Deno.test("a spool write that fails half way leaves no row glued to its fragment: the next spill starts a new file", async () => {
  const spoolDir = await Deno.makeTempDir();
  const written: string[] = [];
  let fail = true;
  const rec = new UsageRecorder({
    db: { query: () => Promise.reject(new Error("database down")) } as unknown as Db,
    log: silentLogger,
    timeZone: "UTC",
    spoolDir,
    queueMax: 0,
    // The disk fills during the first write: half a line lands, then the write throws.
    appendFile: async (path, text) => {
      written.push(path);
      if (fail) {
        fail = false;
        await Deno.writeTextFile(path, text.slice(0, text.length >> 1), { append: true });
        throw new Error("No space left on device");
      }
      await Deno.writeTextFile(path, text, { append: true });
    },
  });
  const ids = { userId: crypto.randomUUID(), keyId: crypto.randomUUID() };
  rec.record(usage(ids, 1));
  await new Promise((r) => setTimeout(r, 50));
  rec.record(usage(ids, 2));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(written.length, 2);
  assert.notEqual(written[0], written[1], "the second spill went to a new file");
  const second = await Deno.readTextFile(written[1]);
  assert.equal(JSON.parse(second.trim()).requestId, "req-2");
  await Deno.remove(spoolDir, { recursive: true });
});

Deno.test("shutdown ends at its deadline on a stalled database connection: the pending batch goes to the spool", async () => {
  const spoolDir = `${await Deno.makeTempDir()}/spool`; // made by the recorder
  // A connection that accepted the transaction and then went silent (a partition): it never settles.
  const stalled = {
    query: () => new Promise(() => {}),
    begin: () => new Promise(() => {}),
  } as unknown as Db;
  const rec = new UsageRecorder({ db: stalled, log: silentLogger, timeZone: "UTC", spoolDir });
  const ids = { userId: crypto.randomUUID(), keyId: crypto.randomUUID() };
  for (let n = 1; n <= 3; n++) rec.record(usage(ids, n));
  void rec.flush(); // the batch is now in flight, out of the queue
  const started = performance.now();
  await rec.close(300);
  const waited = performance.now() - started;
  assert.ok(waited < 2_000, `close took ${waited} ms with a 300 ms deadline`);
  const spooled: string[] = [];
  for await (const e of Deno.readDir(spoolDir)) {
    const text = await Deno.readTextFile(`${spoolDir}/${e.name}`);
    for (const line of text.trim().split("\n")) spooled.push(JSON.parse(line).requestId);
  }
  assert.deepEqual(spooled.sort(), ["req-1", "req-2", "req-3"]);
  if (Deno.build.os !== "windows") {
    assert.equal((await Deno.stat(spoolDir)).mode! & 0o777, 0o700, "usage rows are the owner's only");
  }
  await Deno.remove(spoolDir, { recursive: true });
});

dbTest("one request id queued twice in one batch is one row and counted once", async (db) => {
  const ids = await seedKey(db);
  const rec = await dbRecorder(db);
  rec.record(usage(ids, 7));
  rec.record(usage(ids, 7)); // e.g. a spool replayed while its rows were still queued
  rec.record(usage(ids, 8));
  await rec.close();
  const { rows, aggs } = await totals(db);
  assert.equal(rows.n, 2);
  assert.deepEqual(aggs.map((a) => a.request_count), [2, 2]);
});

dbTest(
  "while the database is down rows stay queued, spill past the bound, and all land once after",
  async (db) => {
    const ids = await seedKey(db);
    const spoolDir = await Deno.makeTempDir();
    const f = flaky(db);
    let now = 0;
    const rec = new UsageRecorder({
      db: f,
      log: silentLogger,
      timeZone: "UTC",
      spoolDir,
      queueMax: 100,
      now: () => now,
    });
    f.down = true;
    for (let i = 0; i < 350; i++) rec.record(usage(ids, i));
    await rec.flush();
    assert.equal(rec.stats().flushErrors > 0, true);
    await new Promise((r) => setTimeout(r, 50)); // let the spill writer run
    assert.equal(rec.stats().queued, 100, "the in-memory queue holds its bound");
    assert.equal(rec.stats().spooledRows, 250);
    const spooled = [...Deno.readDirSync(spoolDir)].map((e) => e.name);
    assert.equal(spooled.length, 1, "overflow went to one append-only spool file");
    assert.equal(Deno.readTextFileSync(`${spoolDir}/${spooled[0]}`).trim().split("\n").length, 250);
    assert.equal(
      Deno.statSync(`${spoolDir}/${spooled[0]}`).mode! & 0o777,
      0o600,
      "usage rows: the owner's only",
    );

    f.down = false;
    now += 60_000; // past the backoff
    await rec.flush();
    await rec.flush();
    await rec.close();
    const { rows, aggs } = await totals(db);
    assert.equal(rows.n, 350);
    assert.deepEqual(aggs.map((a) => a.request_count), [350, 350]);
    assert.deepEqual([...Deno.readDirSync(spoolDir)], [], "replayed spool files are removed");
  },
);

dbTest(
  "shutdown with the database down spills the queue; the next start replays it, with no new traffic",
  async (db) => {
    const ids = await seedKey(db);
    const { f, spoolDir } = await spooledWhileDown(db, Array.from({ length: 40 }, (_, i) => usage(ids, i)));
    assert.equal((await totals(db)).rows.n, 0);
    assert.equal([...Deno.readDirSync(spoolDir)].length, 1);

    const second = new UsageRecorder({ db: f, log: silentLogger, timeZone: "UTC", spoolDir });
    await second.flush(); // an idle flush: nothing new was recorded
    const { rows, aggs } = await totals(db);
    assert.equal(rows.n, 40);
    assert.deepEqual(aggs.map((a) => a.request_count), [40, 40]);
    await second.close();
    assert.deepEqual([...Deno.readDirSync(spoolDir)], []);
  },
);

dbTest(
  "a spooled row older than the retention window is logged for replay and not written; its file still goes",
  async (db) => {
    const ids = await seedKey(db);
    const { f, spoolDir } = await spooledWhileDown(db, [
      usage(ids, 1, { createdAt: "2026-06-01T10:15:00.000Z" }),
      usage(ids, 2, { createdAt: "2026-08-31T10:15:00.000Z" }),
    ]);

    // 2026-08-31 12:00: retention (90 days) has deleted rows before 2026-06-02 12:00 by now, so req-1 may
    // already be in the aggregates with its own row gone.
    const lines: string[] = [];
    const second = new UsageRecorder({
      db: f,
      log: createLogger({ level: "info", sink: (l) => lines.push(l) }),
      timeZone: "UTC",
      spoolDir,
      retentionDays: 90,
      now: () => Date.parse("2026-08-31T12:00:00.000Z"),
    });
    await second.flush();
    const rows = await db.query<{ request_id: string }>(sql`SELECT request_id FROM token_usages`);
    assert.deepEqual(rows.map((r) => r.request_id), ["req-2"]);
    assert.deepEqual((await totals(db)).aggs.map((a) => a.request_count), [1, 1]);
    assert.equal(second.stats().expiredRows, 1);
    const logged = lines.map((l) => JSON.parse(l));
    assert.ok(
      logged.some((l) => l.msg === EXPIRED_MESSAGE && l.request_id === "req-1" && l.retention_days === 90),
    );
    const replayable = parseUsageLines(lines.join("\n")).records;
    assert.deepEqual(
      replayable.map((r) => r.requestId),
      ["req-1"],
      "the dropped row is logged as a replayable line",
    );
    await second.close();
    assert.deepEqual(
      [...Deno.readDirSync(spoolDir)],
      [],
      "the spool file is removed once every row is settled",
    );
  },
);

dbTest(
  "rows left unrecorded at exit are logged one per line, and replaying that log writes each once",
  async (db) => {
    const ids = await seedKey(db);
    const f = flaky(db);
    const lines: string[] = [];
    const log = createLogger({ level: "info", sink: (l) => lines.push(l) });
    const first = new UsageRecorder({ db: f, log, timeZone: "UTC", spoolDir: await Deno.makeTempDir() });
    f.down = true;
    for (let i = 0; i < 30; i++) first.record(usage(ids, i));
    await first.close(200);
    const logged = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === UNRECORDED_MESSAGE);
    assert.equal(logged.length, 30, "every row, one line each");
    assert.deepEqual(logged[0].record, usage(ids, 0));

    // As exported from CloudWatch: a timestamp before each JSON line, other lines between.
    const exported = lines.map((l) => `2026-06-01T10:16:00.000Z ${l}`).join("\n") + "\nnot json\n";
    const file = await Deno.makeTempFile({ suffix: ".log" });
    await Deno.writeTextFile(file, exported);
    f.down = false;
    for (let round = 0; round < 2; round++) {
      const rec = await dbRecorder(db);
      const read = await replayUsageFiles([file], rec);
      assert.equal(read.rows, 30);
      assert.ok(read.skippedLines >= 1);
      await rec.close();
    }
    const { rows, aggs } = await totals(db);
    assert.equal(rows.n, 30, "replayed twice, written once");
    assert.deepEqual(aggs.map((a) => a.request_count), [30, 30]);
  },
);

dbTest(
  "logging unrecorded rows at exit is bounded; the summary says so and names the spool files",
  async (db) => {
    const ids = await seedKey(db);
    const f = flaky(db);
    const lines: string[] = [];
    const log = createLogger({ level: "info", sink: (l) => lines.push(l) });
    const spoolDir = await Deno.makeTempDir();
    const rec = new UsageRecorder({ db: f, log, timeZone: "UTC", spoolDir, exitLogRows: 10 });
    f.down = true;
    for (let i = 0; i < 30; i++) rec.record(usage(ids, i));
    await rec.close(100);
    const parsed = lines.map((l) => JSON.parse(l));
    assert.equal(parsed.filter((l) => l.msg === UNRECORDED_MESSAGE).length, 10);
    const notes = parsed.filter((l) => /not recorded at exit/.test(l.msg));
    assert.equal(notes.length, 2, "a summary before the rows, and a note where they stop");
    const [summary, cut] = notes;
    assert.ok(
      parsed.indexOf(summary) < parsed.findIndex((l) => l.msg === UNRECORDED_MESSAGE),
      "summary first",
    );
    assert.deepEqual(summary.spool_files, [...Deno.readDirSync(spoolDir)].map((e) => e.name));
    assert.equal(cut.logged, 10);
    assert.equal(
      parseUsageLines(await Deno.readTextFile(`${spoolDir}/${summary.spool_files[0]}`)).records.length,
      30,
    );
  },
);

Deno.test("usage lines: spool rows and logged rows are read, once per request id; anything else is counted", () => {
  const ids = { userId: "u", keyId: "k" };
  const text = [
    JSON.stringify(usage(ids, 1)),
    `2026-06-01 ${JSON.stringify({ level: "warn", msg: UNRECORDED_MESSAGE, record: usage(ids, 2) })}`,
    JSON.stringify({ level: "warn", msg: UNRECORDED_MESSAGE, record: usage(ids, 1) }),
    JSON.stringify({ msg: "request", status: 200 }),
    JSON.stringify({ ...usage(ids, 3), createdAt: "yesterday" }),
    "{ torn",
    "",
  ].join("\n");
  const { records, skipped } = parseUsageLines(text);
  assert.deepEqual(records.map((r) => r.requestId).sort(), ["req-1", "req-2"]);
  assert.equal(skipped, 3);
});

dbTest(
  "a row the database refuses stands alone: the rows around it are written, it is logged for replay",
  async (db) => {
    const ids = await seedKey(db);
    const lines: string[] = [];
    const rec = await dbRecorder(db, createLogger({ level: "info", sink: (l) => lines.push(l) }));
    // A key id that is not a UUID (a hand-edited spool line, say): retrying can never write it.
    const orphan = usage({ ...ids, keyId: "not-a-uuid" }, 7);
    for (let n = 1; n <= 20; n++) rec.record(n === 7 ? orphan : usage(ids, n));
    await rec.flush();
    const { rows, aggs } = await totals(db);
    assert.equal(Number(rows.n), 19, "every other row is written in the same flush");
    assert.equal(Number(aggs.find((a) => a.granularity === "day")!.request_count), 19);
    const stats = rec.stats();
    assert.equal(stats.queued, 0, "the refused row does not block the queue");
    assert.equal(stats.rejectedRows, 1);
    const logged = parseUsageLines(lines.join("\n")).records;
    assert.deepEqual(logged.map((r) => r.requestId), ["req-7"], "the refused row is a replayable log line");
    await rec.close();
  },
);

dbTest(
  "token counts an upstream reports out of contract (1.5, 3e9, a string) are stored clamped",
  async (db) => {
    const ids = await seedKey(db);
    const rec = await dbRecorder(db);
    rec.record(usage(ids, 1, { inputTokens: 1.5, outputTokens: 3e9, messageId: 42 as unknown as string }));
    rec.record(usage(ids, 2, { cacheReadInputTokens: "7" as unknown as number, costUsd: Number.NaN }));
    await rec.flush();
    assert.equal(rec.stats().flushErrors, 0);
    const rows = await db.query<Record<string, unknown>>(
      sql`SELECT request_id, input_tokens, output_tokens, cache_read_input_tokens, message_id, cost_usd
        FROM token_usages ORDER BY request_id`,
    );
    assert.deepEqual(rows.map((r) => [Number(r.input_tokens), Number(r.output_tokens), r.message_id]), [
      [2, 2_147_483_647, "42"],
      [10, 20, "msg_2"],
    ]);
    assert.equal(Number(rows[1].cache_read_input_tokens), 7);
    assert.equal(rows[1].cost_usd, null);
    await rec.close();
  },
);

Deno.test("shutdown spills a queue of 200,000 rows to the spool (no stack overflow, nothing dropped)", async () => {
  const spoolDir = await Deno.makeTempDir();
  const rec = new UsageRecorder({
    db: { begin: () => Promise.reject(new Error("database down")) } as unknown as Db,
    log: silentLogger,
    timeZone: "UTC",
    spoolDir,
    queueMax: 250_000,
    exitLogRows: 0,
  });
  const ids = { userId: crypto.randomUUID(), keyId: crypto.randomUUID() };
  for (let n = 0; n < 200_000; n++) rec.record(usage(ids, n));
  await rec.close(100);
  let rows = 0;
  for await (const e of Deno.readDir(spoolDir)) {
    rows += parseUsageLines(await Deno.readTextFile(`${spoolDir}/${e.name}`)).records.length;
  }
  assert.equal(rows, 200_000);
  await Deno.remove(spoolDir, { recursive: true });
});

Deno.test("with the database and the disk both failing, memory stays bounded: the excess goes to the log", async () => {
  const lines: string[] = [];
  const rec = new UsageRecorder({
    db: { begin: () => Promise.reject(new Error("database down")) } as unknown as Db,
    log: createLogger({ level: "info", sink: (l) => lines.push(l) }),
    timeZone: "UTC",
    spoolDir: "/nonexistent/spool",
    queueMax: 100,
    appendFile: () => Promise.reject(new Error("No space left on device")),
  });
  const ids = { userId: crypto.randomUUID(), keyId: crypto.randomUUID() };
  for (let n = 0; n < 1_000; n++) rec.record(usage(ids, n));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(rec.stats().queued, 200, "twice the queue bound is kept in memory");
  const logged = parseUsageLines(lines.join("\n")).records;
  assert.equal(logged.length, 800, "the rest are replayable log lines");
  // Later spills still run (the writer was not left broken by the failure).
  rec.record(usage(ids, 5_000));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(parseUsageLines(lines.join("\n")).records.length, 801);
});

Deno.test("a row recorded after shutdown is on disk and in the log before record() returns", async () => {
  const spoolDir = await Deno.makeTempDir();
  const lines: string[] = [];
  const rec = new UsageRecorder({
    db: { begin: () => Promise.reject(new Error("closed")) } as unknown as Db,
    log: createLogger({ level: "info", sink: (l) => lines.push(l) }),
    timeZone: "UTC",
    spoolDir,
  });
  await rec.close(100);
  const ids = { userId: crypto.randomUUID(), keyId: crypto.randomUUID() };
  rec.record(usage(ids, 1)); // e.g. a non-streaming answer that came after the drain deadline
  // No await: the process may exit right after.
  const files = [...Deno.readDirSync(spoolDir)].map((e) => e.name);
  assert.equal(files.length, 1);
  const spooled = parseUsageLines(Deno.readTextFileSync(`${spoolDir}/${files[0]}`)).records;
  assert.deepEqual(spooled.map((r) => r.requestId), ["req-1"]);
  assert.deepEqual(parseUsageLines(lines.join("\n")).records.map((r) => r.requestId), ["req-1"]);
  await Deno.remove(spoolDir, { recursive: true });
});

dbTest("a flush that fails while shutting down says when it is really tried again", async (db) => {
  const ids = await seedKey(db);
  const f = flaky(db);
  const lines: string[] = [];
  const rec = new UsageRecorder({
    db: f,
    log: createLogger({ level: "info", sink: (l) => lines.push(l) }),
    timeZone: "UTC",
    spoolDir: await Deno.makeTempDir(),
  });
  f.down = true;
  rec.record(usage(ids, 1));
  await rec.flush();
  await rec.close(500);
  const failed = lines.map((l) => JSON.parse(l)).filter((l) => l.msg.startsWith("usage flush failed"));
  assert.ok(failed.length >= 2, `${failed.length} failed flushes logged`);
  assert.equal(failed[0].retry_in_ms, 500, "while running: the backoff (its first step)");
  assert.ok(failed.slice(1).every((l) => l.retry_in_ms === 200), "while closing: close()'s own 200 ms");
});

dbTest(
  "a flush stalled on a connection that never answers fails at the write timeout, replaces the pool's connections, and the rows are written once",
  async (db) => {
    const ids = await seedKey(db);
    // Connections black-holed by a failover: transactions hang, unfailed, until the pool is recycled.
    let stalled = true;
    let recycled = 0;
    const failover = wrapDb(db, {
      begin: (fn) => (stalled ? new Promise(() => {}) : db.begin(fn)),
      ping: () => (stalled ? new Promise(() => {}) : db.ping()),
      recycle: () => {
        recycled++;
        stalled = false;
      },
    });
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ level: "info", sink: (line) => lines.push(JSON.parse(line)) });
    const rec = new UsageRecorder({
      db: failover,
      log,
      timeZone: "UTC",
      spoolDir: await Deno.makeTempDir(),
      writeTimeoutMs: 200,
    });
    for (let n = 1; n <= 5; n++) rec.record(usage(ids, n));
    const started = performance.now();
    await rec.flush();
    assert.ok(performance.now() - started < 5_000, "the flush gave up instead of waiting on the socket");
    assert.equal(recycled, 1);
    assert.equal(rec.stats().flushErrors, 1, "counted, so /metrics and the alarm see it");
    const warned = lines.find((l) => l.msg === "usage flush failed; rows kept and retried");
    assert.match(String(warned?.error), /did not answer within 200 ms; its connections were replaced/);
    await new Promise((r) => setTimeout(r, 600)); // past the first backoff
    await rec.flush();
    assert.equal((await totals(db)).rows.n, 5);
    await rec.close(1_000);
    assert.equal((await totals(db)).rows.n, 5, "each row once");
  },
);

dbTest(
  "a write slower than the write timeout on a database that answers pings keeps the pool; rows land once",
  async (db) => {
    const ids = await seedKey(db);
    let recycled = 0;
    // Slow, not stalled (a lock, a busy pool): every transaction takes 600 ms, pings answer at once.
    const slow = wrapDb(db, {
      begin: (fn) => new Promise((r) => setTimeout(r, 600)).then(() => db.begin(fn)),
      recycle: () => void recycled++,
    });
    const rec = new UsageRecorder({
      db: slow,
      log: silentLogger,
      timeZone: "UTC",
      spoolDir: await Deno.makeTempDir(),
      writeTimeoutMs: 200,
    });
    for (let n = 1; n <= 3; n++) rec.record(usage(ids, n));
    await rec.flush();
    assert.equal(recycled, 0, "a database that answers is slow, not stalled: no query in flight is killed");
    assert.match(String(rec.stats().lastFlushError), /took longer than 200 ms/);
    await new Promise((r) => setTimeout(r, 1_000)); // the late write commits meanwhile
    await rec.close(3_000);
    assert.equal((await totals(db)).rows.n, 3, "each row once, the late commit and the retry together");
    const [{ requests }] = await db.query<{ requests: number }>(
      sql`SELECT sum(request_count)::int AS requests FROM usage_aggregates WHERE granularity = 'hour'`,
    );
    assert.equal(requests, 3, "and counted once in the aggregates");
  },
);
