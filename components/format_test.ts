import assert from "node:assert/strict";
import { fmtUsd } from "./format.ts";

Deno.test("fmtUsd shows cents from a dollar, more decimals below, and never a real cost as free", () => {
  assert.equal(fmtUsd(12.345), "$12.35");
  assert.equal(fmtUsd(0.123), "$0.123");
  assert.equal(fmtUsd(0.0042), "$0.0042");
  assert.equal(fmtUsd(0), "$0.00");
  assert.equal(fmtUsd(null), "–");
  assert.equal(fmtUsd(0.000049), "<$0.0001", "a real cost below four decimals");
  assert.equal(fmtUsd(0.00005), "$0.0001");
  // Digits chosen after rounding: no "$1.000" or "$0.0100".
  assert.equal(fmtUsd(0.99999), "$1.00");
  assert.equal(fmtUsd(0.00999), "$0.010");
});
