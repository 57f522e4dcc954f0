/**
 * Usage reports for the JSON API and the console: totals, a time series in `PROXY_TIMEZONE` buckets, breakdowns
 * by model and provider, top users, latency percentiles and recent requests.
 *
 * @example
 * ```ts
 * const q = parseReportQuery({ from: "2026-05-01", to: "2026-05-02", granularity: "hour" }, now, "Asia/Seoul");
 * const report = await usageReport(db, q, "Asia/Seoul");
 * report.totals.requests;
 * ```
 */
import type { Db } from "../db/db.ts";
import * as usage from "../db/usage.ts";
import { HttpError } from "../errors.ts";
import { refuseNulParameter } from "../admin/schemas.ts";
import { bucketCeil, bucketStart, wallTimeToInstant } from "./budget_period.ts";

/** A validated report range. */
export interface ReportQuery extends usage.UsageFilter {
  granularity: "hour" | "day";
}

/** Summary numbers derived from totals. */
export interface ReportTotals extends usage.UsageTotals {
  fallback_rate: number;
  error_rate: number;
  avg_latency_ms: number | null;
  p50_latency_ms: number | null;
  p95_latency_ms: number | null;
}

/** A full report. */
export interface UsageReport {
  from: Date;
  to: Date;
  granularity: "hour" | "day";
  time_zone: string;
  totals: ReportTotals;
  series: Array<usage.UsageTotals & { bucket: Date }>;
  by_model: Array<usage.UsageTotals & { label: string }>;
  by_provider: Array<usage.UsageTotals & { label: string }>;
  top_users: Array<usage.UsageTotals & { user_id: string; email: string | null }>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** A date, or a date and time with an optional offset: 2026-05-01, 2026-05-01T09:30, 2026-05-01T09:30:00.000+09:00. */
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2}):?(\d{2}))?)?$/i;
// PostgreSQL refuses a five-digit year as JavaScript writes it (+010000-...), so no instant may reach it.
const YEAR_10000 = Date.UTC(10000, 0, 1);
const HOUR_LIMIT_DAYS = 93;

function invalid(name: string, expected: string, raw: string): HttpError {
  return new HttpError(
    400,
    "invalid_request_error",
    `${name}: ${expected}, got ${JSON.stringify(raw.slice(0, 40))}`,
    {},
    name,
  );
}

/**
 * Reads one ISO 8601 time. Without an offset it is a wall-clock time in `timeZone` (`PROXY_TIMEZONE`, the zone
 * the buckets and the console use), so `2026-11-29` is local midnight whatever the server's own zone; with `Z`
 * or `±hh:mm` it is the instant given. See `wallTimeToInstant` for times that DST skips or repeats.
 */
