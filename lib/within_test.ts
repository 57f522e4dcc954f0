import assert from "node:assert/strict";
import { TimedOut, within } from "./within.ts";

Deno.test("within passes on what settles in time and rejects with TimedOut, naming the wait, when it does not", async () => {
  assert.equal(await within(1_000, Promise.resolve(7)), 7);
  await assert.rejects(() => within(1_000, Promise.reject(new Error("refused"))), /refused/);
  let release!: () => void;
  const stalled = new Promise<void>((r) => release = r);
  await assert.rejects(
    () => within(20, stalled, "key lookup"),
    (e: Error) => e instanceof TimedOut && e.message === "key lookup: still waiting after 20 ms",
  );
  release();
});
