import assert from "node:assert/strict";
import { healthRoutes } from "./health.ts";
import { openPglite } from "../lib/db/pglite.ts";

Deno.test({
  name: "health answers ok; ready turns 503 when the database is closed",
  sanitizeResources: false,
  async fn() {
    const db = await openPglite();
    const app = healthRoutes({ db });
    const health = await app.request("/health");
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });
    assert.equal((await app.request("/ready")).status, 200);
    await db.close();
    const ready = await app.request("/ready");
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { status: "not_ready", database: "down" });
    assert.equal((await app.request("/health")).status, 200, "liveness does not depend on the database");
  },
});