function parseTime(name: string, raw: string, timeZone: string): Date {
  // ISO 8601 only: `new Date` also reads "1" or "5/1/2026", in the server's own zone.
  const m = ISO_TIME.exec(raw);
  if (!m) throw invalid(name, "expected an ISO 8601 time such as 2026-05-01T00:00:00Z", raw);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((v) => v === undefined ? 0 : Number(v));
  // Years the database and the zone arithmetic both handle; far-off ones failed in PostgreSQL (500) or
  // wrapped round (two-digit years read as 19xx).
  if (year < 1970 || year > 9999) throw invalid(name, "expected a time between 1970 and 9999", raw);
  // Each field is checked because Date.UTC rolls impossible ones over: February 30 would become March 2.
  if (month < 1 || month > 12) throw invalid(name, "expected a month from 01 to 12", raw);
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > days) {
    const monthName = new Date(Date.UTC(year, month - 1)).toLocaleString("en", {
      month: "long",
      timeZone: "UTC",
    });
    throw invalid(name, `expected a day from 01 to ${days} (${monthName} ${year} has ${days} days)`, raw);
  }
  if (hour > 23) {
    throw invalid(name, "expected an hour from 00 to 23 (write 24:00 as 00:00 of the next day)", raw);
  }
  if (minute > 59) throw invalid(name, "expected minutes from 00 to 59", raw);
  if (second > 59) throw invalid(name, "expected seconds from 00 to 59", raw);
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, "0"));
  const wall = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  let instant: number;
  if (m[8] === undefined) {
    instant = wallTimeToInstant(new Date(wall), timeZone).getTime();
  } else if (m[9] === undefined) {
    instant = wall;
  } else {
    const [oh, om] = [Number(m[10]), Number(m[11])];
    if (oh > 23 || om > 59) throw invalid(name, "expected a zone offset from -23:59 to +23:59", raw);
    instant = wall - (m[9] === "-" ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  if (instant >= YEAR_10000) throw invalid(name, "expected a time between 1970 and 9999", raw);
  return new Date(instant);
}

/**
 * `from` and `to` exactly as given (ISO 8601), each optional: for lists of requests, which have no buckets to
 * round to. A time without an offset is a wall-clock time in `timeZone`. 400 naming the parameter when one is
 * malformed, names a date or time that does not exist, or `from` is not before `to`.
 */
export function parseTimeRange(
  params: Record<string, string | undefined>,
  timeZone: string,
): { from?: Date; to?: Date } {
  const date = (name: string) => {
    const raw = params[name];
    return raw === undefined || raw === "" ? undefined : parseTime(name, raw, timeZone);
  };
  const from = date("from");
  const to = date("to");
  if (from && to && from.getTime() >= to.getTime()) {
    throw new HttpError(400, "invalid_request_error", "from: must be before to", {}, "from");
  }
  return { from, to };
}

/**
 * Validates query parameters: `from`/`to` (ISO 8601, read as in `parseTimeRange`; default: the last 24 h),
 * `granularity` (`hour` | `day`, default by span), and the optional filters.
 *
 * The range is rounded out to whole buckets of the time zone (`from` down, `to` up), and the result holds the
 * rounded bounds: aggregates only know whole buckets, so totals, series, breakdowns and the percentiles from raw
 * rows all cover exactly this range, and a report that echoes it says what it counted.
 */
export function parseReportQuery(
  params: Record<string, string | undefined>,
  now: Date,
  timeZone: string,
): ReportQuery {
  const range = parseTimeRange(params, timeZone);
  const end = range.to ?? now;
  const start = range.from ?? new Date(end.getTime() - 24 * 3600_000);
  if (start.getTime() >= end.getTime()) {
    const message = range.to ? "from: must be before to" : "from: must be before to, which defaults to now";
    throw new HttpError(400, "invalid_request_error", message, {}, "from");
  }
  const g = params.granularity;
  if (g !== undefined && g !== "" && g !== "hour" && g !== "day") {
    throw new HttpError(400, "invalid_request_error", "granularity: expected hour or day", {}, "granularity");
  }
  const granularity: "hour" | "day" = g === "hour" || g === "day"
    ? g
    : end.getTime() - start.getTime() > 3 * 86400_000
    ? "day"
    : "hour";
  const from = bucketStart(start, granularity, timeZone);
  const to = bucketCeil(end, granularity, timeZone);
  if (to.getTime() >= YEAR_10000) {
    throw invalid(
      "to",
      `expected a time between 1970 and 9999 once rounded up to a whole ${granularity}`,
      params.to ?? end.toISOString(),
    );
  }
  const days = (to.getTime() - from.getTime()) / 86400_000;
  if (granularity === "hour" && days > HOUR_LIMIT_DAYS) {
    throw new HttpError(
      400,
      "invalid_request_error",
      `granularity: hour is limited to ${HOUR_LIMIT_DAYS} days, and from ${from.toISOString()} to ` +
        `${to.toISOString()} (the range rounded out to whole hours) is ${+days.toFixed(2)} days; use day`,
      {},
      "granularity",
    );
  }
  return { from, to, granularity, ...parseUsageFilters(params) };
}

/** Validates the optional filters `user_id`, `access_key_id`, `provider`, `model`. */
export function parseUsageFilters(
  params: Record<string, string | undefined>,
): Pick<usage.UsageFilter, "userId" | "accessKeyId" | "provider" | "model"> {
  for (const name of ["user_id", "access_key_id"]) {
    const v = params[name];
    if (v && !UUID.test(v)) {
      throw new HttpError(400, "invalid_request_error", `${name}: expected a UUID`, {}, name);
    }
  }
  const provider = params.provider || undefined;
  if (provider && provider !== "anthropic" && provider !== "bedrock") {
    throw new HttpError(
      400,
      "invalid_request_error",
      "provider: expected anthropic or bedrock",
      {},
      "provider",
    );
  }
  refuseNulParameter("model", params.model);
  return {
    userId: params.user_id || undefined,
    accessKeyId: params.access_key_id || undefined,
    provider,
    model: params.model || undefined,
  };
}

/**
 * The earliest instant whose request rows are all still kept: retention deletes older ones (aggregates stay).
 * Null when rows are kept for ever (`PROXY_USAGE_RETENTION_DAYS=0`).
 */
export function rawRowsSince(now: Date, retentionDays: number): Date | null {
  return retentionDays > 0 ? new Date(now.getTime() - retentionDays * 86400_000) : null;
}

/**
 * Builds the full report. Totals, series and breakdowns come from the aggregates, kept for ever; latency
 * percentiles need the request rows, so for a range that starts before `rawRowsSince` (see {@link rawRowsSince})
 * they are null rather than figures from whatever rows retention has not reached yet.
 */
export async function usageReport(
  db: Db,
  q: ReportQuery,
  timeZone: string,
  topLimit = 10,
  rawRowsSince: Date | null = null,
): Promise<UsageReport> {
  const percentilesKnown = rawRowsSince === null || q.from.getTime() >= rawRowsSince.getTime();
  const [totals, series, byModel, byProvider, top, pct] = await Promise.all([
    usage.usageTotals(db, q, q.granularity),
    usage.usageSeries(db, q, q.granularity),
    usage.usageBreakdown(db, q, q.granularity, "model"),
    usage.usageBreakdown(db, q, q.granularity, "provider"),
    usage.topUsers(db, q, q.granularity, topLimit),
    percentilesKnown ? usage.latencyPercentiles(db, q) : Promise.resolve({ p50: null, p95: null }),
  ]);
  return {
    from: q.from,
    to: q.to,
    granularity: q.granularity,
    time_zone: timeZone,
    totals: {
      ...totals,
      fallback_rate: totals.requests === 0 ? 0 : totals.fallbacks / totals.requests,
      error_rate: totals.requests === 0 ? 0 : totals.errors / totals.requests,
      avg_latency_ms: totals.requests === 0 ? null : Math.round(totals.latency_ms_sum / totals.requests),
      p50_latency_ms: pct.p50,
      p95_latency_ms: pct.p95,
    },
    series,
    by_model: byModel,
    by_provider: byProvider,
    top_users: top,
  };
}
