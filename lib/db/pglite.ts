/**
 * {@link Db} over PGlite (PostgreSQL compiled to WASM), in-process: the embedded default with no database server.
 *
 * PGlite has a single backend, so it serialises statements itself; transactions hold it exclusively. Its
 * socket server is deliberately not used (see DESIGN.md: shared session state, LISTEN never fires).
 */
import { PGlite } from "@electric-sql/pglite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Db, Queryable, Row } from "./db.ts";
import type { SqlFragment } from "./sql.ts";

/** Options for {@link openPglite}. */
export interface PgliteOptions {
  /** Directory for the database files; omit for in-memory. */
  dataDir?: string;
  /** A tarball from `dumpDataDir()` to start from (tests start each case from a migrated copy). */
  loadDataDir?: Blob | File;
}

/**
 * Creating a database (initdb) grows PGlite's WebAssembly memory to about 700 MB, which it never gives back.
 * Done in a worker that then ends, the process keeps only what opening an existing database needs (~300 MB).
 */
async function createInWorker(dataDir: string): Promise<void> {
  const worker = new Worker(new URL("./pglite_init_worker.ts", import.meta.url).href, { type: "module" });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<string>) =>
        e.data === "done"
          ? resolve()
          : reject(new Error(`cannot create the embedded database in ${dataDir}: ${e.data}`));
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`cannot create the embedded database in ${dataDir}: ${e.message}`));
      };
      worker.postMessage(dataDir);
    });
  } finally {
    worker.terminate();
  }
}

const parsers = {
  20: (v: string) => Number(v),
  1700: (v: string) => Number(v),
};

/** Opens (and creates when missing) an embedded database. */
export async function openPglite(opts: PgliteOptions = {}): Promise<Db & { raw: PGlite }> {
  if (opts.dataDir && !opts.loadDataDir && !existsSync(join(opts.dataDir, "PG_VERSION"))) {
    await createInWorker(opts.dataDir);
  }
  const pg = await PGlite.create(opts.dataDir, { loadDataDir: opts.loadDataDir, parsers });
  let closed = false;

  const run = async <T>(q: Pick<PGlite, "query">, f: SqlFragment): Promise<T[]> => {
    const { text, values } = f.build();
    const result = await q.query<T>(text, values);
    return result.rows;
  };

  return {
    kind: "pglite",
    raw: pg,
    get closed() {
      return closed;
    },
    query: <T = Row>(f: SqlFragment) => {
      if (closed) return Promise.reject(new Error("database is closed"));
      return run<T>(pg, f);
    },
    begin<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      if (closed) return Promise.reject(new Error("database is closed"));
      return pg.transaction((tx) =>
        fn({
          query: <U = Row>(f: SqlFragment) => run<U>(tx, f),
          exec: async (text: string) => {
            await tx.exec(text);
          },
        })
      );
    },
    async exec(text) {
      if (closed) throw new Error("database is closed");
      await pg.exec(text);
    },
    async listen(channel, onPayload) {
      const unlisten = await pg.listen(channel, onPayload);
      return async () => {
        if (!closed) await unlisten();
      };
    },
    async ping() {
      if (closed) throw new Error("database is closed");
      await pg.query("SELECT 1");
    },
    recycle() {
      // In process: no connection to go stale.
    },
    async close() {
      if (closed) return;
      closed = true;
      await pg.close();
    },
  };
}
