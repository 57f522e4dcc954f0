/**
 * Opens the configured database: postgres.js when `PROXY_DATABASE_URL` is set, embedded PGlite otherwise.
 */
import { join } from "node:path";
import type { Db } from "./db.ts";
import { openPostgres } from "./postgres.ts";

/** Opens PostgreSQL at `databaseUrl`, or PGlite under `<dataDir>/pglite` when the URL is empty. */
export async function openDb(opts: { databaseUrl: string; dataDir: string; poolSize: number }): Promise<Db> {
  if (opts.databaseUrl !== "") return openPostgres({ url: opts.databaseUrl, max: opts.poolSize });
  const dir = join(opts.dataDir, "pglite");
  await Deno.mkdir(dir, { recursive: true });
  // Loaded only when used: a PostgreSQL deployment never pays for the WASM module's memory.
  const { openPglite } = await import("./pglite.ts");
  return await openPglite({ dataDir: dir });
}
