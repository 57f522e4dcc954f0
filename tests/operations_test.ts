/**
 * Operations: metrics, security headers and allow-lists, key-guessing throttle, and two replicas sharing one
 * PostgreSQL through LISTEN/NOTIFY.
 */
import assert from "node:assert/strict";
import { backends, dbTest, freshDb, postgresTest } from "./helpers/db.ts";
import { makeTestApp } from "./helpers/app.ts";
import { postMessages, startProxy, waitFor } from "./helpers/proxy.ts";
import { startFakeAnthropic } from "./fakes/fake_anthropic.ts";
import { startFakeBedrock } from "./fakes/fake_bedrock.ts";
import { hashPassword, verifyPassword } from "../lib/auth/password.ts";
import { sql } from "../lib/db/sql.ts";
import { apiClient, spawnProxy } from "./helpers/process.ts";
import type { Db } from "../lib/db/db.ts";

const MESSAGE = {
  model: "claude-sonnet-4-5-20250929",
  max_tokens: 16,
  messages: [{ role: "user", content: "hi" }],
};

dbTest(
  "/metrics exposes requests, queue depth and breaker states, behind a token when one is set",
  async (db) => {
    const p = await startProxy(db, { env: { PROXY_METRICS_TOKEN: "metrics-secret" } });
    try {
      const res = await postMessages(p.baseUrl, MESSAGE);
      await res.text();
      const denied = await fetch(`${p.origin}/metrics`);
      assert.equal(denied.status, 401);
      await denied.body?.cancel();
      await waitFor(() => p.t.services.recorder.stats().queued === 1, 2000, "usage row");
      const metrics = await fetch(`${p.origin}/metrics`, {
        headers: { authorization: "Bearer metrics-secret" },
      });
      assert.equal(metrics.status, 200);
      const text = await metrics.text();
      assert.match(
        text,
        /proxy_requests_total\{provider="anthropic",status="200",model="claude-sonnet-4-5-20250929"\} 1/,
      );
      assert.match(text, /proxy_usage_queue_depth 1/);
      assert.match(text, /proxy_request_duration_seconds_count\{provider="anthropic"\} 1/);
      assert.match(text, /proxy_circuits_open 0/);
      assert.ok(!text.includes(p.key));
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "/metrics counts the streams open now, back to 0 after one ends and after a client leaves",
  async (db) => {
    const p = await startProxy(db, { upstream: { eventDelayMs: 50, deltas: 100 } });
    const gauge = async () => {
      const text = await (await fetch(`${p.origin}/metrics`)).text();
      return Number(/^proxy_streams_open (\d+)$/m.exec(text)?.[1]);
    };
    try {
      assert.equal(await gauge(), 0);
      const controller = new AbortController();
      const left = await postMessages(p.baseUrl, { ...MESSAGE, stream: true }, { signal: controller.signal });
      const leftReader = left.body!.getReader();
      await leftReader.read();
      const done = await postMessages(p.baseUrl, { ...MESSAGE, stream: true, max_tokens: 17 });
      const doneReader = done.body!.getReader();
      await doneReader.read();
      assert.equal(await gauge(), 2);

      controller.abort();
      await leftReader.read().catch(() => {});
      await waitFor(() => p.t.services.metrics.streamsOpen === 1, 3000, "the abandoned stream closed");
      while (!(await doneReader.read()).done) { /* to the end */ }
      await waitFor(() => p.t.services.metrics.streamsOpen === 0, 3000, "the finished stream closed");
      assert.equal(await gauge(), 0);
    } finally {
      await p.close();
    }
  },
);

dbTest("/metrics reports the process's resident memory and JavaScript heap", async (db) => {
  const t = await makeTestApp(db);
  const res = await t.call("GET", "/metrics");
  assert.equal(res.status, 200);
  const text = String(res.body);
  const value = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1]);
  assert.ok(value("process_resident_memory_bytes") > 10 * 2 ** 20, "RSS of a running Deno is over 10 MB");
  assert.ok(value("deno_heap_used_bytes") > 0);
  assert.ok(value("deno_heap_total_bytes") >= value("deno_heap_used_bytes"));
  assert.ok(Number.isFinite(value("deno_external_memory_bytes")));
  assert.equal(value("proxy_client_socket_watch_active"), 0, "not listening: no port to watch");
});

