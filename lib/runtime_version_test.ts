import assert from "node:assert/strict";
import { olderDeno, TESTED_DENO } from "./runtime_version.ts";

Deno.test("olderDeno names the tested release for any older one, compared number by number", () => {
  for (const old of ["2.9.0", "2.8.3", "2.5.0", "1.46.3", "2.9.5", "0.0.1"]) {
    assert.equal(olderDeno(old), TESTED_DENO, old);
  }
  for (const recent of ["2.9.6", "2.9.10", "2.10.0", "2.10.0-rc.1", "3.0.0"]) {
    assert.equal(olderDeno(recent), null, recent);
  }
});

Deno.test("olderDeno treats a version it cannot read as older: the warning is the safe side", () => {
  assert.equal(olderDeno("canary"), TESTED_DENO);
  assert.equal(olderDeno(""), TESTED_DENO);
});

Deno.test("the tested release is the one the image pins", async () => {
  const dockerfile = await Deno.readTextFile(new URL("../Dockerfile", import.meta.url));
  assert.match(dockerfile, new RegExp(`^ARG DENO_VERSION=${TESTED_DENO.replaceAll(".", "\\.")}$`, "m"));
});
