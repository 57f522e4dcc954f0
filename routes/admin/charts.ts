/**
 * Turns usage reports into chart props: complete bucket sequences (empty buckets as zeros, labels in the
 * console's time zone) and the dashboard's chart definitions.
 */
import type { UsageTotals } from "../../lib/db/usage.ts";
import type { UsageReport } from "../../lib/usage/report.ts";
import { bucketStart } from "../../lib/usage/budget_period.ts";
import { fmtBucket } from "../../components/format.ts";
import type { UsageChartProps } from "../../islands/UsageChart.tsx";

/** Tailwind colours used by the charts (hex, since the canvas is not styled by CSS). */
export const COLORS = {
  input: "#6366f1", // indigo-500
  output: "#0ea5e9", // sky-500
  cacheRead: "#10b981", // emerald-500
  cacheWrite: "#f59e0b", // amber-500
  requests: "#6366f1",
  errors: "#f43f5e", // rose-500
  fallback: "#8b5cf6", // violet-500
  cost: "#6366f1",
  anthropic: "#0ea5e9",
  bedrock: "#8b5cf6",
  other: ["#6366f1", "#10b981", "#f59e0b", "#f43f5e", "#64748b", "#ec4899", "#14b8a6", "#84cc16"],
};

const MAX_BUCKETS = 2400;

/** Every bucket from `from` to `to` (exclusive), with the report's rows where it has them and zeros elsewhere. */
export function fillSeries(
  report: Pick<UsageReport, "series" | "from" | "to" | "granularity">,
  timeZone: string,
): Array<UsageTotals & { bucket: Date }> {
  const byTime = new Map(report.series.map((row) => [new Date(row.bucket).getTime(), row]));
  const out: Array<UsageTotals & { bucket: Date }> = [];
  const step = report.granularity === "hour" ? 3600_000 : 26 * 3600_000;
  let t = bucketStart(report.from, report.granularity, timeZone).getTime();
  const end = report.to.getTime();
  while (t < end && out.length < MAX_BUCKETS) {
    out.push(byTime.get(t) ?? { bucket: new Date(t), ...ZERO });
    let next = bucketStart(new Date(t + step), report.granularity, timeZone).getTime();
    if (next <= t) next = t + 3600_000;
    t = next;
  }
  // Rows outside the computed sequence (should not happen) are kept rather than dropped.
  const seen = new Set(out.map((r) => r.bucket.getTime()));
  for (const row of report.series) {
    if (!seen.has(new Date(row.bucket).getTime())) out.push({ ...row, bucket: new Date(row.bucket) });
  }
  return out.sort((a, b) => a.bucket.getTime() - b.bucket.getTime());
}

const ZERO: UsageTotals = {
  requests: 0,
  errors: 0,
  fallbacks: 0,
  input_tokens: 0,
  output_tokens: 0,
  cache_read_tokens: 0,
  cache_creation_tokens: 0,
  cost_usd: 0,
  unpriced_requests: 0,
  latency_ms_sum: 0,
};

/** Stacked tokens per bucket. */
export function tokensChart(
  rows: Array<UsageTotals & { bucket: Date }>,
  granularity: "hour" | "day",
  timeZone: string,
  title = "Tokens over time",
): UsageChartProps {
  return {
    kind: "bar",
    title,
    stacked: true,
    labels: rows.map((r) => fmtBucket(r.bucket, granularity, timeZone)),
    series: [
      { label: "Input", data: rows.map((r) => Number(r.input_tokens)), color: COLORS.input },
      { label: "Output", data: rows.map((r) => Number(r.output_tokens)), color: COLORS.output },
      { label: "Cache read", data: rows.map((r) => Number(r.cache_read_tokens)), color: COLORS.cacheRead },
      {
        label: "Cache write",
        data: rows.map((r) => Number(r.cache_creation_tokens)),
        color: COLORS.cacheWrite,
      },
    ],
  };
}

/** Requests per bucket (bars) with the fallback rate (line, right axis). */
export function requestsChart(
  rows: Array<UsageTotals & { bucket: Date }>,
  granularity: "hour" | "day",
  timeZone: string,
): UsageChartProps {
  return {
    kind: "bar",
    title: "Requests and fallback rate over time",
    labels: rows.map((r) => fmtBucket(r.bucket, granularity, timeZone)),
    format2: "percent",
    series: [
      { label: "Requests", data: rows.map((r) => Number(r.requests)), color: COLORS.requests },
      { label: "Errors", data: rows.map((r) => Number(r.errors)), color: COLORS.errors },
      {
        label: "Fallback rate",
        type: "line",
        axis: "y2",
        data: rows.map((
          r,
        ) => (Number(r.requests) > 0 ? round4(Number(r.fallbacks) / Number(r.requests)) : 0)),
        color: COLORS.fallback,
      },
    ],
  };
}

/** Cost per model, largest first (at most 10 bars; the rest summed as "other"). */
export function costByModelChart(rows: UsageReport["by_model"]): UsageChartProps {
  const sorted = [...rows].sort((a, b) => Number(b.cost_usd) - Number(a.cost_usd));
  const top = sorted.slice(0, 10);
  const rest = sorted.slice(10).reduce((n, r) => n + Number(r.cost_usd), 0);
  const labels = top.map((r) => r.label || "(unknown)");
  const data = top.map((r) => round6(Number(r.cost_usd)));
  if (rest > 0) {
    labels.push("other models");
    data.push(round6(rest));
  }
  return {
    kind: "bar",
    title: "Cost by model",
    horizontal: true,
    format: "usd",
    size: "sm",
    labels,
    series: [{ label: "Cost", data, color: COLORS.cost }],
  };
}

/** Requests per provider. */
export function providerChart(rows: UsageReport["by_provider"]): UsageChartProps {
  return {
    kind: "doughnut",
    title: "Provider split (requests)",
    size: "sm",
    labels: rows.map((r) => r.label),
    series: [{
      label: "Requests",
      data: rows.map((r) => Number(r.requests)),
      colors: rows.map((r, i) =>
        r.label === "anthropic"
          ? COLORS.anthropic
          : r.label === "bedrock"
          ? COLORS.bedrock
          : COLORS.other[i % 8]
      ),
    }],
  };
}

/** Top users by cost. */
export function topUsersChart(rows: UsageReport["top_users"]): UsageChartProps {
  return {
    kind: "bar",
    title: "Top users by cost",
    horizontal: true,
    format: "usd",
    size: "sm",
    labels: rows.map((r) => r.email ?? r.user_id),
    series: [{ label: "Cost", data: rows.map((r) => round6(Number(r.cost_usd))), color: COLORS.cost }],
  };
}

function round4(n: number): number {
  return Math.round(n * 1e4) / 1e4;
}
function round6(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