dbTest(
  "/metrics answers only as written: a percent-encoded spelling that slips past the ALB rule is 404",
  async (db) => {
    const t = await makeTestApp(db);
    for (const path of ["/%6detrics", "/%6D%65trics", "/metric%73"]) {
      assert.equal((await t.call("GET", path)).status, 404, path);
    }
    assert.equal((await t.call("GET", "/metrics")).status, 200);
  },
);

dbTest("production responses carry HSTS; the admin allow-list guards /admin and /api only", async (db) => {
  const t = await makeTestApp(db, {
    PROXY_ENV: "production",
    PROXY_DATABASE_URL: "postgres://unused@localhost/unused",
    PROXY_LOCAL_ENCRYPTION_KEY: "9f86d081884c7d659a2feaa0c55ad015",
    PROXY_ADMIN_ALLOWED_CIDRS: "10.0.0.0/8",
    PROXY_TRUST_FORWARDED_FOR: "true",
  });
  const health = await t.call("GET", "/health");
  assert.equal(health.headers.get("strict-transport-security"), "max-age=31536000; includeSubDomains");
  const outside = await t.call("POST", "/api/auth/login", { username: "admin", password: "x" }, {
    "x-forwarded-for": "203.0.113.5",
  });
  assert.equal(outside.status, 403);
  assert.equal(outside.body.error.type, "permission_error");
  const inside = await t.call("POST", "/api/auth/login", { username: "admin", password: "x" }, {
    "x-forwarded-for": "203.0.113.5, 10.1.2.3",
  });
  assert.equal(inside.status, 401, "inside the allow-list the request reaches the login check");
  const proxy = await t.call("POST", `/ak/ak_${"A".repeat(43)}/v1/messages`, MESSAGE, {
    "x-forwarded-for": "203.0.113.5",
  });
  assert.equal(proxy.status, 401, "the proxy is not behind the admin allow-list");
});

