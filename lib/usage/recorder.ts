/**
 * The usage recorder: requests hand it a record and move on; it never blocks a request and never throws.
 *
 * Records wait in a bounded in-memory queue flushed at least every `flushIntervalMs` or every 500 rows, one
 * transaction per flush: a multi-row insert into `token_usages` (idempotent on `request_id`), additive upserts into
 * `usage_aggregates` (hour and day buckets in `PROXY_TIMEZONE`) for the rows actually inserted, and
 * `access_keys.last_used_at`. When the database fails, rows stay queued and the flush retries with backoff; past
 * the queue bound, rows spill to append-only files under `<dataDir>/usage-spool/` and are replayed once the database
 * is back. Shutdown flushes and spills what it could not write. Nothing is lost and nothing is counted twice.
 *
 * @example
 * ```ts
 * const recorder = new UsageRecorder({ db, log, timeZone: "UTC", spoolDir: ".data/usage-spool" });
 * recorder.start();
 * recorder.record(usage);         // returns at once
 * await recorder.close(5_000);    // on shutdown
 * ```
 */
import { settlesWithin } from "../settles_within.ts";
import { TimedOut, within } from "../within.ts";
import { parseUsageLines, UNRECORDED_MESSAGE } from "./unrecorded.ts";
import { join } from "node:path";
import type { Db } from "../db/db.ts";
import type { Logger } from "../log.ts";
import { addAggregates, type AggregateDelta, insertUsageRows, type UsageRecord } from "../db/usage.ts";
import { touchKeys } from "../db/access_keys.ts";
import { bucketStart } from "./budget_period.ts";

/** Counters for `/metrics` and the console. */
export interface RecorderStats {
  queued: number;
  spooledRows: number;
  flushErrors: number;
  flushedRows: number;
  /** Of the flushed rows, those new to the database (the rest were recorded already: a replay). */
  insertedRows: number;
  /** Rows the database refused as data (logged as replayable lines and dropped from the queue). */
  rejectedRows: number;
  /** Rows older than the retention window (logged as replayable lines and dropped, never written). */
  expiredRows: number;
  lastFlushError: string | null;
}

interface Item {
  record: UsageRecord;
  /** The spool file this record was replayed from; deleted once all its rows are committed. */
  file?: SpoolFile;
}

interface SpoolFile {
  path: string;
  outstanding: number;
}

const BATCH = 500;
const SPOOL_FILE_ROWS = 10_000;
/** At exit, unrecorded rows are logged for at most this many milliseconds. */
const UNRECORDED_LOG_MS = 3_000;
const MAX_BACKOFF_MS = 30_000;

/** Options of the recorder. */
export interface RecorderOptions {
  db: Db;
  log: Logger;
  timeZone: string;
  spoolDir: string;
  flushIntervalMs?: number;
  queueMax?: number;
  now?: () => number;
  /** At most this many unrecorded rows are logged at exit (default 50,000); the rest stay in the spool only. */
  exitLogRows?: number;
  /** Called after each committed flush with the rows it inserted (the budget cache listens). */
  onCommitted?: (records: UsageRecord[]) => void;
  /**
   * `PROXY_USAGE_RETENTION_DAYS` (0: none). A row older than this is not written: retention may have deleted its
   * own row already, which is what makes a second write add nothing, while its tokens stay in the aggregates.
   */
  retentionDays?: number;
  /** Appends text to a spool file (tests swap it to fail like a full disk). */
  appendFile?: (path: string, text: string) => Promise<void>;
  /**
   * How long one batch's transaction may take (default 30 s). Past it the flush counts as failed and the pool's
   * connections are recycled: a connection that stalls without failing (a failover, a black-holed network)
   * would otherwise hold every later flush, unlogged, for as long as the operating system keeps the socket.
   */
  writeTimeoutMs?: number;
}

/** How often close() tries a failed flush again before its deadline. */
const CLOSE_RETRY_MS = 200;
/** How long one batch's transaction may take before the flush counts as failed. */
const WRITE_TIMEOUT_MS = 30_000;
/** How long a write that timed out waits for a ping, to tell a slow database from a stalled connection. */
const PING_WAIT_MS = 2_000;

