import assert from "node:assert/strict";
import { MAX_TOKEN_COUNT, tokenCount } from "./token_count.ts";

Deno.test("whole, non-negative counts a column holds are counts", () => {
  for (const n of [0, 1, 1234, MAX_TOKEN_COUNT]) assert.equal(tokenCount(n), n);
});

Deno.test("anything else is no count: fractions, negatives, huge or infinite numbers, other types", () => {
  for (const v of [1.5, -1, MAX_TOKEN_COUNT + 1, 1e300, Infinity, NaN, "12", null, undefined, {}]) {
    assert.equal(tokenCount(v), undefined, String(v));
  }
});
