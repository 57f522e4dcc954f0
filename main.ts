/**
 * Composition root: loadConfig() → openDb() → migrate() → createApp(deps) → Deno.serve, and a SIGTERM/SIGINT
 * drain. `deno run … main.ts migrate` applies migrations and exits.
 */
import { ConfigError, fileConfigIo, loadConfig } from "./lib/config.ts";
import { createLogger } from "./lib/log.ts";
import { olderDeno } from "./lib/runtime_version.ts";
import { surviveUnhandledRejections } from "./lib/survive_unhandled_rejections.ts";
import { openDb } from "./lib/db/open.ts";
import { tlsFailureHint } from "./lib/db/postgres.ts";
import { migrate, type Migration, pendingMigrations, readMigrations } from "./lib/db/migrate.ts";
import { ensureAppRole } from "./lib/db/app_role.ts";
import { join } from "node:path";
import { hashPassword, isLegacySha256 } from "./lib/auth/password.ts";
import { createApp } from "./app.ts";
import { createServices } from "./lib/services.ts";
import { ensureAssets } from "./scripts/build_assets.ts";
import { UsageRecorder } from "./lib/usage/recorder.ts";
import { replayUsageFiles } from "./lib/usage/unrecorded.ts";
import type { Config } from "./lib/config.ts";
import type { Db } from "./lib/db/db.ts";

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);

