import assert from "node:assert/strict";
import { settlesWithin } from "./settles_within.ts";

Deno.test("settlesWithin answers true for a promise that resolves or rejects in time, false for one that hangs", async () => {
  assert.equal(await settlesWithin(Promise.resolve(1), 100), true);
  assert.equal(await settlesWithin(Promise.reject(new Error("x")), 100), true);
  const started = performance.now();
  assert.equal(await settlesWithin(new Promise(() => {}), 50), false);
  assert.ok(performance.now() - started < 1_000);
});
