/**
 * Errors that carry an HTTP status and an error type, thrown by `lib/` and turned into the right shape at the
 * edge: Anthropic's `{"type":"error","error":{...}}` on proxy routes, `{"error":{...}}` on the JSON API.
 *
 * @example
 * ```ts
 * throw new HttpError(404, "not_found_error", "user 1b9d… does not exist");
 * ```
 */
import type { Logger } from "./log.ts";

/** Anthropic's error types, reused by the admin API so clients see one vocabulary. */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "conflict_error"
  | "request_too_large"
  | "rate_limit_error"
  | "api_error"
  | "overloaded_error"
  | "timeout_error";

/** An error with a status code and a message fit to show the caller (never a secret, never a stack). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
    readonly headers: Record<string, string> = {},
    /** For validation errors: the field at fault, so forms can show the message beside it. */
    readonly field?: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** Anthropic's error body. */
export function anthropicError(
  type: string,
  message: string,
): { type: "error"; error: { type: string; message: string } } {
  return { type: "error", error: { type, message } };
}

/** Seconds a client is told to wait before retrying a request refused because the database is unreachable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** The admin API's answer while the database cannot be reached: retryable, saying so. */
export function databaseUnavailableError(): HttpError {
  return new HttpError(
    503,
    "api_error",
    "database unreachable: the proxy cannot reach its database right now, so this request could not be " +
      `completed; retry in ${DATABASE_RETRY_AFTER_SECONDS} seconds or so`,
    { "retry-after": String(DATABASE_RETRY_AFTER_SECONDS) },
  );
}

// Socket errors postgres.js passes on from the runtime when a connection cannot be made or is lost.
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
]);
// postgres.js's own: a connection closed under a query, a pool ended, a connect that timed out.
const POSTGRES_JS_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);
// SQLSTATEs of a server going away or not taking connections: class 08 (connection exception), admin_shutdown
// (a stopping server ends its sessions), crash_shutdown, cannot_connect_now (starting up or shutting down),
// too_many_connections (every slot taken, or the role's connection limit: several tasks' pools against a small
// instance).
const UNAVAILABLE_SQLSTATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;
// invalid_authorization_specification, invalid_password: the server is there but refuses the proxy's login (its
// role set NOLOGIN, or dropped; a password rotated in one place and not yet the other). Nothing a request did
// and nothing to fix in the code: an outage, as for the client, until the credentials match again.
const LOGIN_REFUSED_SQLSTATES = new Set(["28000", "28P01"]);
// object_not_in_prerequisite_state is mostly about statements; at connect time it is a database that does not
// take connections (ALTER DATABASE … ALLOW_CONNECTIONS false), which is unavailability too.
const NOT_ACCEPTING = /not currently accepting connections/;
// The embedded database has no connection to lose: it is unavailable only once closed (during shutdown), which
// our Db wrappers and PGlite itself report with these messages and no code.
const CLOSED_MESSAGES = new Set(["database is closed", "PGlite is closed"]);

/** `e` and the errors it wraps (`cause`), five deep at most: errors wrapped on their way up keep their codes. */
export function* causeChain(e: unknown): Generator<{ code?: unknown; message?: unknown }> {
  for (let depth = 0; depth < 5 && e !== null && typeof e === "object"; depth++) {
    yield e as { code?: unknown; message?: unknown };
    e = (e as { cause?: unknown }).cause;
  }
}

/**
 * Whether `e` says the database could not be reached (stopped, restarting, network down, pool or embedded
 * database closed) or refused the proxy's login, as opposed to a statement it refused or a bug. Only the former
 * is worth a retry: anything else stays a 500 with its details in the log. Follows `cause`.
 */
export function isDatabaseUnavailable(e: unknown): boolean {
  for (const { code, message } of causeChain(e)) {
    if (typeof code === "string") {
      if (
        SOCKET_CODES.has(code) || POSTGRES_JS_CODES.has(code) || UNAVAILABLE_SQLSTATE.test(code) ||
        LOGIN_REFUSED_SQLSTATES.has(code)
      ) {
        return true;
      }
      if (code === "55000" && typeof message === "string" && NOT_ACCEPTING.test(message)) return true;
    } else if (typeof message === "string" && CLOSED_MESSAGES.has(message)) return true;
  }
  return false;
}

/**
 * The SQLSTATE of `e` when it says the database refused the proxy's login (28000, 28P01), else null. Follows
 * `cause`, as {@link isDatabaseUnavailable} does.
 */
export function databaseLoginRefused(e: unknown): string | null {
  for (const { code } of causeChain(e)) {
    if (typeof code === "string" && LOGIN_REFUSED_SQLSTATES.has(code)) return code;
  }
  return null;
}

/**
 * Logs a request answered 503 for a database outage. Unreachable, it is a warning: expected while a database
 * restarts, and it ends by itself. A refused login is an error: it lasts until someone fixes the credentials.
 * The SQLSTATE is logged, and the server's message (which names the user, never a password).
 */
export function logDatabaseOutage(
  log: Pick<Logger, "warn" | "error"> | undefined,
  path: string,
  err: unknown,
): void {
  const refused = databaseLoginRefused(err);
  if (refused) {
    log?.error("database refused the proxy's login; answered 503", { path, code: refused, error: err });
  } else log?.warn("database unreachable; answered 503", { path, error: err });
}
