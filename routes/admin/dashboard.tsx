/**
 * `GET /admin`: the dashboard. A range (last 24 h, 7 days, 30 days, or custom dates in `PROXY_TIMEZONE`), stat
 * cards (requests, tokens, cost, fallback rate, error rate, latency percentiles) and charts (tokens over time,
 * requests and fallback rate, cost by model, provider split, top users).
 */
import type { Hono } from "hono";
import { HttpError } from "../../lib/errors.ts";
import { parseReportQuery, rawRowsSince, type ReportQuery, usageReport } from "../../lib/usage/report.ts";
import { Layout, PageHeader } from "../../components/Layout.tsx";
import { Card, StatCard } from "../../components/Card.tsx";
import { EmptyState } from "../../components/EmptyState.tsx";
import { Island } from "../../components/Island.tsx";
import { Table } from "../../components/Table.tsx";
import {
  fmtCompact,
  fmtDate,
  fmtDateTime,
  fmtInt,
  fmtMs,
  fmtPct,
  fmtUsd,
  startOfLocalDate,
} from "../../components/format.ts";
import { urls } from "../../components/urls.ts";
import type { RangeName } from "../../islands/RangePicker.tsx";
import {
  costByModelChart,
  fillSeries,
  providerChart,
  requestsChart,
  tokensChart,
  topUsersChart,
} from "./charts.ts";
import {
  type AdminDeps,
  type AdminEnv,
  allTokens,
  noticeFrom,
  publicOrigin,
  render,
  sessionView,
} from "./shared.tsx";

const PRESETS: Record<Exclude<RangeName, "custom">, number> = { "24h": 1, "7d": 7, "30d": 30 };
/** The last date the custom range's To field takes (inclusive: the range runs to the start of the next day). */
const LAST_TO_DATE = "9999-12-30";

/** The range the dashboard shows, with the custom fields' values and errors beside them. */
export interface RangeSelection {
  range: RangeName;
  from: string;
  to: string;
  query: ReportQuery;
  errors: { from?: string; to?: string; range?: string };
}

/** Reads `range`, `from`, `to` (dates in `timeZone`, `to` inclusive) into a report query; errors fall back to 24 h. */
export function rangeSelection(params: Record<string, string>, now: Date, timeZone: string): RangeSelection {
  const errors: RangeSelection["errors"] = {};
  let range = (params.range ?? "24h") as RangeName;
  if (!["24h", "7d", "30d", "custom"].includes(range)) {
    errors.range = "Choose one of the listed ranges.";
    range = "24h";
  }
  const defaultFrom = fmtDate(new Date(now.getTime() - 7 * 86400_000), timeZone);
  const defaultTo = fmtDate(now, timeZone);
  const fromText = params.from || defaultFrom;
  const toText = params.to || defaultTo;
  const preset = (days: number) =>
    parseReportQuery(
      { from: new Date(now.getTime() - days * 86400_000).toISOString(), to: now.toISOString() },
      now,
      timeZone,
    );
  if (range !== "custom") return { range, from: fromText, to: toText, query: preset(PRESETS[range]), errors };

  const from = startOfLocalDate(fromText, timeZone);
  const toDay = startOfLocalDate(toText, timeZone);
  if (!from) errors.from = "Expected a date such as 2026-05-01.";
  if (!toDay) errors.to = "Expected a date such as 2026-05-31.";
  // `to` is inclusive: up to the start of the next day, but not into the future. The day after 9999-12-31 has a
  // five-digit year, which startOfLocalDate (like PostgreSQL) does not take: null, said beside To.
  const nextDay = toDay &&
    startOfLocalDate(fmtDate(new Date(toDay.getTime() + 36 * 3600_000), timeZone), timeZone);
  if (toDay && !nextDay) errors.to = `Expected a date no later than ${LAST_TO_DATE}.`;
  if (from && nextDay) {
    const to = new Date(Math.min(nextDay.getTime(), now.getTime()));
    if (from.getTime() >= to.getTime()) {
      errors.from = from.getTime() > now.getTime()
        ? "Must not be in the future."
        : "Must be on or before To.";
    } else if (to.getTime() - from.getTime() > 400 * 86400_000) {
      errors.from = "The range can span at most 400 days.";
    } else {
      try {
        return {
          range,
          from: fromText,
          to: toText,
          query: parseReportQuery({ from: from.toISOString(), to: to.toISOString() }, now, timeZone),
          errors,
        };
      } catch (e) {
        if (!(e instanceof HttpError)) throw e;
        errors.from = e.message.replace(/^\w+: /, "");
      }
    }
  }
  return { range, from: fromText, to: toText, query: preset(1), errors };
}

