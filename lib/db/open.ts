/**
 * Opens the configured database: postgres.js when `PROXY_DATABASE_URL` is set, embedded PGlite otherwise.
 */
import { join } from "node:path";
import type { Db } from "./db.ts";
import { openPostgres } from "./postgres.ts";
import { settlesWithin } from "../settles_within.ts";

/**
 * Opens PostgreSQL at `databaseUrl`, or PGlite under `<dataDir>/pglite` when the URL is empty. The embedded
 * database is one process's: a second (another server, or `deno task migrate` / `replay-usage` beside a running
 * one) would write the same files unseen by the first, so it is refused while a lock file is held.
 */
export async function openDb(opts: { databaseUrl: string; dataDir: string; poolSize: number }): Promise<Db> {
  if (opts.databaseUrl !== "") return openPostgres({ url: opts.databaseUrl, max: opts.poolSize });
  const dir = join(opts.dataDir, "pglite");
  // PGlite writes its files readable and writable by everyone (0666 under the usual umask), and they hold key
  // hashes, sealed Bedrock credentials and the audit log: the directory is the owner's alone, as PostgreSQL
  // demands of its own. Also for one made by an earlier version.
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  if (Deno.build.os !== "windows") await Deno.chmod(dir, 0o700);
  const lock = await lockEmbedded(join(opts.dataDir, "pglite.lock"), dir);
  try {
    // Loaded only when used: a PostgreSQL deployment never pays for the WASM module's memory.
    const { openPglite } = await import("./pglite.ts");
    const db = await openPglite({ dataDir: dir });
    const close = db.close.bind(db);
    db.close = async () => {
      try {
        await close();
      } finally {
        lock.close();
      }
    };
    return db;
  } catch (e) {
    lock.close();
    throw e;
  }
}

/** Takes the embedded database's lock (released when the file is closed, or the process ends). */
async function lockEmbedded(path: string, dir: string): Promise<Deno.FsFile> {
  const file = await Deno.open(path, { create: true, read: true, write: true });
  const locking = file.lock(true);
  if (!await settlesWithin(locking, 1_000)) {
    let holder = "";
    try {
      const pid = (await Deno.readTextFile(path)).trim();
      if (/^\d+$/.test(pid)) holder = ` (process ${pid})`;
    } catch { /* unreadable: named without its pid */ }
    file.close();
    throw new Error(
      `the embedded database under ${dir} is in use by another process${holder}; stop it first ` +
        "(one process per PROXY_DATA_DIR), or use PostgreSQL (PROXY_DATABASE_URL)",
    );
  }
  await locking;
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  return file;
}
