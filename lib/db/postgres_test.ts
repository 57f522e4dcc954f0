import assert from "node:assert/strict";
import { openPostgres, tlsFailureHint } from "./postgres.ts";
import { sql } from "./sql.ts";

Deno.test("an sslmode the connection does not support is refused, not read as no TLS", () => {
  for (const mode of ["verify-ca", "allow", "requir"]) {
    assert.throws(
      () => openPostgres({ url: `postgres://u@db.invalid:5432/proxy?sslmode=${mode}` }),
      new RegExp(`sslmode=${mode} is not supported; expected disable, prefer, require or verify-full`),
    );
  }
});

Deno.test("another driver's ssl= parameter is refused, not ignored", () => {
  for (const v of ["true", "require"]) {
    assert.throws(
      () => openPostgres({ url: `postgres://u@db.invalid:5432/proxy?ssl=${v}` }),
      /ssl= is not read .*; expected sslmode=require or verify-full/,
    );
  }
});

Deno.test("the supported sslmodes open a pool without connecting yet", async () => {
  for (const mode of ["disable", "prefer", "require", "verify-full"]) {
    const db = openPostgres({ url: `postgres://u@db.invalid:5432/proxy?sslmode=${mode}` });
    assert.equal(db.kind, "postgres");
    await db.close();
  }
});

/** A server that answers PostgreSQL's SSLRequest with "N" (no TLS here), as one with ssl = off does. */
function serverWithoutTls(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const request = new Uint8Array(8);
        await conn.read(request).catch(() => null);
        await conn.write(new TextEncoder().encode("N")).catch(() => 0);
        // Wait for the client to give up; it may also close the connection first.
        await conn.read(new Uint8Array(1024)).catch(() => null);
        try {
          conn.close();
        } catch { /* closed by the client */ }
      })();
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

Deno.test("a server with TLS off, asked for it, is named as such, with the setting to change", async () => {
  const server = serverWithoutTls();
  try {
    for (const mode of ["require", "verify-full"]) {
      const url = `postgres://u@127.0.0.1:${server.port}/proxy?sslmode=${mode}`;
      const db = openPostgres({ url, max: 1 });
      const error = await db.query(sql`SELECT 1`).then(() => null, (e: unknown) => e);
      await db.close();
      assert.ok(error, `sslmode=${mode} against a server without TLS must fail`);
      assert.match(
        tlsFailureHint(url, error) ?? "",
        new RegExp(`^the server did not set up TLS: sslmode=${mode} needs a PostgreSQL server with TLS on`),
      );
    }
  } finally {
    server.close();
  }
});

Deno.test("other connection failures, and modes that ask for no TLS, get no TLS hint", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close(); // nothing listens there now: connection refused
  const url = `postgres://u@127.0.0.1:${port}/proxy?sslmode=require`;
  const db = openPostgres({ url, max: 1 });
  const refused = await db.query(sql`SELECT 1`).then(() => null, (e: unknown) => e);
  await db.close();
  assert.ok(refused);
  assert.equal(tlsFailureHint(url, refused), null);
  const tlsError = new Error(
    "Client network socket disconnected before secure TLS connection was established",
  );
  assert.equal(tlsFailureHint("postgres://u@db/proxy?sslmode=prefer", tlsError), null);
  assert.equal(tlsFailureHint("postgres://u@db/proxy", tlsError), null);
  assert.match(
    tlsFailureHint("postgres://u@db/proxy?sslmode=verify-full", new Error("wrap", { cause: tlsError })) ?? "",
    /did not set up TLS/,
    "the cause is followed",
  );
});