/** The log message of a failed flush; the deployed stack alarms on it (infra/proxy_stack.ts). */
export const FLUSH_FAILED_MESSAGE = "usage flush failed; rows kept and retried";

/** The log message of a replayed row dropped because it is older than the retention window. */
export const EXPIRED_MESSAGE =
  "usage row older than PROXY_USAGE_RETENTION_DAYS not recorded: retention may have deleted its row while its " +
  "tokens stay in the aggregates, so writing it could count them twice; to write it anyway, replay its line " +
  "with PROXY_USAGE_RETENTION_DAYS=0";

/** See the module documentation. */
export class UsageRecorder {
  readonly #o: Required<Omit<RecorderOptions, "onCommitted">> & Pick<RecorderOptions, "onCommitted">;
  #queue: Item[] = [];
  #spillBuffer: UsageRecord[] = [];
  #spillFile: { path: string; rows: number } | null = null;
  #spillWriting: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setInterval> | null = null;
  #flushing: Promise<void> | null = null;
  /** The batch being written now (out of the queue until its transaction ends). */
  #inFlight: Item[] | null = null;
  #backoffMs = 0;
  #nextAttemptAt = 0;
  #spooledRows = 0;
  #replayScanned = false;
  #stats = {
    flushErrors: 0,
    flushedRows: 0,
    insertedRows: 0,
    rejectedRows: 0,
    expiredRows: 0,
    lastFlushError: null as string | null,
  };
  #closed = false;
  /** Set by close(): failed flushes are retried on its schedule. */
  #closing = false;
  /** close() has returned: nothing will await a write any more. */
  #finished = false;

  constructor(opts: RecorderOptions) {
    this.#o = {
      flushIntervalMs: 1000,
      queueMax: 50_000,
      now: Date.now,
      exitLogRows: 50_000,
      retentionDays: 0,
      appendFile: (path, text) => Deno.writeTextFile(path, text, { append: true, mode: 0o600 }),
      writeTimeoutMs: WRITE_TIMEOUT_MS,
      ...opts,
    };
  }

  /** Starts the periodic flush; spool files left by an earlier run are replayed. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.flush(), this.#o.flushIntervalMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Queues a record; when the queue is full it goes to the spool file instead. Never throws, never waits. */
  record(record: UsageRecord): void {
    record = storable(record);
    if (this.#finished) {
      // A request that outlived the shutdown (a non-streaming answer still coming at the drain deadline):
      // nothing waits for an asynchronous write any more, so the row goes to the spool before this returns,
      // and to the log, as the rows left at exit do.
      this.#o.log.warn(UNRECORDED_MESSAGE, { record });
      try {
        Deno.mkdirSync(this.#o.spoolDir, { recursive: true, mode: 0o700 }); // usage rows: the owner's only
        const name = `spool-${String(this.#o.now()).padStart(15, "0")}-late.jsonl`;
        Deno.writeTextFileSync(join(this.#o.spoolDir, name), JSON.stringify(record) + "\n", {
          append: true,
          mode: 0o600,
        });
      } catch { /* the log line above is the copy that is left */ }
      return;
    }
    if (this.#queue.length < this.#o.queueMax && !this.#closed) {
      this.#queue.push({ record });
      if (this.#queue.length >= BATCH && !this.#flushing) void this.flush();
      return;
    }
    this.#spillBuffer.push(record);
    this.#spooledRows++;
    if (this.#spillBuffer.length === 1) queueMicrotask(() => this.#writeSpill());
  }

  /** Current counters. */
  stats(): RecorderStats {
    return {
      queued: this.#queue.length + this.#spillBuffer.length,
      spooledRows: this.#spooledRows,
      flushErrors: this.#stats.flushErrors,
      flushedRows: this.#stats.flushedRows,
      insertedRows: this.#stats.insertedRows,
      rejectedRows: this.#stats.rejectedRows,
      expiredRows: this.#stats.expiredRows,
      lastFlushError: this.#stats.lastFlushError,
    };
  }

  /** One flush pass: writes queued batches until the queue is empty or the database fails. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#o.now() < this.#nextAttemptAt) return Promise.resolve();
    this.#flushing = this.#flushLoop().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async #flushLoop(): Promise<void> {
    if (!this.#replayScanned) {
      this.#replayScanned = true;
      await this.#scanSpool();
    }
    // A spool left by an earlier run (or an outage) is replayed when idle too, not only after new traffic.
    if (this.#queue.length === 0) await this.#replayOne();
    while (this.#queue.length > 0) {
      const taken = this.#queue.splice(0, BATCH);
      const batch = this.#withinRetention(taken);
      this.#inFlight = batch;
      try {
        if (batch.length > 0) await this.#writeIsolating(batch);
      } catch (e) {
        this.#inFlight = null;
        this.#queue.unshift(...batch); // keep order; retry later
        this.#stats.flushErrors++;
        this.#stats.lastFlushError = (e as Error).message;
        this.#backoffMs = Math.min(MAX_BACKOFF_MS, this.#backoffMs === 0 ? 500 : this.#backoffMs * 2);
        this.#nextAttemptAt = this.#o.now() + this.#backoffMs;
        this.#o.log.warn(FLUSH_FAILED_MESSAGE, {
          queued: this.#queue.length,
          // Shutting down, close() tries again every 200 ms until its deadline, not after the backoff.
          retry_in_ms: this.#closing ? CLOSE_RETRY_MS : this.#backoffMs,
          error: (e as Error).message,
        });
        // The expired rows are settled (logged) even so: they are not queued again.
        if (batch.length < taken.length) {
          const requeued = new Set(batch);
          await this.#settle(taken.filter((i) => !requeued.has(i)));
        }
        return;
      }
      this.#inFlight = null;
      this.#backoffMs = 0;
      this.#nextAttemptAt = 0;
      this.#stats.flushedRows += batch.length;
      await this.#settle(taken);
      if (this.#queue.length < this.#o.queueMax / 2) await this.#replayOne();
    }
  }

  /** Items written or dropped for good: a spool file goes once none of its rows is left to write. */
  async #settle(items: Item[]): Promise<void> {
    for (const item of items) {
      if (item.file && --item.file.outstanding === 0) {
        await Deno.remove(item.file.path).catch(() => {});
        this.#replaying.delete(item.file.path);
      }
    }
  }

  /**
   * The items of `batch` recorded within the retention window. Only replayed rows (spool files, `replay-usage`)
   * can be older; each such row is logged as a replayable line and dropped. The window is an hour shorter than
   * retention's, for replicas whose clocks differ.
   */
  #withinRetention(batch: Item[]): Item[] {
    const days = this.#o.retentionDays;
    if (days <= 0) return batch;
    const oldest = this.#o.now() - days * 86400_000 + 3600_000;
    const kept: Item[] = [];
    for (const item of batch) {
      if (Date.parse(item.record.createdAt) >= oldest) {
        kept.push(item);
        continue;
      }
      this.#stats.expiredRows++;
      this.#o.log.error(EXPIRED_MESSAGE, {
        request_id: item.record.requestId,
        created_at: item.record.createdAt,
        retention_days: days,
      });
      this.#o.log.warn(UNRECORDED_MESSAGE, { record: item.record });
    }
    return kept;
  }

  /**
   * Writes `batch`; when the database refuses it as data (a value out of range, a broken constraint), halves it
   * until the refused rows stand alone, writes the rest, and logs each refused row as a replayable line before
   * dropping it: one bad row must not hold back every row queued behind it, flush after flush. Any other error
   * (the database is unreachable) propagates, and the whole batch is retried.
   */
  async #writeIsolating(batch: Item[]): Promise<void> {
    try {
      await this.#write(batch.map((i) => i.record));
    } catch (e) {
      if (!isDataError(e)) throw e;
      if (batch.length > 1) {
        const half = Math.ceil(batch.length / 2);
        await this.#writeIsolating(batch.slice(0, half));
        await this.#writeIsolating(batch.slice(half));
        return;
      }
      this.#stats.rejectedRows++;
      this.#o.log.error("usage row refused by the database; logged for replay and dropped", {
        request_id: batch[0].record.requestId,
        error: (e as Error).message,
      });
      this.#o.log.warn(UNRECORDED_MESSAGE, { record: batch[0].record });
    }
  }

  async #write(records: UsageRecord[]): Promise<void> {
    const tz = this.#o.timeZone;
    // One row per request id: a record queued twice (replayed from a spool while still queued) must not add
    // its tokens to the aggregates twice when both copies meet in one batch.
    if (new Set(records.map((r) => r.requestId)).size < records.length) {
      records = [...new Map(records.map((r) => [r.requestId, r])).values()];
    }
    const committed = await this.#bounded(this.#o.db.begin(async (tx) => {
      const inserted = await insertUsageRows(tx, records);
      const fresh = records.filter((r) => inserted.has(r.requestId));
      await addAggregates(tx, aggregate(fresh, tz));
      const lastUse = new Map<string, string>();
      for (const r of fresh) {
        const prev = lastUse.get(r.accessKeyId);
        if (!prev || prev < r.createdAt) lastUse.set(r.accessKeyId, r.createdAt);
      }
      await touchKeys(tx, [...lastUse].map(([id, at]) => ({ id, at: new Date(at) })));
      return fresh;
    }));
    this.#stats.insertedRows += committed.length;
    if (committed.length > 0) this.#o.onCommitted?.(committed);
  }

  /**
   * `write`, or a failure once the write timeout has passed, the pool then recycled. A stalled transaction that
   * still commits later adds nothing twice: the retry's rows conflict with its rows and its aggregates count
   * only rows it inserted.
   */
  async #bounded<T>(write: Promise<T>): Promise<T> {
    const ms = this.#o.writeTimeoutMs;
    try {
      return await within(ms, write, "usage flush");
    } catch (e) {
      if (!(e instanceof TimedOut)) throw e;
      write.catch(() => {}); // failed by the recycle below, or late: its outcome is no one's now
      // Slow (locks, a busy pool) or stalled (a failover's silent connections)? A database that answers a ping
      // is only slow: replacing the pool would kill every query in flight on it for nothing.
      const answers = await within(PING_WAIT_MS, this.#o.db.ping(), "ping").then(() => true, () => false);
      if (answers) throw new Error(`the usage write took longer than ${ms} ms; retried later`);
      this.#o.db.recycle();
      throw new Error(`the database did not answer within ${ms} ms; its connections were replaced`);
    }
  }

  /** Appends buffered overflow records to the current spool file (one writer at a time). */
  #writeSpill(): void {
    this.#spillWriting = this.#spillWriting.then(async () => {
      while (this.#spillBuffer.length > 0) {
        const rows = this.#spillBuffer.splice(0, this.#spillBuffer.length);
        try {
          await Deno.mkdir(this.#o.spoolDir, { recursive: true, mode: 0o700 });
          let offset = 0;
          while (offset < rows.length) {
            if (!this.#spillFile || this.#spillFile.rows >= SPOOL_FILE_ROWS) {
              const name = `spool-${String(this.#o.now()).padStart(15, "0")}-${
                crypto.randomUUID().slice(0, 8)
              }.jsonl`;
              this.#spillFile = { path: join(this.#o.spoolDir, name), rows: 0 };
            }
            const take = rows.slice(offset, offset + (SPOOL_FILE_ROWS - this.#spillFile.rows));
            await this.#o.appendFile(
              this.#spillFile.path,
              take.map((r) => JSON.stringify(r)).join("\n") + "\n",
            );
            this.#spillFile.rows += take.length;
            offset += take.length;
          }
        } catch (e) {
          // The disk failed too: keep the rows in memory rather than drop them, up to twice the queue bound;
          // past that they go to the log as replayable lines (`deno task replay-usage`), the one place left.
          // The next spill starts a new file: appending to this one would glue its first row onto the
          // half-written line left here, unreadable.
          this.#spillFile = null;
          let logged = 0;
          for (const record of rows) {
            if (this.#queue.length < this.#o.queueMax * 2) this.#queue.push({ record });
            else {
              this.#o.log.warn(UNRECORDED_MESSAGE, { record });
              logged++;
            }
          }
          this.#o.log.error("usage spool write failed; rows kept in memory", {
            error: (e as Error).message,
            kept: rows.length - logged,
            logged_for_replay: logged,
          });
          return;
        }
      }
    }).catch((e) => {
      // Nothing above should throw; if it does, later spills must still run.
      this.#o.log.error("usage spool writer failed", { error: (e as Error).message });
    });
  }

  #pendingFiles: string[] = [];
  /** Spool files whose rows are in the queue now. */
  readonly #replaying = new Set<string>();

  async #scanSpool(): Promise<void> {
    try {
      const names: string[] = [];
      for await (const e of Deno.readDir(this.#o.spoolDir)) {
        if (!e.isFile || !/^spool-.*\.jsonl(\.replaying)?$/.test(e.name)) continue;
        if (this.#spillFile && join(this.#o.spoolDir, e.name) === this.#spillFile.path) continue; // still open
        if (this.#replaying.has(join(this.#o.spoolDir, e.name))) continue; // its rows are queued already
        names.push(e.name);
      }
      this.#pendingFiles = names.sort().map((n) => join(this.#o.spoolDir, n));
    } catch {
      this.#pendingFiles = [];
    }
  }

  /** Moves the oldest closed spool file back into the queue. */
  async #replayOne(): Promise<void> {
    if (this.#pendingFiles.length === 0 && this.#spooledRows > 0 && this.#spillBuffer.length === 0) {
      // Close the file being written so it can be replayed too.
      await this.#spillWriting;
      this.#spillFile = null;
      this.#spooledRows = 0;
      await this.#scanSpool();
    }
    const path = this.#pendingFiles.shift();
    if (!path) return;
    const replaying = path.endsWith(".replaying") ? path : `${path}.replaying`;
    try {
      if (replaying !== path) await Deno.rename(path, replaying);
      // A torn last line after a crash, or anything else that is not a usage row, is skipped: the rest counts.
      const records = parseUsageLines(await Deno.readTextFile(replaying)).records.map(storable);
      if (records.length === 0) {
        await Deno.remove(replaying).catch(() => {});
        return;
      }
      const file: SpoolFile = { path: replaying, outstanding: records.length };
      this.#replaying.add(replaying);
      for (const record of records) this.#queue.push({ record, file });
      this.#o.log.info("replaying spooled usage rows", { rows: records.length, file: replaying });
    } catch (e) {
      this.#o.log.error("usage spool replay failed", { file: path, error: (e as Error).message });
    }
  }

  /**
   * Stops the timer and writes everything it can before `deadlineMs`; what cannot be written goes to the spool,
   * to be replayed by the next start.
   */
  async close(deadlineMs = 5000): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#closing = true;
    const deadline = this.#o.now() + deadlineMs;
    this.#nextAttemptAt = 0;
    const left = () => Math.max(0, deadline - this.#o.now());
    // A connection that stalls (a partition, a failover) never answers: every wait here ends at the deadline.
    while (this.#queue.length > 0 && left() > 0) {
      if (!await settlesWithin(this.flush(), left())) break;
      if (this.#queue.length > 0) {
        await new Promise((r) => setTimeout(r, Math.min(CLOSE_RETRY_MS, left())));
        this.#nextAttemptAt = 0;
      }
    }
    if (this.#flushing) await settlesWithin(this.#flushing, left());
    this.#closed = true;
    // A write still pending at the deadline may never commit: its rows go to the spool too (a replay of rows
    // that did commit adds nothing: rows are unique by request id).
    const stuck = this.#flushing ? this.#inFlight ?? [] : [];
    if (stuck.length > 0) {
      this.#o.log.warn("usage flush still pending at the shutdown deadline; its rows go to the spool", {
        rows: stuck.length,
      });
    }
    if (this.#queue.length > 0 || stuck.length > 0) {
      // Rows replayed from a spool file are still in that file: only spill the others.
      const rest = [...stuck, ...this.#queue].filter((i) => !i.file).map((i) => i.record);
      this.#queue = [];
      // One by one: spreading hundreds of thousands of rows into push() overflows the stack.
      for (const record of rest) this.#spillBuffer.push(record);
      this.#spooledRows += rest.length;
    }
    if (this.#spillBuffer.length > 0) this.#writeSpill();
    await this.#spillWriting;
    await this.#logUnrecorded();
    this.#finished = true;
  }

  /**
   * Logs the rows still in the spool, one line each: the disk may not outlive the process (see unrecorded.ts).
   * The summary naming the files comes first, so a kill during the rows still leaves it; the rows are bounded
   * in number and time, so a long outage's spool neither floods the log nor outlasts the stop timeout.
   */
  async #logUnrecorded(): Promise<void> {
    const files: string[] = [];
    try {
      for await (const e of Deno.readDir(this.#o.spoolDir)) {
        if (e.isFile && /^spool-.*\.jsonl(\.replaying)?$/.test(e.name)) files.push(e.name);
      }
    } catch {
      return; // no spool dir: nothing was spilled
    }
    if (files.length === 0) return;
    this.#o.log.warn("usage rows not recorded at exit: kept in the spool and logged below", {
      spool_dir: this.#o.spoolDir,
      spool_files: files,
      replay: "deno task replay-usage <spool file or exported log lines>",
    });
    let logged = 0;
    const until = this.#o.now() + UNRECORDED_LOG_MS;
    for (const name of files) {
      let records: UsageRecord[];
      try {
        records = parseUsageLines(await Deno.readTextFile(join(this.#o.spoolDir, name))).records;
      } catch {
        continue;
      }
      for (const record of records) {
        if (logged >= this.#o.exitLogRows || this.#o.now() > until) {
          this.#o.log.warn("usage rows not recorded at exit: log cut short; the rest are only in the spool", {
            logged,
            spool_dir: this.#o.spoolDir,
          });
          return;
        }
        this.#o.log.warn(UNRECORDED_MESSAGE, { record });
        logged++;
      }
    }
  }
}

