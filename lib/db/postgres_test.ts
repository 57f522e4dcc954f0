import assert from "node:assert/strict";
import { openPostgres } from "./postgres.ts";

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
