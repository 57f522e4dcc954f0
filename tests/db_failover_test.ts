/**
 * A database failover seen from the pool: connections the network black-holes (held open, nothing answered),
 * while new connections reach the database again. Only `recycle()` frees them; the usage recorder calls it
 * when a flush outlives its write timeout.
 */
import assert from "node:assert/strict";
import { postgresTest } from "./helpers/db.ts";
import { openPostgres } from "../lib/db/postgres.ts";
import { sql } from "../lib/db/sql.ts";

/** A TCP forwarder to `target` whose connections so far can be black-holed: read from, never answered. */
function forwarder(target: { hostname: string; port: number }) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const links: Array<{ sockets: Deno.Conn[]; dead: boolean }> = [];
  const pump = async (from: Deno.Conn, to: Deno.Conn, link: { dead: boolean }) => {
    const buf = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        if (!link.dead) await to.write(buf.subarray(0, n));
      }
    } catch { /* closed */ }
  };
  (async () => {
    for await (const client of listener) {
      const upstream = await Deno.connect(target);
      const link = { sockets: [client, upstream], dead: false };
      links.push(link);
      void pump(client, upstream, link);
      void pump(upstream, client, link);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    blackHoleAll: () => links.forEach((l) => (l.dead = true)),
    close: () => {
      listener.close();
      for (const l of links) for (const s of l.sockets) s.close();
    },
  };
}

postgresTest(
  "recycle() frees connections a failover black-holed: the stalled transaction fails at once, new queries run",
  async (_db, { url }) => {
    const target = new URL(url);
    const fwd = forwarder({ hostname: target.hostname, port: Number(target.port || 5432) });
    const through = new URL(url);
    through.hostname = "127.0.0.1";
    through.port = String(fwd.port);
    const pool = openPostgres({ url: through.toString(), max: 2 });
    try {
      assert.deepEqual([...await pool.query(sql`SELECT 1 AS n`)], [{ n: 1 }]);
      fwd.blackHoleAll();
      const stuck = pool.begin((tx) => tx.query(sql`SELECT 2 AS n`)).then(() => "answered", () => "failed");
      const early = await Promise.race([stuck, new Promise((r) => setTimeout(() => r("stalled"), 500))]);
      assert.equal(early, "stalled", "a black-holed connection neither answers nor fails");
      pool.recycle();
      assert.equal(await stuck, "failed", "its transaction fails once the pool lets it go");
      assert.deepEqual([...await pool.query(sql`SELECT 3 AS n`)], [{ n: 3 }], "a fresh connection answers");
    } finally {
      await pool.close();
      fwd.close();
    }
  },
);