/** Groups records into hour and day aggregate deltas. */
export function aggregate(records: UsageRecord[], timeZone: string): AggregateDelta[] {
  const map = new Map<string, AggregateDelta>();
  // Every zone's offset, and every change of it, falls on a 15-minute UTC boundary: rows of the same 15 minutes
  // share their buckets, so the time-zone arithmetic runs once per slot rather than twice per row.
  const buckets = new Map<number, { hour: string; day: string }>();
  for (const r of records) {
    const ms = Date.parse(r.createdAt);
    const slot = Math.floor(ms / 900_000);
    let slotBuckets = buckets.get(slot);
    if (!slotBuckets) {
      const at = new Date(ms);
      slotBuckets = {
        hour: bucketStart(at, "hour", timeZone).toISOString(),
        day: bucketStart(at, "day", timeZone).toISOString(),
      };
      buckets.set(slot, slotBuckets);
    }
    for (const granularity of ["hour", "day"] as const) {
      const bucket = slotBuckets[granularity];
      const model = r.model ?? "";
      const k = `${r.accessKeyId}|${bucket}|${granularity}|${r.provider}|${model}|${r.isFallback}`;
      let d = map.get(k);
      if (!d) {
        d = {
          accessKeyId: r.accessKeyId,
          userId: r.userId,
          timeBucket: bucket,
          granularity,
          provider: r.provider,
          model,
          isFallback: r.isFallback,
          requests: 0,
          errors: 0,
          inputTokens: 0,
          outputTokens: 0,
          cacheReadTokens: 0,
          cacheCreationTokens: 0,
          costUsd: 0,
          unpricedRequests: 0,
          latencyMs: 0,
        };
        map.set(k, d);
      }
      d.requests++;
      if (r.statusCode >= 400 || r.errorType !== null) d.errors++;
      d.inputTokens += r.inputTokens;
      d.outputTokens += r.outputTokens;
      d.cacheReadTokens += r.cacheReadInputTokens;
      d.cacheCreationTokens += r.cacheCreationInputTokens;
      // Micro-dollars, as each row stores its cost: a sum of unrounded costs would drift from the rows' sum.
      if (r.costUsd !== null) d.costUsd += Math.round(r.costUsd * 1e6) / 1e6;
      else if (r.inputTokens + r.outputTokens + r.cacheReadInputTokens + r.cacheCreationInputTokens > 0) {
        d.unpricedRequests++;
      }
      d.latencyMs += r.latencyMs;
    }
  }
  return [...map.values()];
}