dbTest(
  "guessing access keys is throttled per client address; valid keys from that address still work",
  async (db) => {
    let clock = Date.parse("2026-11-29T12:00:00Z");
    const t = await makeTestApp(db, { PROXY_TRUST_FORWARDED_FOR: "true" }, { now: () => new Date(clock) });
    const h = await t.auth();
    const user = (await t.call("POST", "/api/users", { email: "g@example.com", name: "G" }, h)).body;
    const issue = async () =>
      (await t.call("POST", `/api/users/${user.id}/access-keys`, { name: "k" }, h)).body;
    const valid = (await issue()).key as string;
    const unused = (await issue()).key as string; // never sent before the address is throttled
    const { key: revoked, id: revokedId } = await issue();
    assert.equal((await t.call("DELETE", `/api/access-keys/${revokedId}`, undefined, h)).status, 200);
    const call = (key: string, ip: string) =>
      t.call("GET", `/ak/${key}/v1/unknown-path`, undefined, { "x-forwarded-for": ip });
    // Past the key check, a request without Anthropic credentials (none configured here) is refused for that.
    const accepted = async (key: string) =>
      /no Anthropic credentials/.test((await call(key, "198.51.100.1")).body.error.message);
    // Known keys, the valid one now cached: neither counts as a guess.
    assert.ok(await accepted(valid));
    for (let i = 0; i < 40; i++) {
      const r = await call(revoked, "198.51.100.1");
      assert.equal(r.status, 401);
      assert.equal(r.body.error.message, "access key revoked");
    }
    // One mistyped key sent again and again, and malformed keys, cost no lookup: not guesses.
    const typo = `ak_${"T".repeat(43)}`;
    for (let i = 0; i < 40; i++) assert.equal((await call(typo, "198.51.100.1")).status, 401);
    for (let i = 0; i < 40; i++) assert.equal((await call(`ak_short${i}`, "198.51.100.1")).status, 401);
    const guess = (n: number) => call(`ak_${String(n).padStart(43, "A")}`, "198.51.100.1");
    for (let i = 0; i < 29; i++) assert.equal((await guess(i)).status, 401, `guess ${i} is looked up`);
    // With the typo, 30 unknown keys: the limit. Past it, keys not seen before are looked up one every 2 s: the
    // first at once, the next refused until its turn.
    assert.equal((await guess(98)).status, 401);
    const blocked = await guess(99);
    assert.equal(blocked.status, 429);
    assert.equal(blocked.body.type, "error");
    assert.equal(blocked.body.error.type, "rate_limit_error");
    assert.equal(blocked.headers.get("retry-after"), "2");
    // The key may be valid: clients are not told to give up.
    assert.equal(blocked.headers.get("x-should-retry"), null);
    assert.ok(await accepted(valid), "a key seen before is served from a throttled address at once");
    // An admin editing its user drops the key's entry, which must be read again: yet it is no guess.
    assert.equal(
      (await t.call("PATCH", `/api/users/${user.id}`, { monthly_budget_usd: 20 }, h)).status,
      200,
    );
    assert.ok(await accepted(valid), "served at once after its user was edited");
    assert.equal((await call(revoked, "198.51.100.1")).status, 401, "a revoked key still says so");
    assert.equal((await guess(1)).status, 401, "a key just found unknown is answered from memory");
    const early = await call(unused, "198.51.100.1");
    assert.equal(early.status, 429, "a valid key never seen waits its turn");
    clock += 2_000;
    assert.ok(await accepted(unused), "and is served once its turn comes");
    // It was no guess: the next turn comes 2 s after the last, not later.
    assert.equal((await guess(100)).status, 429);
    clock += 2_000;
    assert.equal((await guess(100)).status, 401, "a guess in its turn is looked up and refused");
    assert.equal((await guess(101)).status, 429, "and the next waits again");
    assert.equal(
      (await call(`ak_${"B".repeat(43)}`, "198.51.100.2")).status,
      401,
      "other addresses are unaffected",
    );
    // A stale entry is not trusted as is: revoked behind the cache's back (no notification), the key is looked
    // up again once its entry expires, even from the throttled address.
    await db.query(
      sql`UPDATE access_keys SET revoked_at = now() WHERE user_id = ${user.id} AND revoked_at IS NULL`,
    );
    assert.ok(await accepted(valid), "still fresh in the cache");
    t.services.resolver.expireAll();
    const stale = await call(valid, "198.51.100.1");
    assert.equal(stale.status, 401);
    assert.equal(stale.body.error.message, "access key revoked");
    // A minute without guesses lifts the limit.
    clock += 61_000;
    for (let i = 200; i < 210; i++) assert.equal((await guess(i)).status, 401);
  },
);

dbTest(
  "refused requests, the API and the console get an access log line; probes only at debug",
  async (db) => {
    const t = await makeTestApp(db, { PROXY_TRUST_FORWARDED_FOR: "true" });
    const key = `ak_${"Q".repeat(43)}`;
    assert.equal(
      (await t.call("POST", `/ak/${key}/v1/messages`, MESSAGE, { "x-forwarded-for": "203.0.113.9" })).status,
      401,
    );
    assert.equal(
      (await t.call("POST", "/api/auth/login", { username: "admin", password: "nope" })).status,
      401,
    );
    assert.equal((await t.call("GET", "/health")).status, 200);
    const lines = t.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "http");
    const refused = lines.find((l) => l.path.startsWith("/ak/"));
    assert.deepEqual(
      [refused.level, refused.method, refused.path, refused.status, refused.client],
      ["info", "POST", "/ak/ak_QQQQ…/v1/messages", 401, "203.0.113.9"],
    );
    assert.ok(!t.logs.join("\n").includes(key), "the key never reaches the log");
    const login = lines.find((l) => l.path === "/api/auth/login");
    assert.deepEqual([login.level, login.status], ["info", 401]);
    assert.ok(!t.logs.join("\n").includes("nope"), "nor the password");
    assert.equal(lines.find((l) => l.path === "/health").level, "debug");
    assert.ok(lines.every((l) => typeof l.duration_ms === "number" && l.request_id));
  },
);

