/**
 * The admin API and console with the database stopped, on both backends, through `app.request()`: a retryable 503
 * saying the database is unreachable (JSON on the API, a page on the console) and a warning in the log, while
 * any other failure stays a 500 logged as an error.
 *
 * PostgreSQL is stopped as the app sees it: the app reaches it through a TCP relay that is then shut, so the
 * driver fails as it does when the server goes away (open connections closed, new ones refused). The embedded
 * database has no server; it becomes unavailable only when closed.
 */
import assert from "node:assert/strict";
import { dbTest } from "./helpers/db.ts";
import { type ConsoleTest, makeConsoleApp, text } from "./helpers/console.ts";
import { openPostgres } from "../lib/db/postgres.ts";
import { sql } from "../lib/db/sql.ts";
import type { Db, Queryable } from "../lib/db/db.ts";
import { DATABASE_RETRY_AFTER_SECONDS } from "../lib/errors.ts";

/** A TCP relay to `target`; `stop` closes it and every connection through it, `start` listens again (same port). */
function tcpRelay(target: { hostname: string; port: number }) {
  const conns = new Set<Deno.Conn>();
  let listener: Deno.Listener | null = null;
  let port = 0;
  const start = () => {
    if (listener) return;
    const l = listener = Deno.listen({ hostname: "127.0.0.1", port });
    port = (l.addr as Deno.NetAddr).port;
    (async () => {
      for await (const client of l) {
        const server = await Deno.connect(target).catch(() => null);
        if (!server) {
          client.close();
          continue;
        }
        conns.add(client).add(server);
        client.readable.pipeTo(server.writable).catch(() => {});
        server.readable.pipeTo(client.writable).catch(() => {});
      }
    })().catch(() => {});
  };
  start();
  return {
    port,
    start,
    stop() {
      listener?.close();
      listener = null;
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed by its pipe */ }
      }
      conns.clear();
    },
  };
}

/** The database the app is given, and how to stop it (and, on PostgreSQL, start it again). */
function stoppable(db: Db, url: string): { db: Db; stop(): void; restart?(): void; close(): Promise<void> } {
  if (db.kind === "pglite") return { db, stop: () => void db.close(), close: () => db.close() };
  const target = new URL(url);
  const relay = tcpRelay({ hostname: target.hostname, port: Number(target.port || 5432) });
  const through = new URL(url);
  through.hostname = "127.0.0.1";
  through.port = String(relay.port);
  const appDb = openPostgres({ url: through.toString(), max: 3 });
  return {
    db: appDb,
    stop: () => relay.stop(),
    restart: () => relay.start(),
    close: async () => {
      // Back up first: a pool ending while the database is unreachable waits out its timeout.
      relay.start();
      await appDb.close();
      relay.stop();
    },
  };
}

/** Runs `fn` with the console app over a database that `stop()` takes away. */
function outageTest(
  name: string,
  fn: (c: ConsoleTest, database: ReturnType<typeof stoppable>) => Promise<void>,
) {
  dbTest(name, async (db, ctx) => {
    const database = stoppable(db, ctx.url);
    try {
      await fn(await makeConsoleApp(database.db), database);
    } finally {
      await database.close();
    }
  });
}

function logLines(c: ConsoleTest): Array<{ level: string; msg: string }> {
  return c.t.logs.map((l) => JSON.parse(l));
}

/** Each line of `c`'s log about an outage is a warning, and none says "unhandled error" or "console error". */
function assertOutageLogged(c: ConsoleTest, expected: number): void {
  const lines = logLines(c);
  assert.deepEqual(
    lines.filter((l) => l.msg === "unhandled error" || l.msg === "console error"),
    [],
    "an outage is not logged as a bug",
  );
  const warnings = lines.filter((l) => l.msg === "database unreachable; answered 503");
  assert.equal(warnings.length, expected);
  assert.ok(warnings.every((l) => l.level === "warn"));
}

// Each backs off between connection attempts a little longer (postgres.js), so each test makes few of them.
outageTest(
  "with the database stopped, the API answers a retryable 503 saying the database is unreachable",
  async (c, database) => {
    const h = await c.t.auth();
    assert.equal((await c.t.call("POST", "/api/users", { email: "before@example.com" }, h)).status, 201);

    database.stop();
    for (
      const [method, path, body] of [
        ["GET", "/api/users", undefined],
        ["POST", "/api/users", { email: "during@example.com" }],
        ["GET", "/api/usage", undefined],
      ] as const
    ) {
      const res = await c.t.call(method, path, body, h);
      const what = `${method} ${path}: ${JSON.stringify(res.body)}`;
      assert.equal(res.status, 503, what);
      assert.equal(res.body.error.type, "api_error", what);
      assert.match(res.body.error.message, /^database unreachable: .*; retry in/, what);
      assert.equal(res.headers.get("retry-after"), String(DATABASE_RETRY_AFTER_SECONDS), what);
    }
    assertOutageLogged(c, 3);

    if (database.restart) {
      database.restart();
      const retried = await c.t.call("POST", "/api/users", { email: "during@example.com" }, h);
      assert.equal(retried.status, 201, "the same request succeeds once the database is back");
    }
  },
);