/** Registers the dashboard. */
export function dashboardRoutes(admin: Hono<AdminEnv>, deps: AdminDeps): void {
  admin.get("/", async (c) => {
    const tz = deps.config.timezone;
    const now = deps.services.now();
    const sel = rangeSelection(c.req.query(), now, tz);
    const report = await usageReport(
      deps.db,
      sel.query,
      tz,
      10,
      rawRowsSince(now, deps.config.usageRetentionDays),
    );
    const rows = fillSeries(report, tz);
    const t = report.totals;
    const empty = t.requests === 0;
    const tokens = allTokens(t);
    const unpriced = Number(t.unpriced_requests);
    const origin = publicOrigin(c, deps.config.trustForwardedFor);

    return render(
      c,
      <Layout
        title="Dashboard"
        section="dashboard"
        session={sessionView(c)}
        notice={noticeFrom(c)}
        timeZone={tz}
      >
        <PageHeader
          title="Dashboard"
          // The report runs to the end of the current bucket; nothing after now is in it yet.
          subtitle={`${fmtDateTime(report.from, tz)} – ${
            fmtDateTime(new Date(Math.min(report.to.getTime(), now.getTime())), tz)
          } · ${report.granularity === "hour" ? "hourly" : "daily"}`}
        />
        <div class="card mb-6">
          <Island
            name="RangePicker"
            props={{
              action: urls.dashboard,
              range: sel.range,
              from: sel.from,
              to: sel.to,
              timeZone: tz,
              errors: sel.errors,
            }}
          />
        </div>

        <div class="mb-6 grid grid-cols-2 gap-4 md:grid-cols-3 xl:grid-cols-6" data-stat-cards>
          <StatCard
            label="Requests"
            value={fmtInt(t.requests)}
            detail={[["errors", fmtInt(t.errors)], ["fallbacks", fmtInt(t.fallbacks)]]}
          />
          <StatCard
            label="Tokens"
            value={fmtCompact(tokens)}
            detail={[
              ["input", fmtCompact(Number(t.input_tokens))],
              ["output", fmtCompact(Number(t.output_tokens))],
              ["cache read", fmtCompact(Number(t.cache_read_tokens))],
              ["cache write", fmtCompact(Number(t.cache_creation_tokens))],
            ]}
          />
          <StatCard
            label="Cost"
            // Requests of a model without a price add nothing: the total is then a floor, and says so.
            value={`${unpriced > 0 ? "≥ " : ""}${fmtUsd(Number(t.cost_usd))}`}
            tone={unpriced > 0 ? "warn" : "default"}
            detail={[
              ["per request", t.requests ? fmtUsd(Number(t.cost_usd) / t.requests) : "–"],
              ...(unpriced > 0 ? [["unpriced", fmtInt(unpriced)] as [string, string]] : []),
            ]}
          />
          <StatCard
            label="Fallback rate"
            value={fmtPct(t.fallback_rate)}
            tone={t.fallback_rate >= 0.25 ? "warn" : "default"}
            detail={[["to Bedrock", fmtInt(t.fallbacks)]]}
          />
          <StatCard
            label="Error rate"
            value={fmtPct(t.error_rate)}
            tone={t.error_rate >= 0.05 ? "bad" : "default"}
            detail={[["errors", fmtInt(t.errors)]]}
          />
          <StatCard
            label="Latency p50"
            value={fmtMs(t.p50_latency_ms)}
            detail={[["p95", fmtMs(t.p95_latency_ms)], ["mean", fmtMs(t.avg_latency_ms)]]}
          />
        </div>

        {empty
          ? (
            <EmptyState
              title="No requests in this range yet"
              action={<a class="btn btn-primary" href={urls.users}>Go to users</a>}
            >
              <p>
                Create a user, issue an access key on their page, and point Claude Code at the proxy with{" "}
                <code class="break-all rounded bg-slate-100 px-1 py-0.5 text-slate-700">
                  ANTHROPIC_BASE_URL={origin}/ak/&lt;access key&gt;
                </code>. Requests show up here within seconds. Or pick a longer range above.
              </p>
            </EmptyState>
          )
          : (
            <div class="grid grid-cols-1 gap-6 lg:grid-cols-2">
              <Card title="Tokens over time" class="lg:col-span-2" id="chart-tokens">
                <Island name="UsageChart" props={tokensChart(rows, report.granularity, tz)} />
              </Card>
              <Card title="Requests and fallback rate" class="lg:col-span-2" id="chart-requests">
                <Island name="UsageChart" props={requestsChart(rows, report.granularity, tz)} />
              </Card>
              <Card title="Cost by model" id="chart-models">
                <Island name="UsageChart" props={costByModelChart(report.by_model)} />
                <Table head={["Model", ["Requests", "right"], ["Tokens", "right"], ["Cost", "right"]]}>
                  {report.by_model.slice(0, 10).map((m) => (
                    <tr>
                      <td class="max-w-56 truncate" title={m.label}>{m.label || "(unknown)"}</td>
                      <td class="text-right tabular-nums">{fmtInt(m.requests)}</td>
                      <td class="text-right tabular-nums">
                        {fmtCompact(allTokens(m))}
                      </td>
                      <td class="text-right tabular-nums">
                        {fmtUsd(Number(m.cost_usd))}
                        {Number(m.unpriced_requests) > 0 && (
                          <span class="block text-xs text-amber-700" title="no price: not in the cost">
                            {fmtInt(Number(m.unpriced_requests))} unpriced
                          </span>
                        )}
                      </td>
                    </tr>
                  ))}
                </Table>
                {unpriced > 0 && (
                  <p class="mt-3 text-sm text-amber-700" data-unpriced>
                    {fmtInt(unpriced)} {unpriced === 1 ? "request" : "requests"}{" "}
                    used a model the price table has no price for; their cost is not in these totals. Price
                    the model with <code>PROXY_MODEL_PRICING</code> (Settings lists the table).
                  </p>
                )}
              </Card>
              <Card title="Provider split" id="chart-providers">
                <Island name="UsageChart" props={providerChart(report.by_provider)} />
                <Table head={["Provider", ["Requests", "right"], ["Tokens", "right"], ["Cost", "right"]]}>
                  {report.by_provider.map((p) => (
                    <tr>
                      <td>{p.label}</td>
                      <td class="text-right tabular-nums">{fmtInt(p.requests)}</td>
                      <td class="text-right tabular-nums">
                        {fmtCompact(allTokens(p))}
                      </td>
                      <td class="text-right tabular-nums">{fmtUsd(Number(p.cost_usd))}</td>
                    </tr>
                  ))}
                </Table>
              </Card>
              <Card title="Top users" class="lg:col-span-2" id="top-users">
                <div class="grid grid-cols-1 gap-6 lg:grid-cols-2">
                  <Island name="UsageChart" props={topUsersChart(report.top_users)} />
                  <Table head={["User", ["Requests", "right"], ["Tokens", "right"], ["Cost", "right"]]}>
                    {report.top_users.map((u) => (
                      <tr>
                        <td class="max-w-48 truncate">
                          <a class="link" href={urls.user(u.user_id)}>{u.email ?? u.user_id}</a>
                        </td>
                        <td class="text-right tabular-nums">{fmtInt(u.requests)}</td>
                        <td class="text-right tabular-nums">
                          {fmtCompact(allTokens(u))}
                        </td>
                        <td class="text-right tabular-nums">{fmtUsd(Number(u.cost_usd))}</td>
                      </tr>
                    ))}
                  </Table>
                </div>
              </Card>
            </div>
          )}
      </Layout>,
      Object.keys(sel.errors).length > 0 ? 400 : 200,
    );
  });
}
