import assert from "node:assert/strict";
import { modelPage } from "./model_page.ts";
import type { ModelInfo } from "./model_catalogue.ts";

const models: ModelInfo[] = ["a", "b", "c", "d", "e"].map((id) => ({
  type: "model",
  id,
  display_name: id,
  created_at: "1970-01-01T00:00:00Z",
}));
const ids = (q: string) => {
  const page = modelPage(models, new URLSearchParams(q));
  if ("error" in page) throw new Error(page.error);
  return [page.data.map((m) => m.id).join(""), page.has_more, page.first_id, page.last_id];
};

Deno.test("a page holds limit models from the start, after an id, or right before one", () => {
  assert.deepEqual(ids(""), ["abcde", false, "a", "e"], "20 by default");
  assert.deepEqual(ids("limit=2"), ["ab", true, "a", "b"]);
  assert.deepEqual(ids("limit=2&after_id=b"), ["cd", true, "c", "d"]);
  assert.deepEqual(ids("limit=2&after_id=d"), ["e", false, "e", "e"]);
  assert.deepEqual(ids("limit=2&before_id=d"), ["bc", true, "b", "c"]);
  assert.deepEqual(ids("limit=5&before_id=c"), ["ab", false, "a", "b"]);
  assert.deepEqual(ids("after_id=e"), ["", false, null, null], "past the end: empty, not an error");
  assert.deepEqual(ids("limit=1000"), ["abcde", false, "a", "e"]);
});

Deno.test("a bad limit or an unknown id is an error naming the parameter", () => {
  for (const q of ["limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=2.5", "limit="]) {
    const page = modelPage(models, new URLSearchParams(q));
    assert.ok("error" in page && page.error.startsWith("limit: expected a whole number from 1 to 1000"), q);
  }
  const unknown = modelPage(models, new URLSearchParams("after_id=zz"));
  assert.ok("error" in unknown && /^after_id: no model "zz"/.test(unknown.error));
  const both = modelPage(models, new URLSearchParams("after_id=a&before_id=c"));
  assert.ok("error" in both && /give one or neither/.test(both.error));
});
