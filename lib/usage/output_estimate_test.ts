import assert from "node:assert/strict";
import { estimatedOutputTokens } from "./output_estimate.ts";

Deno.test("an estimate counts 4 characters a token, any started token whole, and nothing relayed as 0", () => {
  assert.equal(estimatedOutputTokens(0), 0);
  assert.equal(estimatedOutputTokens(1), 1);
  assert.equal(estimatedOutputTokens(400), 100);
  assert.equal(estimatedOutputTokens(401), 101);
});
