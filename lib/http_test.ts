import assert from "node:assert/strict";
import { hasDotSegment } from "./http.ts";

Deno.test("dot segments are found plain or percent-encoded; dots inside a segment are not segments", () => {
  for (
    const path of ["/v1/x/../messages", "/v1/x/%2e%2e/messages", "/v1/%2E./m", "/v1/./m", "/admin/..", "."]
  ) {
    assert.equal(hasDotSegment(path), true, path);
  }
  for (const path of ["/v1/messages", "/v1/messages.json", "/v1/.../x", "/v1/..x/y", "/a.b/c"]) {
    assert.equal(hasDotSegment(path), false, path);
  }
});