async function main(args: string[]): Promise<number> {
  let config: Config;
  try {
    // migrate and replay-usage use the database alone: the server's secrets are not theirs to demand.
    config = await loadConfig(Deno.env.toObject(), fileConfigIo((p) => hashPassword(p)), {
      databaseOnly: args[0] === "migrate" || args[0] === "replay-usage",
    });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  const log = createLogger({ level: config.logLevel });
  surviveUnhandledRejections(log);
  const tested = olderDeno(Deno.version.deno);
  if (tested) {
    log.warn("this Deno is older than the release the proxy is tested on; upgrade: npm install -g deno@2", {
      deno: Deno.version.deno,
      tested,
    });
  }
  // The generated admin password is printed once, to the terminal only (the hash is kept, the password is not):
  // when the server listens, with the console's address; or, should this run end any other way (a command
  // such as `migrate`, a database it cannot reach, a port in use), on the way out, since no later run shows it.
  let passwordShown = config.generatedAdminPassword === null;
  const showPassword = (consoleUrl: string | null) => {
    if (passwordShown) return;
    passwordShown = true;
    console.error(
      `\n${consoleUrl ? `admin console: ${consoleUrl}  ` : "admin console "}user: ${config.adminUsername}  ` +
        `password: ${config.generatedAdminPassword}\n` +
        "(generated for development and shown only this once; set PROXY_ADMIN_PASSWORD_HASH to choose your own)\n",
    );
  };
  try {
    return await run(args, config, log, showPassword);
  } finally {
    showPassword(null);
  }
}

async function run(
  args: string[],
  config: Config,
  log: ReturnType<typeof createLogger>,
  showPassword: (consoleUrl: string | null) => void,
): Promise<number> {
  if (config.generatedSecrets.length > 0) {
    log.warn("development secrets generated and kept under the data dir; set them explicitly in production", {
      names: config.generatedSecrets,
      data_dir: config.dataDir,
    });
  }
  if (isLegacySha256(config.adminPasswordHash)) {
    log.warn(
      "PROXY_ADMIN_PASSWORD_HASH is a bare SHA-256 (weak, unsalted); replace it with `deno task hash-password` output",
    );
  }

  let db: Awaited<ReturnType<typeof openDb>>;
  let applied: number[] = [];
  let pending: Migration[] = [];
  try {
    db = await openDb({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      poolSize: config.databasePoolSize,
    });
    const migrations = await readMigrations(MIGRATIONS_DIR);
    // replay-usage writes rows: changing the schema is for `migrate`, as part of a deploy, not a side effect.
    if (args[0] === "replay-usage") pending = await pendingMigrations(db, migrations);
    else ({ applied } = await migrate(db, migrations));
  } catch (e) {
    // One line an operator can act on (where, and why), not a stack trace; the URL's password stays out.
    log.error(
      args[0] === "replay-usage"
        ? "cannot replay: the database could not be opened"
        : "cannot start: the database could not be opened or migrated",
      {
        database: describeDatabase(config.databaseUrl, config.dataDir),
        error: (e as Error).message,
        hint: tlsFailureHint(config.databaseUrl, e) ?? undefined,
      },
    );
    return 1;
  }
  if (applied.length > 0) log.info("migrations applied", { versions: applied });
  if (args[0] === "replay-usage") {
    if (pending.length > 0) {
      console.error(
        `cannot replay: the database lacks ${pending.length} migration(s) of this release (` +
          `${pending.map((m) => `${String(m.version).padStart(4, "0")}_${m.name}.sql`).join(", ")}); ` +
          "expected an up-to-date database: run `deno task migrate` first (replay-usage does not change the schema)",
      );
      await db.close();
      return 1;
    }
    const code = await replayUsage(args.slice(1), db, config);
    await db.close();
    return code;
  }
  if (args[0] === "migrate") {
    console.log(applied.length > 0 ? `applied migrations: ${applied.join(", ")}` : "database is up to date");
    const role = config.databaseAppRole;
    if (role) {
      try {
        const outcome = await ensureAppRole(db, role);
        console.log(`application role ${role.user}: ${outcome}, granted row access to every table`);
      } catch (e) {
        // The password never leaves this process (the server gets a SCRAM verifier), so no message holds it.
        log.error("cannot set up the application role", { role: role.user, error: (e as Error).message });
        await db.close();
        return 1;
      }
    }
    await db.close();
    return 0;
  }

  await ensureAssets(log);
  const services = await createServices(config, db, log);
  const app = createApp({ config, db, log, services });
  await services.start();
  let server: Deno.HttpServer;
  try {
    server = serve();
  } catch (e) {
    // A port in use or an address this machine does not have: one line to act on, not a stack trace.
    const inUse = e instanceof Deno.errors.AddrInUse;
    log.error("cannot start: cannot listen", {
      host: config.host,
      port: config.port,
      error: (e as Error).message,
      hint: inUse
        ? `port ${config.port} is taken: stop what holds it, or set PROXY_PORT (e.g. PROXY_PORT=${
          config.port + 1
        })`
        : "set PROXY_HOST to an address of this machine (0.0.0.0 for all, 127.0.0.1 for this machine only)",
    });
    await services.stop(1_000);
    await db.close();
    return 1;
  }
  function serve(): Deno.HttpServer {
    return Deno.serve({
      hostname: config.host,
      port: config.port,
      onListen: ({ hostname, port }) => {
        void services.peers.listening(port);
        const shown = hostname === "0.0.0.0" || hostname === "127.0.0.1" ? "localhost" : hostname;
        log.info("listening", { url: `http://${shown}:${port}`, database: db.kind, env: config.env });
        console.error(`claude-code-proxy listening on http://${shown}:${port} (database: ${db.kind})`);
        showPassword(`http://${shown}:${port}/admin`);
      },
    }, app.fetch);
  }

  const stop = new Promise<string>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, () => resolve(sig));
  });
  const signal = await stop;
  log.info("shutting down: draining in-flight requests", { signal, deadline_s: config.shutdownDrainSeconds });
  const finished = server.shutdown();
  const drained = await Promise.race([
    finished.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), config.shutdownDrainSeconds * 1000)),
  ]);
  if (!drained) {
    log.warn("drain deadline reached with requests still open; ending them", {
      streams_open: services.metrics.streamsOpen,
    });
    // Each stream's client gets an error event, a request still awaiting its answer a retryable 503, and each
    // one's usage is recorded before the recorder closes: they get a moment to do so.
    services.proxy.interruptStreams();
    await Promise.race([finished, new Promise((r) => setTimeout(r, 2_000))]);
  }
  await services.stop(5_000);
  await db.close();
  log.info("stopped");
  return 0;
}