Deno.test({
  name:
    "two replicas on one PostgreSQL: an opened breaker, a revoked key and key guessing reach the other within 1 s",
  ignore: !backends().includes("postgres"),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { url, cleanup } = await freshDb("postgres");
  const upstream = await startFakeAnthropic();
  const bedrock = await startFakeBedrock({ apiKeys: ["ABSKdHdvLXJlcGxpY2Fz"] });
  const password = "replica admin password";
  const env = {
    PROXY_ENV: "development",
    PROXY_DATABASE_URL: url,
    PROXY_KEY_HASHER_SECRET: "replica-hasher-secret-0123456789abcdef",
    PROXY_JWT_SECRET: "replica-jwt-secret-0123456789abcdef012345",
    PROXY_LOCAL_ENCRYPTION_KEY: "0123456789abcdef0123456789abcdef",
    PROXY_ADMIN_PASSWORD_HASH: await hashPassword(password, 1000),
    PROXY_PLAN_API_URL: upstream.url,
    PROXY_BEDROCK_ENDPOINT: bedrock.url,
    PROXY_CIRCUIT_FAILURE_THRESHOLD: "1",
    PROXY_LOG_LEVEL: "warn",
    PROXY_HOST: "127.0.0.1",
  };
  const replicas = await Promise.all([spawnProxy(env), spawnProxy(env)]);
  const [a, b] = replicas;
  try {
    const api = await apiClient(a.origin, password);
    const user = await api("POST", "/users", { email: "replicas@example.com" });
    const key = await api("POST", `/users/${user.id}/access-keys`, {});
    await api("PUT", `/access-keys/${key.id}/bedrock-key`, {
      bedrock_api_key: "ABSKdHdvLXJlcGxpY2Fz",
      region: "us-east-1",
    });
    const send = async (origin: string) => {
      const res = await fetch(`${origin}/ak/${key.key}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": "k", "content-type": "application/json" },
        body: JSON.stringify(MESSAGE),
      });
      await res.text();
      return {
        status: res.status,
        provider: res.headers.get("x-proxy-provider"),
        reason: res.headers.get("x-proxy-fallback-reason"),
      };
    };
    assert.deepEqual(
      await send(b.origin),
      { status: 200, provider: "anthropic", reason: null },
      "B has the key cached",
    );

    upstream.script({ kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" });
    assert.equal((await send(a.origin)).provider, "bedrock", "A falls back and opens the breaker");
    const planCalls = upstream.requests.length;
    const opened = Date.now();
    await waitFor(
      async () => (await send(b.origin)).reason === "circuit_open",
      1000,
      "B to see the open circuit",
    );
    assert.ok(Date.now() - opened <= 1000);
    assert.equal(upstream.requests.length, planCalls, "B sent nothing to the plan upstream once it knew");

    await api("DELETE", `/access-keys/${key.id}`);
    const revoked = Date.now();
    await waitFor(async () => (await send(b.origin)).status === 401, 1000, "B to refuse the revoked key");
    assert.ok(Date.now() - revoked <= 1000);

    // 30 unknown keys a minute per address, counted over both: the limit reached on A paces B as well.
    const guess = async (origin: string, n: number) => {
      const res = await fetch(`${origin}/ak/ak_${String(n).padStart(43, "G")}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": "k", "content-type": "application/json" },
        body: JSON.stringify(MESSAGE),
      });
      await res.body?.cancel();
      return res.status;
    };
    for (let i = 0; i < 30; i++) assert.equal(await guess(a.origin, i), 401, `guess ${i} on A`);
    const guessed = Date.now();
    let n = 100; // a new key each time: a key found unknown is answered from memory, not looked up again
    await waitFor(async () => (await guess(b.origin, n++)) === 429, 1000, "B to pace guesses A counted");
    assert.ok(Date.now() - guessed <= 1000);
    assert.ok(n <= 103, `B looked up ${n - 101} keys before pacing: its one turn, and one more at most`);
    // B's turn was announced before its 429; give the notification a moment to arrive.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await guess(a.origin, 200), 429, "the turn B took is A's too");
  } finally {
    for (const r of replicas) await r.stop();
    await upstream.close();
    await bedrock.close();
    await cleanup();
  }
});