/** Longest text kept in a usage row's client- or upstream-given fields (a model name is a few dozen characters). */
export const MAX_RECORDED_TEXT = 256;

/**
 * The record with its client- and upstream-given text made storable: NUL and lone surrogates (which PostgreSQL
 * refuses, failing the whole batch and every flush after it) replaced, and at most {@link MAX_RECORDED_TEXT}
 * characters (a model name of kilobytes would exceed the aggregates' index row size).
 */
export function storable(r: UsageRecord): UsageRecord {
  const fields = [
    r.model,
    r.modelServed,
    r.messageId,
    r.stopReason,
    r.errorType,
    r.fallbackReason,
    r.speed ?? null,
    r.inferenceGeo ?? null,
  ];
  const counts = [
    r.webSearchRequests ?? 0,
    r.inputTokens,
    r.outputTokens,
    r.cacheReadInputTokens,
    r.cacheCreationInputTokens,
    r.latencyMs,
  ];
  if (
    fields.every((v) =>
      v === null ||
      (typeof v === "string" && v.length <= MAX_RECORDED_TEXT && v.isWellFormed() && !v.includes("\0"))
    ) && counts.every(isCount) && (r.timeToFirstByteMs === null || isCount(r.timeToFirstByteMs)) &&
    isCount(r.statusCode) &&
    (r.costUsd === null || (Number.isFinite(r.costUsd) && r.costUsd >= 0 && r.costUsd < MAX_COST))
  ) {
    return r;
  }
  return {
    ...r,
    model: text(r.model),
    modelServed: text(r.modelServed),
    messageId: text(r.messageId),
    stopReason: text(r.stopReason),
    errorType: text(r.errorType),
    fallbackReason: text(r.fallbackReason),
    speed: text(r.speed),
    inferenceGeo: text(r.inferenceGeo),
    webSearchRequests: count(r.webSearchRequests ?? 0),
    inputTokens: count(r.inputTokens),
    outputTokens: count(r.outputTokens),
    cacheReadInputTokens: count(r.cacheReadInputTokens),
    cacheCreationInputTokens: count(r.cacheCreationInputTokens),
    latencyMs: count(r.latencyMs),
    timeToFirstByteMs: r.timeToFirstByteMs === null ? null : count(r.timeToFirstByteMs),
    statusCode: count(r.statusCode),
    costUsd: r.costUsd === null
      ? null
      : Number.isFinite(r.costUsd)
      ? Math.min(Math.max(0, r.costUsd), MAX_COST - 0.000001)
      : null,
  };
}