/** `main.ts replay-usage <file>…`: usage rows from spool files or exported log lines, into the database. */
async function replayUsage(paths: string[], db: Db, config: Config): Promise<number> {
  if (paths.length === 0) {
    console.error("usage: deno task replay-usage <spool file or exported log lines>…");
    return 2;
  }
  // Warnings too: a row the database refuses is printed as a `usage row not recorded` line, to fix and replay.
  const quiet = createLogger({ level: "warn" });
  const recorder = new UsageRecorder({
    db,
    log: quiet,
    timeZone: config.timezone,
    // Never written, so replay needs no write access (the image grants it for the data dir only): the queue
    // takes every row, flushed after each file (replayUsageFiles), so it holds about one file's. Rows that
    // cannot be written stay queued and are reported below, not spooled.
    queueMax: Number.POSITIVE_INFINITY,
    spoolDir: join(config.dataDir, "replay-usage-spool"),
    retentionDays: config.usageRetentionDays,
  });
  let read;
  try {
    read = await replayUsageFiles(paths, recorder);
  } catch (e) {
    console.error((e as Error).message);
    return 1;
  }
  await recorder.flush();
  const { queued, lastFlushError, rejectedRows, expiredRows, insertedRows } = recorder.stats();
  const already = read.rows - insertedRows - rejectedRows - expiredRows;
  const alreadyText = already > 0 ? ` (${already} already recorded, left as they were)` : "";
  if (queued > 0) {
    console.error(
      `could not write the rows (${lastFlushError ?? "unknown error"}); nothing was lost: run it again`,
    );
    return 1;
  }
  await recorder.close();
  if (rejectedRows > 0 || expiredRows > 0) {
    const why = [
      rejectedRows > 0
        ? `${rejectedRows} refused by the database (${
          lastFlushError ?? "invalid data"
        }; fix their lines and ` +
          "replay them)"
        : "",
      expiredRows > 0
        ? `${expiredRows} older than PROXY_USAGE_RETENTION_DAYS=${config.usageRetentionDays} (retention may ` +
          "have deleted their rows while their tokens stay in the aggregates; writing them could count them " +
          "twice; replay them with PROXY_USAGE_RETENTION_DAYS=0 to write them anyway)"
        : "",
    ].filter((s) => s !== "").join("; ");
    console.error(
      `${insertedRows} of ${read.rows} usage rows written${alreadyText}; ${why}. Each is logged above as a ` +
        '"usage row not recorded" line.',
    );
    return 1;
  }
  console.log(
    `${insertedRows} of ${read.rows} usage rows from ${read.files} file(s) written${alreadyText}` +
      (read.skippedLines > 0 ? `; ${read.skippedLines} other line(s) skipped` : ""),
  );
  return 0;
}

/** Where the database is, for a log line: host, port and name of a URL (never its password), or the data dir. */
function describeDatabase(url: string, dataDir: string): string {
  if (url === "") return `embedded PGlite under ${dataDir}`;
  try {
    const u = new URL(url);
    return `postgres ${u.hostname}:${u.port || "5432"}/${u.pathname.slice(1)} as ${
      decodeURIComponent(u.username)
    }`;
  } catch {
    return "postgres (unparseable URL)";
  }
}

/**
 * A failure main did not catch (a query the server's start-up makes, a permission the run lacks): one error
 * line, and exit 1 so a supervisor or a script sees it.
 */
function failed(e: unknown): number {
  createLogger({ level: "error" }).error("stopped: unexpected error", {
    error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    stack: e instanceof Error ? e.stack?.split("\n").slice(1, 6).join("\n") : undefined,
  });
  return 1;
}

if (import.meta.main) {
  // Handled here, main's failure is never an unhandled rejection: the server's safety net for those (see
  // surviveUnhandledRejections) would log it and carry on, so the run exited 0, or stayed up serving nothing.
  Deno.exit(await main(Deno.args).catch(failed));
}