Deno.test({
  name:
    "a generated admin password is shown even when the first run does not serve (port in use, or migrate)",
  ignore: !backends().includes("postgres"),
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { url, cleanup } = await freshDb("postgres");
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const run = async (args: string[]) => {
      const dataDir = await Deno.makeTempDir({ prefix: "proxy-firstrun-" });
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, ...args],
        env: {
          PROXY_DATA_DIR: dataDir,
          PROXY_DATABASE_URL: url,
          PROXY_HOST: "127.0.0.1",
          PROXY_PORT: String((busy.addr as Deno.NetAddr).port),
          PROXY_LOG_LEVEL: "error",
          NO_COLOR: "1",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      const password = /user: admin {2}password: (\S+)/.exec(text)?.[1];
      assert.ok(password, text);
      const { adminPasswordHash } = JSON.parse(await Deno.readTextFile(`${dataDir}/secrets.json`));
      assert.ok(await verifyPassword(password, adminPasswordHash), "the password shown is the one kept");
      return { code: out.code, text };
    };
    const listening = await run([]);
    assert.equal(listening.code, 1);
    assert.match(listening.text, /cannot start: cannot listen/);
    assert.match(listening.text, /"hint":"port \d+ is taken: stop what holds it, or set PROXY_PORT/);
    assert.equal((await run(["migrate"])).code, 0);
  } finally {
    busy.close();
    await cleanup();
  }
});

Deno.test("a database that cannot be reached at start: one JSON error line naming it (no password), exit 1", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close(); // nothing listens there now
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname],
    env: {
      PROXY_DATA_DIR: await Deno.makeTempDir({ prefix: "proxy-nodb-" }),
      PROXY_DATABASE_URL: `postgres://proxy:sup3r-secret@127.0.0.1:${port}/proxydb`,
      PROXY_KEY_HASHER_SECRET: "nodb-hasher-secret-0123456789abcdef0123",
      PROXY_JWT_SECRET: "nodb-jwt-secret-0123456789abcdef012345678",
      PROXY_LOCAL_ENCRYPTION_KEY: "0123456789abcdef0123456789abcdef",
      PROXY_ADMIN_PASSWORD_HASH: await hashPassword("x", 1000),
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const line = text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
    .find((l) => l.level === "error");
  assert.ok(line, text);
  assert.match(line.msg, /^cannot start: the database could not be opened or migrated$/);
  assert.equal(line.database, `postgres 127.0.0.1:${port}/proxydb as proxy`);
  assert.ok(!text.includes("sup3r-secret"), "the password never appears");
  assert.doesNotMatch(text, /^\s+at /m, "no stack trace");
});

postgresTest(
  "a failure main does not catch is logged and exits 1, rather than exiting 0 or leaving a process that serves nothing",
  async (db, { url }) => {
    // Migrations are recorded as applied, so start-up gets past them and fails on the first query the server's
    // services make, which nothing in main catches.
    await db.exec("DROP TABLE revoked_sessions");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname],
      env: {
        PROXY_DATA_DIR: await Deno.makeTempDir({ prefix: "proxy-failed-" }),
        PROXY_DATABASE_URL: url,
        PROXY_HOST: "127.0.0.1",
        PROXY_PORT: "0",
        PROXY_KEY_HASHER_SECRET: "failed-hasher-secret-0123456789abcdef0123",
        PROXY_JWT_SECRET: "failed-jwt-secret-0123456789abcdef012345678",
        PROXY_LOCAL_ENCRYPTION_KEY: "0123456789abcdef0123456789abcdef",
        PROXY_ADMIN_PASSWORD_HASH: await hashPassword("x", 1000),
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Before the fix the process logged the failure as a stray rejection and stayed up: end it after a while.
    const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const out = await child.output().finally(() => clearTimeout(kill));
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, text);
    const line = text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
      .find((l) => l.level === "error");
    assert.ok(line, text);
    assert.equal(line.msg, "stopped: unexpected error");
    assert.match(line.error, /revoked_sessions/);
  },
);

