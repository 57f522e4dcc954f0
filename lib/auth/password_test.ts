import assert from "node:assert/strict";
import { hashPassword, isLegacySha256, PBKDF2_ITERATIONS, verifyPassword } from "./password.ts";

Deno.test("a PBKDF2 hash is salted, self-describing and verifies only its password", async () => {
  const a = await hashPassword("correct horse battery");
  const b = await hashPassword("correct horse battery");
  assert.notEqual(a, b, "fresh salt each time");
  assert.match(a, new RegExp(`^pbkdf2-sha256\\$${PBKDF2_ITERATIONS}\\$[\\w-]{22}\\$[\\w-]{43}$`));
  assert.equal(await verifyPassword("correct horse battery", a), true);
  assert.equal(await verifyPassword("correct horse batterY", a), false);
});

Deno.test("the seed's bare SHA-256 hash is accepted and flagged as legacy", async () => {
  const adminSha = "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918";
  assert.equal(isLegacySha256(adminSha), true);
  assert.equal(await verifyPassword("admin", adminSha), true);
  assert.equal(await verifyPassword("admin", adminSha.toUpperCase()), true);
  assert.equal(await verifyPassword("admin2", adminSha), false);
});

Deno.test("an unrecognised stored format never matches", async () => {
  assert.equal(await verifyPassword("x", "x"), false);
  assert.equal(await verifyPassword("x", "pbkdf2-sha256$0$AA$AA"), false);
});
