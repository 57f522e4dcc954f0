/**
 * The database connection over TLS, against a real PostgreSQL server with TLS on: a throw-away cluster on its own
 * port, with a certificate for localhost signed by a throw-away CA (`bench/certificates.ts`). The machine's own
 * server has TLS off, and RDS enforces it, so this is the only place the encrypted paths are exercised. It needs
 * the PostgreSQL server binaries, openssl, and root (to run the cluster as the postgres user); without them it is
 * skipped, saying why.
 */
import assert from "node:assert/strict";
import { makeCertificates } from "../bench/certificates.ts";
import { openPostgres, RDS_CERTIFICATES, tlsFailureHint, tlsOptions } from "../lib/db/postgres.ts";
import { sql } from "../lib/db/sql.ts";

const PG_BIN = await (async () => {
  try {
    for await (const e of Deno.readDir("/usr/lib/postgresql")) {
      const bin = `/usr/lib/postgresql/${e.name}/bin`;
      if (await Deno.stat(`${bin}/initdb`).then(() => true, () => false)) return bin;
    }
  } catch { /* no server binaries */ }
  return null;
})();
const isRoot = Deno.uid() === 0;
const skipWhy = PG_BIN === null ? "no PostgreSQL server binaries" : !isRoot ? "not root" : null;
if (skipWhy) console.warn(`db_tls_test skipped: ${skipWhy}`);

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A PostgreSQL cluster with TLS on, on a free port, its certificate naming localhost only; `stop` removes it. */
async function startTlsPostgres(): Promise<{ port: number; ca: string; stop(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "tls-pg-" });
  const certs = await makeCertificates(dir, "DNS:localhost");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await run("chown", ["-R", "postgres", dir]);
  await Deno.chmod(certs.key, 0o600);
  const data = `${dir}/data`;
  const asPostgres = (bin: string, args: string[]) =>
    run("runuser", ["-u", "postgres", "--", `${PG_BIN}/${bin}`, ...args]);
  await asPostgres("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  await asPostgres("pg_ctl", [
    "-D",
    data,
    "-l",
    `${dir}/log`,
    "-w",
    "-o",
    `-p ${port} -k ${dir} -c listen_addresses=localhost -c ssl=on -c ssl_cert_file=${certs.cert} ` +
    `-c ssl_key_file=${certs.key} -c fsync=off`,
    "start",
  ]);
  return {
    port,
    ca: certs.ca,
    async stop() {
      await asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "stop"]).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Whether a query over `url` ran encrypted, or the error it failed with. */
async function tlsOf(url: string): Promise<boolean | string> {
  const db = openPostgres({ url, max: 1 });
  try {
    const [row] = await db.query<{ ssl: boolean }>(
      sql`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`,
    );
    return row.ssl;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await db.close();
  }
}

Deno.test({
  name:
    "over TLS: require encrypts; verify-full checks the certificate against the CA given and the host name " +
    "(an IP address too); the bundled RDS CAs and Node's own refuse a certificate they did not sign",
  ignore: skipWhy !== null,
  async fn() {
    const pg = await startTlsPostgres();
    try {
      const at = (host: string, query: string) =>
        tlsOf(`postgres://postgres@${host}:${pg.port}/postgres?${query}`);
      const ca = `sslmode=verify-full&sslrootcert=${encodeURIComponent(pg.ca)}`;
      assert.equal(await at("localhost", "sslmode=require"), true);
      assert.equal(await at("127.0.0.1", "sslmode=require"), true, "require checks nothing");
      assert.equal(await at("localhost", ca), true);
      // The certificate names localhost, not 127.0.0.1: postgres.js alone would check an IP host as "localhost".
      assert.match(String(await at("127.0.0.1", ca)), /127\.0\.0\.1/);
      assert.match(String(await at("localhost", "sslmode=verify-full&sslrootcert=rds")), /certificate/);
      assert.match(String(await at("localhost", "sslmode=verify-full")), /certificate/);
      assert.equal(await at("localhost", "sslmode=disable"), false, "the server takes plain connections too");
      // A certificate refused is named as such at start-up, with the setting to look at.
      const unsigned =
        `postgres://postgres@localhost:${pg.port}/postgres?sslmode=verify-full&sslrootcert=rds`;
      const db = openPostgres({ url: unsigned, max: 1 });
      const refused = await db.query(sql`SELECT 1`).then(() => null, (e: unknown) => e);
      await db.close();
      assert.match(
        tlsFailureHint(unsigned, refused) ?? "",
        /^the server's certificate was not accepted: .*sslrootcert/,
      );
    } finally {
      await pg.stop();
    }
  },
});

Deno.test("sslrootcert: rds is Amazon RDS's CAs; a file is read; with a mode that does not verify, refused", async () => {
  assert.ok(RDS_CERTIFICATES.length >= 100, `${RDS_CERTIFICATES.length} RDS CA certificates`);
  const rds = tlsOptions("verify-full", "rds", "db.example.com");
  assert.ok(
    typeof rds === "object" && rds.rejectUnauthorized === true && rds.ca?.length === RDS_CERTIFICATES.length,
  );
  const system = tlsOptions("verify-full", "system", "db.example.com");
  assert.ok(typeof system === "object" && system.ca === undefined, "libpq's word for the usual CAs");
  assert.equal(tlsOptions("require", null, "db.example.com"), "require");
  assert.equal(tlsOptions(null, null, "db.example.com"), false);
  assert.throws(
    () => tlsOptions("require", "rds", "h"),
    /sslrootcert is read only with sslmode=verify-full, not require/,
  );
  assert.throws(
    () => tlsOptions("verify-full", "/nonexistent/ca.pem", "h"),
    /sslrootcert \/nonexistent\/ca\.pem cannot be read/,
  );
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/empty.pem`, "not a certificate\n");
    assert.throws(() => tlsOptions("verify-full", `${dir}/empty.pem`, "h"), /holds no PEM certificate/);
    const { ca } = await makeCertificates(dir);
    const fromFile = tlsOptions("verify-full", ca, "h");
    assert.ok(typeof fromFile === "object" && fromFile.ca?.length === 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
