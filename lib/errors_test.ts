import assert from "node:assert/strict";
import { databaseLoginRefused, isDatabaseUnavailable } from "./errors.ts";

const coded = (code: string, message = code) => Object.assign(new Error(message), { code });

Deno.test("a database that cannot be reached is told apart from a statement it refused and from a bug", () => {
  const unavailable: Array<[string, unknown]> = [
    [
      "connection refused (postgres.js, server stopped)",
      coded("ECONNREFUSED", "connect ECONNREFUSED 10.0.0.5:5432"),
    ],
    ["connection closed under a query", coded("CONNECTION_CLOSED", "write CONNECTION_CLOSED 10.0.0.5:5432")],
    ["pool ended", coded("CONNECTION_ENDED")],
    ["connect timed out", coded("CONNECT_TIMEOUT")],
    ["host name not resolved", coded("ENOTFOUND")],
    [
      "server stopping: admin_shutdown",
      coded("57P01", "terminating connection due to administrator command"),
    ],
    ["server starting up: cannot_connect_now", coded("57P03", "the database system is starting up")],
    ["connection failure (SQLSTATE class 08)", coded("08006")],
    ["every connection slot taken", coded("53300", "sorry, too many clients already")],
    ["the role's connection limit", coded("53300", 'too many connections for role "proxy_app"')],
    [
      "a database that takes no connections",
      coded("55000", 'database "proxy" is not currently accepting connections'),
    ],
    ["embedded database closed", new Error("database is closed")],
    ["PGlite closed", new Error("PGlite is closed")],
    ["wrapped", new Error("reading users failed", { cause: coded("ECONNRESET") })],
  ];
  for (const [what, e] of unavailable) assert.equal(isDatabaseUnavailable(e), true, what);

  const other: Array<[string, unknown]> = [
    ["unique violation", coded("23505", "duplicate key value violates unique constraint")],
    ["syntax error", coded("42601")],
    ["a statement in the wrong state (same SQLSTATE, another meaning)", coded("55000", "cannot refresh")],
    ["disk full on a write: the database is there", coded("53100", "could not extend file")],
    ["a bug", new TypeError("Cannot read properties of undefined (reading 'id')")],
    [
      "a message that only mentions a closed database",
      new Error("the database is closed for repairs, said a user"),
    ],
    ["not an error", "ECONNREFUSED"],
    ["nothing", undefined],
  ];
  for (const [what, e] of other) assert.equal(isDatabaseUnavailable(e), false, what);
});

Deno.test("a database that refuses the proxy's login is an outage, told apart by its SQLSTATE", () => {
  const refused: Array<[string, unknown, string]> = [
    [
      "a password being rotated",
      coded("28P01", 'password authentication failed for user "proxy_app"'),
      "28P01",
    ],
    ["a role set NOLOGIN", coded("28000", 'role "proxy_app" is not permitted to log in'), "28000"],
    ["wrapped", new Error("reading users failed", { cause: coded("28P01") }), "28P01"],
  ];
  for (const [what, e, code] of refused) {
    assert.equal(isDatabaseUnavailable(e), true, what);
    assert.equal(databaseLoginRefused(e), code, what);
  }
  for (const e of [coded("ECONNREFUSED"), coded("57P01"), coded("42501", "permission denied"), undefined]) {
    assert.equal(databaseLoginRefused(e), null, String((e as { code?: string })?.code));
  }
});
