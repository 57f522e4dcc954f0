/**
 * The database seam: one small interface implemented over postgres.js (production) and over PGlite (embedded
 * default and tests). SQL lives only in `lib/db/`; handlers and the proxy never see a driver.
 *
 * Both implementations return `int8` and `numeric` columns as JavaScript numbers and `timestamptz` as `Date`,
 * so every query function behaves the same on both backends.
 */
import type { SqlFragment } from "./sql.ts";

/** A row as returned by the driver. */
export type Row = Record<string, unknown>;

/** What query functions run on: the database itself or an open transaction. */
export interface Queryable {
  /** Runs one statement; values are bound parameters. */
  query<T = Row>(fragment: SqlFragment): Promise<T[]>;
  /** Runs several statements of trusted SQL text with no parameters (migrations). */
  exec(text: string): Promise<void>;
}

/** A database connection (pool or embedded instance). */
export interface Db extends Queryable {
  readonly kind: "postgres" | "pglite";
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  begin<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Subscribes to a NOTIFY channel; resolves to an unsubscribe function. `onReconnect` runs after the listening
   * connection was lost and re-established (notifications sent meanwhile were missed).
   */
  listen(
    channel: string,
    onPayload: (payload: string) => void,
    onReconnect?: () => void,
  ): Promise<() => Promise<void>>;
  /** Cheap liveness check for `/ready`; rejects when the database is unreachable. */
  ping(): Promise<void>;
  /**
   * Drops every pooled connection, the busy ones too (their queries fail), for fresh ones on the next query:
   * for connections that stall without ever failing (a failover, a network that black-holes them), which would
   * otherwise hold their pool slots for as long as the operating system keeps the sockets. A no-op in process.
   */
  recycle(): void;
  close(): Promise<void>;
  readonly closed: boolean;
}
