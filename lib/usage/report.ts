/**
 * Usage reports for the JSON API and the console: totals, a time series in `PROXY_TIMEZONE` buckets, breakdowns
 * by model and provider, top users, latency percentiles and recent requests.
 *
 * @example
 * ```ts
 * const report = await usageReport(db, parseRange({ from, to, granularity: "hour" }, now, "Asia/Seoul"), "Asia/Seoul");
 * report.totals.requests;
 * ```
 */
import type { Db } from "../db/db.ts";
import * as usage from "../db/usage.ts";
import { HttpError } from "../errors.ts";
import { refuseNulParameter } from "../admin/schemas.ts";
import { bucketStart } from "./budget_period.ts";

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
/** A date, or a date and time with an optional zone: 2026-05-01, 2026-05-01T09:30, 2026-05-01T09:30:00.000+09:00. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * `from` and `to` exactly as given (ISO 8601), each optional: for lists of requests, which have no buckets to
 * round to. 400 naming the parameter when one is malformed or `from` is not before `to`.
 */
export function parseTimeRange(params: Record<string, string | undefined>): { from?: Date; to?: Date } {
  const date = (name: string) => {
    const raw = params[name];
    if (raw === undefined || raw === "") return undefined;
    // ISO 8601 only: `new Date` also reads "1" or "5/1/2026", in the server's own zone.
    const d = ISO_TIME.test(raw) ? new Date(raw) : new Date(Number.NaN);
    if (Number.isNaN(d.getTime())) {
      throw new HttpError(
        400,
        "invalid_request_error",
        `${name}: expected an ISO 8601 time such as 2026-05-01T00:00:00Z`,
        {},
        name,
      );
    }
    // Years the database and the zone arithmetic both handle; far-off ones failed in PostgreSQL (500) or
    // wrapped round (two-digit years read as 19xx).
    const year = d.getUTCFullYear();
    if (year < 1970 || year > 9999) {
      throw new HttpError(
        400,
        "invalid_request_error",
        `${name}: expected a time between 1970 and 9999, got ${JSON.stringify(raw.slice(0, 40))}`,
        {},
        name,
      );
    }
    return d;
  };
  const from = date("from");
  const to = date("to");
  if (from && to && from.getTime() >= to.getTime()) {
    throw new HttpError(400, "invalid_request_error", "from: must be before to", {}, "from");
  }
  return { from, to };
}

/**
 * Validates query parameters: `from`/`to` (ISO 8601; default: the last 24 h), `granularity` (`hour` | `day`,
 * default by span), and the optional filters. Bounds are aligned to buckets of the time zone.
 */
export function parseReportQuery(
  params: Record<string, string | undefined>,
  now: Date,
  timeZone: string,
): ReportQuery {
  const range = parseTimeRange(params);
  const to = range.to ?? now;
  const from = range.from ?? new Date(to.getTime() - 24 * 3600_000);
  if (from.getTime() >= to.getTime()) {
    throw new HttpError(400, "invalid_request_error", "from: must be before to", {}, "from");
  }
  const span = to.getTime() - from.getTime();
  const g = params.granularity;
  if (g !== undefined && g !== "" && g !== "hour" && g !== "day") {
    throw new HttpError(400, "invalid_request_error", "granularity: expected hour or day", {}, "granularity");
  }
  const granularity: "hour" | "day" = g === "hour" || g === "day" ? g : span > 3 * 86400_000 ? "day" : "hour";
  if (granularity === "hour" && span > 93 * 86400_000) {
    throw new HttpError(
      400,
      "invalid_request_error",
      "granularity: hour is limited to 93 days; use day",
      {},
      "granularity",
    );
  }
  const filters = parseUsageFilters(params);
  return {
    // Whole buckets: the first bucket containing `from`, up to the end of the bucket containing `to`.
    from: bucketStart(from, granularity, timeZone),
    to,
    granularity,
    ...filters,
  };
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

/** Builds the full report. */
export async function usageReport(
  db: Db,
  q: ReportQuery,
  timeZone: string,
  topLimit = 10,
): Promise<UsageReport> {
  const [totals, series, byModel, byProvider, top, pct] = await Promise.all([
    usage.usageTotals(db, q, q.granularity),
    usage.usageSeries(db, q, q.granularity),
    usage.usageBreakdown(db, q, q.granularity, "model"),
    usage.usageBreakdown(db, q, q.granularity, "provider"),
    usage.topUsers(db, q, q.granularity, topLimit),
    usage.latencyPercentiles(db, q),
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