outageTest(
  "with the database stopped, a console page says the database is unreachable and to try again",
  async (c, database) => {
    await c.signIn();
    assert.equal((await c.get("/admin/users")).status, 200);

    database.stop();
    const page = await c.get("/admin/users?q=dev");
    assert.equal(page.status, 503);
    assert.equal(page.headers.get("retry-after"), String(DATABASE_RETRY_AFTER_SECONDS));
    assert.match(text(page.html), /Database unreachable/);
    assert.match(text(page.html), /cannot reach its database right now, so this page could not be shown/);
    assert.match(page.html, /href="\/admin\/users\?q=dev"[^>]*>Try again/, "a way to retry the same page");
    assert.doesNotMatch(text(page.html), /Something went wrong/);

    const change = await c.post("/admin/users", {
      email: "during@example.com",
      routing_strategy: "plan_first",
    });
    assert.equal(change.status, 503);
    assert.match(text(change.html), /this change could not be completed/);
    assertOutageLogged(c, 2);
  },
);

dbTest("a database error that is not an outage stays a 500 logged as an error", async (db) => {
  // A statement the server refuses (here: a syntax error) is a bug to look into, not something to retry.
  const refusing: Db = {
    ...db,
    kind: db.kind,
    closed: db.closed,
    query: <T>(f: Parameters<Queryable["query"]>[0]) =>
      f.build().text.includes("FROM users")
        ? Promise.reject(Object.assign(new Error('syntax error at or near "FORM"'), { code: "42601" }))
        : db.query<T>(f),
  };
  const c = await makeConsoleApp(refusing);
  const h = await c.t.auth();
  const res = await c.t.call("GET", "/api/users", undefined, h);
  assert.equal(res.status, 500);
  assert.deepEqual(res.body, {
    error: { type: "api_error", message: "internal error; see the proxy's logs" },
  });
  assert.equal(res.headers.get("retry-after"), null);
  await c.signIn();
  const page = await c.get("/admin/users");
  assert.equal(page.status, 500);
  assert.match(text(page.html), /Something went wrong/);
  assert.ok(c.t.logs.some((l) => l.includes('"unhandled error"')));
  assert.ok(c.t.logs.some((l) => l.includes('"console error"')));
});

dbTest(
  "a database that refuses the proxy's login is an outage: a retryable 503, logged as an error with its code",
  async (db, ctx) => {
    // The server's own answer where there is a server: a role that may not log in (ALTER ROLE … NOLOGIN), as
    // PostgreSQL says it even under trust authentication. The embedded database has no logins: its error as
    // postgres.js gives it for a password being rotated.
    let refusal: unknown = Object.assign(new Error('password authentication failed for user "proxy_app"'), {
      code: "28P01",
    });
    const password = "not-the-password-0123456789";
    if (ctx.backend === "postgres") {
      const role = `proxy_nologin_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
      await db.exec(`CREATE ROLE ${role} NOLOGIN`);
      try {
        const url = new URL(ctx.url);
        url.username = role;
        url.password = password;
        const as = openPostgres({ url: url.toString(), max: 1 });
        refusal = await as.query(sql`SELECT 1`).then(() => null, (e) => e);
        await as.close();
      } finally {
        await db.exec(`DROP ROLE ${role}`);
      }
      assert.equal((refusal as { code?: string })?.code, "28000", String(refusal));
    }
    let refusing = false;
    const refusable: Db = {
      ...db,
      kind: db.kind,
      closed: db.closed,
      query: <T>(f: Parameters<Queryable["query"]>[0]) => refusing ? Promise.reject(refusal) : db.query<T>(f),
      begin: ((fn: Parameters<Db["begin"]>[0]) => refusing ? Promise.reject(refusal) : db.begin(fn)) as Db[
        "begin"
      ],
    };
    const c = await makeConsoleApp(refusable);
    const h = await c.t.auth();
    await c.signIn();
    refusing = true;
    const res = await c.t.call("GET", "/api/users", undefined, h);
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.headers.get("retry-after"), String(DATABASE_RETRY_AFTER_SECONDS));
    const page = await c.get("/admin/users");
    assert.equal(page.status, 503);
    assert.match(text(page.html), /Database unreachable/);
    const lines = logLines(c).filter((l) => l.msg === "database refused the proxy's login; answered 503");
    assert.equal(lines.length, 2, c.t.logs.join("\n"));
    const code = (refusal as { code: string }).code;
    for (const l of lines) {
      assert.equal(l.level, "error");
      assert.equal((l as unknown as { code: string }).code, code);
    }
    assert.ok(!c.t.logs.some((l) => l.includes('"unhandled error"')), "not logged as a bug");
    assert.ok(!c.t.logs.some((l) => l.includes(password)), "the password never appears");
  },
);
