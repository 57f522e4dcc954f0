import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { openPglite } from "./pglite.ts";
import { openDb } from "./open.ts";
import { sql } from "./sql.ts";

Deno.test("a new embedded database is created (in a worker) and keeps its data across opens", async () => {
  const dir = `${await Deno.makeTempDir()}/db`;
  const first = await openPglite({ dataDir: dir });
  try {
    assert.ok(existsSync(`${dir}/PG_VERSION`), "initdb ran");
    await first.exec("CREATE TABLE t (v int); INSERT INTO t VALUES (7)");
  } finally {
    await first.close();
  }
  const again = await openPglite({ dataDir: dir });
  try {
    assert.deepEqual(await again.query<{ v: number }>(sql`SELECT v FROM t`), [{ v: 7 }]);
  } finally {
    await again.close();
  }
});

Deno.test("a data directory that cannot be created is refused with a message naming it", async () => {
  const file = await Deno.makeTempFile();
  await assert.rejects(
    openPglite({ dataDir: `${file}/db` }),
    new RegExp(`cannot create the embedded database in ${file}`),
  );
});

Deno.test({
  name: "the embedded database is one process's: a second opener is refused while the first holds it",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pglite-lock-" });
  const first = await openDb({ databaseUrl: "", dataDir, poolSize: 1 });
  try {
    await assert.rejects(
      openDb({ databaseUrl: "", dataDir, poolSize: 1 }),
      new RegExp(`in use by another process \\(process ${Deno.pid}\\); stop it first`),
    );
  } finally {
    await first.close();
  }
  const again = await openDb({ databaseUrl: "", dataDir, poolSize: 1 });
  await again.close();
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test({
  name: "the embedded database's directory is its owner's alone, also one an earlier version left open",
  ignore: Deno.build.os === "windows",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "pglite-mode-" });
  await Deno.mkdir(`${dataDir}/pglite`, { mode: 0o777 });
  await Deno.chmod(`${dataDir}/pglite`, 0o777);
  const db = await openDb({ databaseUrl: "", dataDir, poolSize: 1 });
  try {
    assert.equal((await Deno.stat(`${dataDir}/pglite`)).mode! & 0o777, 0o700);
  } finally {
    await db.close();
  }
  await Deno.remove(dataDir, { recursive: true });
});