/** The columns' `integer` bound. */
const MAX_INT = 2_147_483_647;
/** `numeric(14, 6)` holds less than this. */
const MAX_COST = 100_000_000;

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= MAX_INT;
}

/**
 * A count the columns can hold. Only an upstream that breaks the API's contract (a gateway reporting 1.5 or 3e9
 * tokens) gets here: the value is rounded and clamped rather than left to fail the batch.
 */
function count(v: unknown): number {
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) ? Math.min(MAX_INT, Math.max(0, Math.round(n))) : 0;
}

/** Text PostgreSQL accepts: a string (whatever the upstream put there), cut short, well-formed, without NUL. */
function text(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  const s = typeof v === "string" ? v : String(typeof v === "object" ? JSON.stringify(v) : v);
  let out = s.length > MAX_RECORDED_TEXT ? s.slice(0, MAX_RECORDED_TEXT) : s;
  if (!out.isWellFormed()) out = out.toWellFormed();
  return out.includes("\0") ? out.replaceAll("\0", "\uFFFD") : out;
}

/**
 * Whether PostgreSQL refused the statement for its data (SQLSTATE class 22 data exception, 23 integrity
 * constraint, 54 program limit such as an index row too large), which retrying cannot fix, as opposed to a
 * connection or server failure, which it can.
 */
function isDataError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}