/** A user and a key to replay rows of, and a spool record of theirs: `replay-<n>`, an hour old by default. */
async function replayRecords(db: Db): Promise<(n: number, createdAt?: string) => Record<string, unknown>> {
  const [u] = await db.query<{ id: string }>(
    sql`INSERT INTO users (email) VALUES ('r@example.com') RETURNING id`,
  );
  const [k] = await db.query<{ id: string }>(
    sql`INSERT INTO access_keys (user_id, key_hash, key_prefix) VALUES (${u.id}, 'h', 'ak_r') RETURNING id`,
  );
  // Recent: rows older than the retention window are refused.
  const at = new Date(Date.now() - 3600_000).toISOString();
  return (n, createdAt = at) => ({
    requestId: `replay-${n}`,
    accessKeyId: k.id,
    userId: u.id,
    messageId: null,
    model: "claude-sonnet-4-5",
    modelServed: null,
    stream: false,
    inputTokens: 10,
    outputTokens: 5,
    cacheReadInputTokens: 0,
    cacheCreationInputTokens: 0,
    provider: "anthropic",
    isFallback: false,
    fallbackReason: null,
    statusCode: 200,
    errorType: null,
    stopReason: "end_turn",
    latencyMs: 50,
    timeToFirstByteMs: 50,
    costUsd: 0.0001,
    createdAt,
  });
}

/** A spool file of `records`, one JSON line each, as the recorder writes them. */
async function spoolFile(records: Array<Record<string, unknown>>): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(path, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return path;
}

