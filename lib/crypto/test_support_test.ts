import assert from "node:assert/strict";
import { assertNoSecrets, containsBytes, flipByte } from "./test_support.ts";

Deno.test("assertNoSecrets catches a secret leaked as text, hex or base64", () => {
  const key = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02]);
  assert.throws(() => assertNoSecrets(new Error("key is deadbeef0102"), [key]));
  assert.throws(() => assertNoSecrets(new Error(`key is ${btoa("\xde\xad\xbe\xef\x01\x02")}`), [key]));
  assert.throws(() => assertNoSecrets(new Error("secret: hunter2"), ["hunter2"]));
  const withField = Object.assign(new Error("fine"), { detail: "hunter2" });
  assert.throws(() => assertNoSecrets(withField, ["hunter2"]));
  assertNoSecrets(new Error("nothing to see"), [key, "hunter2"]);
});

Deno.test("flipByte changes exactly one byte of a copy", () => {
  const bytes = new Uint8Array([1, 2, 3]);
  const flipped = flipByte(bytes, -1);
  assert.deepEqual(bytes, new Uint8Array([1, 2, 3]));
  assert.deepEqual(flipped, new Uint8Array([1, 2, 2]));
  assert.ok(containsBytes(new Uint8Array([9, 1, 2, 3]), bytes));
  assert.ok(!containsBytes(new Uint8Array([9, 1, 2]), bytes));
});
