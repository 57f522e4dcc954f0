/**
 * Structured logging: one JSON object per line on stdout, with redaction of secrets.
 *
 * Never log an access key (it travels in the URL path), an API key, an Authorization header, a password or a
 * prompt. {@link redactPath} and {@link redactFields} are applied to everything that goes through a {@link Logger}.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "info" });
 * log.info("request", { path: "/ak/ak_abcdefghijkl/v1/messages", status: 200 });
 * // {"time":"…","level":"info","msg":"request","path":"/ak/ak_abcd…/v1/messages","status":200}
 * ```
 */
import type { LogLevelName } from "./config.ts";

const LEVELS: Record<LogLevelName, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names whose values are replaced by `[redacted]` wherever they appear. */
const SECRET_FIELDS = new Set([
  "authorization",
  "x-api-key",
  "api_key",
  "apikey",
  "password",
  "password_hash",
  "secret",
  "token",
  "access_token",
  "aws_secret_access_key",
  "aws_session_token",
  "bedrock_api_key",
  "key",
  "raw_key",
  "cookie",
  "set-cookie",
  "prompt",
  "messages",
  "system",
]);

/** A sink receives a finished log line (without newline); tests capture lines with it. */
export type LogSink = (line: string) => void;

/** The logger every module receives through dependency injection. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line, e.g. a request id. */
  child(fields: Record<string, unknown>): Logger;
  isEnabled(level: LogLevelName): boolean;
}

const encoder = new TextEncoder();
const stdoutSink: LogSink = (line) => {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
};

/** Creates a logger writing JSON lines at or above `level`. */
export function createLogger(
  opts: { level: LogLevelName; sink?: LogSink; fields?: Record<string, unknown>; now?: () => Date },
): Logger {
  const threshold = LEVELS[opts.level];
  const sink = opts.sink ?? stdoutSink;
  const base = opts.fields ?? {};
  const now = opts.now ?? (() => new Date());
  const write = (level: LogLevelName, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < threshold) return;
    const record: Record<string, unknown> = { time: now().toISOString(), level, msg };
    for (const [k, v] of Object.entries(base)) record[k] = redactValue(k, v);
    if (fields) { for (const [k, v] of Object.entries(fields)) record[k] = redactValue(k, v); }
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ time: record.time, level, msg, note: "fields were not serialisable" });
    }
    sink(line);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger({ level: opts.level, sink, fields: { ...base, ...fields }, now }),
    isEnabled: (level) => LEVELS[level] >= threshold,
  };
}

/** A logger that drops everything; for tests that do not look at logs. */
export const silentLogger: Logger = createLogger({ level: "error", sink: () => {} });

/**
 * Reduces an access key in a `/ak/<key>` path to a short prefix, so logs can tell keys apart without holding one;
 * so too a key anywhere else in it (a base URL missing its `/ak/` segment puts the key first in the path).
 *
 * @example
 * ```ts
 * redactPath("/ak/ak_0123456789abcdef/v1/messages?beta=true"); // "/ak/ak_0123…/v1/messages?beta=true"
 * redactPath("/ak_0123456789abcdef/v1/messages"); // "/ak_0123…/v1/messages"
 * ```
 */
export function redactPath(path: string): string {
  return path
    .replace(/\/ak\/([^/?#]*)/g, (_m, key: string) => `/ak/${keyPrefix(key)}`)
    .replace(/ak_[A-Za-z0-9_%-]{5,}/g, (key) => keyPrefix(key));
}

/** The display prefix of an access key: `ak_` and four characters, then an ellipsis. */
export function keyPrefix(key: string): string {
  return `${key.slice(0, 7)}…`;
}

/** Returns a copy of `fields` with secret-named fields replaced and access keys in paths and URLs redacted. */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = redactValue(k, v);
  return out;
}

function redactValue(key: string, value: unknown, depth = 0): unknown {
  if (SECRET_FIELDS.has(key.toLowerCase())) return "[redacted]";
  if (typeof value === "string") return value.includes("ak") ? redactPath(value) : value;
  if (value instanceof Error) return { name: value.name, message: redactPath(value.message) };
  if (value === null || typeof value !== "object" || depth > 4) return value;
  if (Array.isArray(value)) return value.map((v) => redactValue("", v, depth + 1));
  if (value instanceof Headers) {
    const h: Record<string, string> = {};
    value.forEach((v, k) => {
      h[k] = redactValue(k, v, depth + 1) as string;
    });
    return h;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactValue(k, v, depth + 1);
  return out;
}