/** `main.ts replay-usage` in production with only the database set, and the image's permissions but no write. */
async function replayAsOperator(url: string, file: string): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      new URL("../main.ts", import.meta.url).pathname,
      "replay-usage",
      file,
    ],
    env: {
      PROXY_ENV: "production",
      PROXY_DATABASE_URL: url,
      PROXY_DATA_DIR: "/nonexistent/data",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

postgresTest(
  "deno task replay-usage in production needs only the database settings, and no write access anywhere",
  async (db, { url }) => {
    const record = await replayRecords(db);
    const spool = await spoolFile([record(1), record(2)]);
    const replayed = await replayAsOperator(url, spool);
    assert.equal(replayed.code, 0, replayed.text);
    assert.match(replayed.text, /2 of 2 usage rows from 1 file\(s\) written\n/);
    const rows = await db.query<{ request_id: string }>(
      sql`SELECT request_id FROM token_usages ORDER BY request_id`,
    );
    assert.deepEqual(rows.map((r) => r.request_id), ["replay-1", "replay-2"]);
  },
);

postgresTest(
  "deno task replay-usage refuses a database with pending migrations, naming migrate, and leaves it unchanged",
  async (db, { url }) => {
    const record = await replayRecords(db);
    const spool = await spoolFile([record(1)]);
    // A database no release has migrated yet.
    await db.exec("DROP SCHEMA public CASCADE");
    await db.exec("CREATE SCHEMA public");
    const refused = await replayAsOperator(url, spool);
    assert.equal(refused.code, 1, refused.text);
    assert.match(
      refused.text,
      /cannot replay: the database lacks \d+ migration\(s\) of this release \(0001_init\.sql, .*run `deno task migrate` first/,
    );
    const [{ exists }] = await db.query<{ exists: boolean }>(
      sql`SELECT to_regclass('schema_migrations') IS NOT NULL AS exists`,
    );
    assert.equal(exists, false, "replay-usage applied no migration");
  },
);

postgresTest(
  "deno task replay-usage writes rows from a spool file or exported log lines, once, and says how many",
  async (db, { url }) => {
    const record = await replayRecords(db);
    const spool = await spoolFile([record(1), record(2)]);
    const exported = await Deno.makeTempFile({ suffix: ".log" });
    await Deno.writeTextFile(
      exported,
      [2, 3].map((n) =>
        `2026-11-01T10:00:01Z ${JSON.stringify({ msg: "usage row not recorded", record: record(n) })}`
      )
        .join("\n"),
    );
    const run = async (...files: string[]) => {
      const env: Record<string, string> = {};
      if (files[0].startsWith("PROXY_")) {
        const [name, value] = files.shift()!.split("=");
        env[name] = value;
      }
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, "replay-usage", ...files],
        env: {
          PROXY_DATA_DIR: await Deno.makeTempDir({ prefix: "proxy-replay-" }),
          PROXY_DATABASE_URL: url,
          PROXY_KEY_HASHER_SECRET: "replay-hasher-secret-0123456789abcdef012",
          PROXY_JWT_SECRET: "replay-jwt-secret-0123456789abcdef01234567",
          PROXY_LOCAL_ENCRYPTION_KEY: "0123456789abcdef0123456789abcdef",
          PROXY_ADMIN_PASSWORD_HASH: await hashPassword("x", 1000),
          PROXY_LOG_LEVEL: "error",
          NO_COLOR: "1",
          ...env,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return {
        code: out.code,
        text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
      };
    };
    const first = await run(spool, exported);
    assert.equal(first.code, 0, first.text);
    assert.match(first.text, /3 of 3 usage rows from 2 file\(s\) written\n/);
    const again = await run(exported);
    assert.equal(again.code, 0, again.text);
    assert.match(
      again.text,
      /0 of 2 usage rows from 1 file\(s\) written \(2 already recorded, left as they were\)/,
    );
    const rows = await db.query<{ request_id: string }>(
      sql`SELECT request_id FROM token_usages ORDER BY request_id`,
    );
    assert.deepEqual(rows.map((r) => r.request_id), ["replay-1", "replay-2", "replay-3"]);
    const [agg] = await db.query<{ n: number }>(
      sql`SELECT request_count::int AS n FROM usage_aggregates WHERE granularity = 'day'`,
    );
    assert.equal(agg.n, 3, "aggregates counted once too");
    const missing = await run("/nonexistent/spool.jsonl");
    assert.equal(missing.code, 1);
    assert.match(missing.text, /cannot read \/nonexistent\/spool\.jsonl/);

    // A row the database refuses (a hand-edited key id) is not counted as written: exit 1, and the row is
    // printed as a line that can be fixed and replayed.
    const bad = await spoolFile([record(4), { ...record(5), accessKeyId: "xyz" }]);
    const refused = await run(bad);
    assert.equal(refused.code, 1, refused.text);
    assert.match(refused.text, /1 of 2 usage rows written; 1 refused by the database/);
    assert.match(refused.text, /"msg":"usage row not recorded".*"requestId":"replay-5"/);

    // A row older than the retention window is not written by default: retention may have deleted its row
    // while its tokens stay in the aggregates, so writing it again could count them twice.
    const old = await spoolFile([record(6, new Date(Date.now() - 91 * 86400_000).toISOString())]);
    const expired = await run(old);
    assert.equal(expired.code, 1, expired.text);
    assert.match(expired.text, /0 of 1 usage rows written; 1 older than PROXY_USAGE_RETENTION_DAYS=90/);
    assert.match(expired.text, /"msg":"usage row not recorded".*"requestId":"replay-6"/);
    const kept = async () =>
      (await db.query<{ request_id: string }>(
        sql`SELECT request_id FROM token_usages WHERE request_id = 'replay-6'`,
      ))
        .length;
    assert.equal(await kept(), 0);
    const forced = await run("PROXY_USAGE_RETENTION_DAYS=0", old);
    assert.equal(forced.code, 0, forced.text);
    assert.equal(await kept(), 1);
  },
);
