/**
 * SQL for usage: the recorder's batched write, and the read side (totals, series, top users, recent requests).
 */
import type { Queryable } from "./db.ts";
import { join, raw, sql, type SqlFragment } from "./sql.ts";

/** One proxied request's usage, as the recorder queues it. */
export interface UsageRecord {
  requestId: string;
  accessKeyId: string;
  userId: string;
  messageId: string | null;
  model: string | null;
  modelServed: string | null;
  stream: boolean;
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens: number;
  cacheCreationInputTokens: number;
  provider: "anthropic" | "bedrock";
  isFallback: boolean;
  fallbackReason: string | null;
  statusCode: number;
  errorType: string | null;
  stopReason: string | null;
  latencyMs: number;
  timeToFirstByteMs: number | null;
  costUsd: number | null;
  /**
   * True when `outputTokens` is an estimate from the text relayed: the answer was cut short before the final
   * count came. Absent in spool lines written before it existed.
   */
  outputEstimated?: boolean;
  /**
   * What besides tokens set the price, as the answer's usage said: `speed` (`"fast"`), `inference_geo` (`"us"`),
   * web searches. Absent in spool lines written before they were kept, and when the answer gave none.
   */
  speed?: string | null;
  inferenceGeo?: string | null;
  webSearchRequests?: number;
  /** ISO timestamp (a string, so records survive the JSON spool unchanged). */
  createdAt: string;
}

/** One additive aggregate increment. */
export interface AggregateDelta {
  accessKeyId: string;
  userId: string;
  timeBucket: string;
  granularity: "hour" | "day";
  provider: string;
  model: string;
  isFallback: boolean;
  requests: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheCreationTokens: number;
  costUsd: number;
  /** Requests with tokens and no price: their cost is not in `costUsd`. */
  unpricedRequests: number;
  latencyMs: number;
}

/**
 * Inserts usage rows in one statement; rows whose `request_id` already exists are skipped. Returns the request ids
 * actually inserted, so aggregates are only incremented for new rows (a replay never counts twice).
 *
 * The rows travel as one JSON parameter: `JSON.stringify` is native, where rendering 21 array parameters was
 * several milliseconds of the proxy's event loop per flush.
 */
export async function insertUsageRows(q: Queryable, rows: UsageRecord[]): Promise<Set<string>> {
  if (rows.length === 0) return new Set();
  const json = JSON.stringify(rows.map((r) => ({
    request_id: r.requestId,
    access_key_id: r.accessKeyId,
    user_id: r.userId,
    message_id: r.messageId,
    model: r.model,
    model_served: r.modelServed,
    stream: r.stream,
    input_tokens: r.inputTokens,
    output_tokens: r.outputTokens,
    cache_read: r.cacheReadInputTokens,
    cache_creation: r.cacheCreationInputTokens,
    provider: r.provider,
    is_fallback: r.isFallback,
    fallback_reason: r.fallbackReason,
    status_code: r.statusCode,
    error_type: r.errorType,
    stop_reason: r.stopReason,
    latency_ms: r.latencyMs,
    ttfb_ms: r.timeToFirstByteMs,
    cost_usd: r.costUsd === null ? null : r.costUsd.toFixed(6),
    output_estimated: r.outputEstimated === true,
    speed: r.speed ?? null,
    inference_geo: r.inferenceGeo ?? null,
    web_search_requests: r.webSearchRequests ?? 0,
    created_at: r.createdAt,
  })));
  const inserted = await q.query<{ request_id: string }>(sql`
    INSERT INTO token_usages (request_id, access_key_id, user_id, message_id, model, model_served, stream,
      input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens, provider, is_fallback,
      fallback_reason, status_code, error_type, stop_reason, latency_ms, time_to_first_byte_ms, cost_usd,
      output_estimated, speed, inference_geo, web_search_requests, created_at)
    SELECT t.request_id, k.id, u.id, t.message_id, t.model, t.model_served, t.stream, t.input_tokens,
      t.output_tokens, t.cache_read, t.cache_creation, t.provider, t.is_fallback, t.fallback_reason, t.status_code,
      t.error_type, t.stop_reason, t.latency_ms, t.ttfb_ms, t.cost_usd, t.output_estimated, t.speed, t.inference_geo,
      t.web_search_requests, t.created_at
    -- Bound as text: postgres.js would serialise a string bound as jsonb into a JSON string.
    FROM jsonb_to_recordset(${json}::text::jsonb) AS t(request_id text, access_key_id uuid, user_id uuid,
      message_id text, model text, model_served text, stream boolean, input_tokens int, output_tokens int,
      cache_read int, cache_creation int, provider text, is_fallback boolean, fallback_reason text, status_code int,
      error_type text, stop_reason text, latency_ms int, ttfb_ms int, cost_usd numeric, output_estimated boolean,
      speed text, inference_geo text, web_search_requests int, created_at timestamptz)
    -- A key or user hard-deleted meanwhile: keep the row, unlinked (the seed's ON DELETE SET NULL).
    LEFT JOIN access_keys k ON k.id = t.access_key_id
    LEFT JOIN users u ON u.id = t.user_id
    ON CONFLICT (request_id) DO NOTHING
    RETURNING request_id`);
  return new Set(inserted.map((r) => r.request_id));
}

/** Adds deltas to `usage_aggregates` (insert or increment), skipping keys that no longer exist. */
export async function addAggregates(q: Queryable, deltas: AggregateDelta[]): Promise<void> {
  if (deltas.length === 0) return;
  const json = JSON.stringify(deltas.map((d) => ({
    access_key_id: d.accessKeyId,
    user_id: d.userId,
    time_bucket: d.timeBucket,
    granularity: d.granularity,
    provider: d.provider,
    model: d.model,
    is_fallback: d.isFallback,
    requests: d.requests,
    errors: d.errors,
    input_tokens: d.inputTokens,
    output_tokens: d.outputTokens,
    cache_read: d.cacheReadTokens,
    cache_creation: d.cacheCreationTokens,
    cost: d.costUsd.toFixed(6),
    unpriced: d.unpricedRequests,
    latency: d.latencyMs,
  })));
  await q.query(sql`
    INSERT INTO usage_aggregates AS a (access_key_id, user_id, time_bucket, granularity, provider, model, is_fallback,
      request_count, error_count, total_input_tokens, total_output_tokens, total_cache_read_tokens,
      total_cache_creation_tokens, total_cost_usd, unpriced_request_count, total_latency_ms)
    SELECT t.access_key_id, u.id, t.time_bucket, t.granularity, t.provider, t.model, t.is_fallback, t.requests,
      t.errors, t.input_tokens, t.output_tokens, t.cache_read, t.cache_creation, t.cost, t.unpriced, t.latency
    -- Bound as text: postgres.js would serialise a string bound as jsonb into a JSON string.
    FROM jsonb_to_recordset(${json}::text::jsonb) AS t(access_key_id uuid, user_id uuid, time_bucket timestamptz,
      granularity text, provider text, model text, is_fallback boolean, requests bigint, errors bigint,
      input_tokens bigint, output_tokens bigint, cache_read bigint, cache_creation bigint, cost numeric,
      unpriced integer, latency bigint)
    JOIN access_keys k ON k.id = t.access_key_id
    LEFT JOIN users u ON u.id = t.user_id
    ON CONFLICT (access_key_id, time_bucket, granularity, provider, model, is_fallback) DO UPDATE SET
      request_count = a.request_count + EXCLUDED.request_count,
      error_count = a.error_count + EXCLUDED.error_count,
      total_input_tokens = a.total_input_tokens + EXCLUDED.total_input_tokens,
      total_output_tokens = a.total_output_tokens + EXCLUDED.total_output_tokens,
      total_cache_read_tokens = a.total_cache_read_tokens + EXCLUDED.total_cache_read_tokens,
      total_cache_creation_tokens = a.total_cache_creation_tokens + EXCLUDED.total_cache_creation_tokens,
      total_cost_usd = a.total_cost_usd + EXCLUDED.total_cost_usd,
      unpriced_request_count = a.unpriced_request_count + EXCLUDED.unpriced_request_count,
      total_latency_ms = a.total_latency_ms + EXCLUDED.total_latency_ms`);
}

/** Filters for usage queries. */
export interface UsageFilter {
  from: Date;
  to: Date;
  userId?: string;
  accessKeyId?: string;
  provider?: string;
  model?: string;
}

function aggregateWhere(f: UsageFilter, granularity: "hour" | "day"): SqlFragment {
  const conds: SqlFragment[] = [
    sql`a.granularity = ${granularity}`,
    sql`a.time_bucket >= ${f.from}`,
    sql`a.time_bucket < ${f.to}`,
  ];
  if (f.userId) conds.push(sql`a.user_id = ${f.userId}`);
  if (f.accessKeyId) conds.push(sql`a.access_key_id = ${f.accessKeyId}`);
  if (f.provider) conds.push(sql`a.provider = ${f.provider}`);
  if (f.model) conds.push(sql`a.model = ${f.model}`);
  return join(conds, sql` AND `);
}

/** Totals row shape shared by totals and series. */
export interface UsageTotals {
  requests: number;
  errors: number;
  fallbacks: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
  cost_usd: number;
  /** Requests with tokens and no price, whose cost `cost_usd` leaves out. */
  unpriced_requests: number;
  latency_ms_sum: number;
}

const TOTALS = raw(`coalesce(sum(a.request_count), 0) AS requests, coalesce(sum(a.error_count), 0) AS errors,
  coalesce(sum(CASE WHEN a.is_fallback THEN a.request_count ELSE 0 END), 0) AS fallbacks,
  coalesce(sum(a.total_input_tokens), 0) AS input_tokens, coalesce(sum(a.total_output_tokens), 0) AS output_tokens,
  coalesce(sum(a.total_cache_read_tokens), 0) AS cache_read_tokens,
  coalesce(sum(a.total_cache_creation_tokens), 0) AS cache_creation_tokens,
  coalesce(sum(a.total_cost_usd), 0) AS cost_usd, coalesce(sum(a.unpriced_request_count), 0) AS unpriced_requests,
  coalesce(sum(a.total_latency_ms), 0) AS latency_ms_sum`);

/** Totals over the filter's range from the aggregates. */
export async function usageTotals(
  q: Queryable,
  f: UsageFilter,
  granularity: "hour" | "day",
): Promise<UsageTotals> {
  const [row] = await q.query<UsageTotals>(
    sql`SELECT ${TOTALS} FROM usage_aggregates a WHERE ${aggregateWhere(f, granularity)}`,
  );
  return row;
}

/** Per-bucket totals over the range. */
export async function usageSeries(
  q: Queryable,
  f: UsageFilter,
  granularity: "hour" | "day",
): Promise<Array<UsageTotals & { bucket: Date }>> {
  return await q.query(sql`SELECT a.time_bucket AS bucket, ${TOTALS} FROM usage_aggregates a
    WHERE ${aggregateWhere(f, granularity)} GROUP BY a.time_bucket ORDER BY a.time_bucket`);
}

/** Totals per model and per provider over the range. */
export async function usageBreakdown(
  q: Queryable,
  f: UsageFilter,
  granularity: "hour" | "day",
  by: "model" | "provider",
): Promise<Array<UsageTotals & { label: string }>> {
  const column = raw(by === "model" ? "a.model" : "a.provider");
  return await q.query(sql`SELECT ${column} AS label, ${TOTALS} FROM usage_aggregates a
    WHERE ${aggregateWhere(f, granularity)} GROUP BY ${column} ORDER BY cost_usd DESC, requests DESC`);
}

/** Users ranked by cost, then tokens, over the range. */
export async function topUsers(
  q: Queryable,
  f: UsageFilter,
  granularity: "hour" | "day",
  limit: number,
  offset = 0,
): Promise<Array<UsageTotals & { user_id: string; email: string | null }>> {
  // The user id breaks ties, so pages neither repeat nor skip users of equal cost.
  return await q.query(sql`SELECT a.user_id, u.email, ${TOTALS} FROM usage_aggregates a
    LEFT JOIN users u ON u.id = a.user_id
    WHERE ${aggregateWhere(f, granularity)} AND a.user_id IS NOT NULL
    GROUP BY a.user_id, u.email
    ORDER BY cost_usd DESC, (sum(a.total_input_tokens) + sum(a.total_output_tokens)) DESC, a.user_id
    LIMIT ${limit} OFFSET ${offset}`);
}

/** A recent request for the requests list. */
export interface RequestRow {
  id: number;
  request_id: string;
  created_at: Date;
  user_id: string | null;
  email: string | null;
  access_key_id: string | null;
  key_prefix: string | null;
  model: string | null;
  model_served: string | null;
  provider: string;
  is_fallback: boolean;
  fallback_reason: string | null;
  status_code: number;
  error_type: string | null;
  stream: boolean;
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  cost_usd: number | null;
  /** True when `output_tokens` is an estimate: the answer was cut short before its final count. */
  output_estimated: boolean;
  /** `"fast"` when the request ran in fast mode (billed at a multiple); null when the answer did not say. */
  speed: string | null;
  /** `"us"` for US-only inference (billed 1.1×); null when the answer did not say. */
  inference_geo: string | null;
  /** Web searches the answer ran, billed per search. */
  web_search_requests: number;
  latency_ms: number;
  time_to_first_byte_ms: number | null;
}

/**
 * How a list of requests can be ordered: by time, or the most expensive, slowest or largest first (all tokens:
 * input, output, cache read and cache write, as everywhere else).
 */
export const REQUEST_ORDERS = ["newest", "oldest", "cost", "latency", "tokens"] as const;
/** One of {@link REQUEST_ORDERS}. */
export type RequestOrder = typeof REQUEST_ORDERS[number];

/** Whether `value` names one of {@link REQUEST_ORDERS}. */
export function isRequestOrder(value: string): value is RequestOrder {
  return (REQUEST_ORDERS as readonly string[]).includes(value);
}

const ORDER_BY: Record<RequestOrder, SqlFragment> = {
  newest: sql`t.created_at DESC, t.id DESC`,
  oldest: sql`t.created_at, t.id`,
  // Unpriced requests (a model without a price) last, not first as NULLs sort in a descending order.
  cost: sql`t.cost_usd DESC NULLS LAST, t.created_at DESC, t.id DESC`,
  latency: sql`t.latency_ms DESC, t.created_at DESC, t.id DESC`,
  tokens: sql`(t.input_tokens::bigint + t.output_tokens + t.cache_read_input_tokens +
    t.cache_creation_input_tokens) DESC, t.created_at DESC, t.id DESC`,
};

/** Requests with filters and paging, newest first unless `order` says otherwise. */
export async function recentRequests(
  q: Queryable,
  f: Partial<UsageFilter> & { status?: "ok" | "error"; order?: RequestOrder; limit: number; offset: number },
): Promise<{ items: RequestRow[]; total: number }> {
  const conds: SqlFragment[] = [sql`TRUE`];
  if (f.from) conds.push(sql`t.created_at >= ${f.from}`);
  if (f.to) conds.push(sql`t.created_at < ${f.to}`);
  if (f.userId) conds.push(sql`t.user_id = ${f.userId}`);
  if (f.accessKeyId) conds.push(sql`t.access_key_id = ${f.accessKeyId}`);
  if (f.provider) conds.push(sql`t.provider = ${f.provider}`);
  if (f.model) conds.push(sql`t.model = ${f.model}`);
  if (f.status === "ok") conds.push(sql`t.status_code < 400 AND t.error_type IS NULL`);
  if (f.status === "error") conds.push(sql`(t.status_code >= 400 OR t.error_type IS NOT NULL)`);
  const where = join(conds, sql` AND `);
  const items = await q.query<RequestRow>(sql`
    SELECT t.id, t.request_id, t.created_at, t.user_id, u.email, t.access_key_id, k.key_prefix, t.model,
      t.model_served, t.provider, t.is_fallback, t.fallback_reason, t.status_code, t.error_type, t.stream,
      t.input_tokens, t.output_tokens, t.cache_read_input_tokens, t.cache_creation_input_tokens, t.cost_usd,
      t.output_estimated, t.speed, t.inference_geo, t.web_search_requests, t.latency_ms, t.time_to_first_byte_ms
    FROM token_usages t LEFT JOIN users u ON u.id = t.user_id LEFT JOIN access_keys k ON k.id = t.access_key_id
    WHERE ${where} ORDER BY ${ORDER_BY[f.order ?? "newest"]} LIMIT ${f.limit} OFFSET ${f.offset}`);
  const [{ total }] = await q.query<{ total: number }>(
    sql`SELECT count(*) AS total FROM token_usages t WHERE ${where}`,
  );
  return { items, total };
}

/** Latency percentiles over raw rows in the range (aggregates cannot give percentiles). */
export async function latencyPercentiles(
  q: Queryable,
  f: UsageFilter,
): Promise<{ p50: number | null; p95: number | null }> {
  const conds: SqlFragment[] = [sql`t.created_at >= ${f.from}`, sql`t.created_at < ${f.to}`];
  if (f.userId) conds.push(sql`t.user_id = ${f.userId}`);
  if (f.accessKeyId) conds.push(sql`t.access_key_id = ${f.accessKeyId}`);
  if (f.provider) conds.push(sql`t.provider = ${f.provider}`);
  if (f.model) conds.push(sql`t.model = ${f.model}`);
  const [row] = await q.query<{ p50: number | null; p95: number | null }>(sql`
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t.latency_ms) AS p50,
      percentile_cont(0.95) WITHIN GROUP (ORDER BY t.latency_ms) AS p95
    FROM token_usages t WHERE ${join(conds, sql` AND `)}`);
  return { p50: row.p50 === null ? null : Number(row.p50), p95: row.p95 === null ? null : Number(row.p95) };
}

/** A user's Bedrock spend since `from` (for budgets), from the day aggregates plus nothing else. */
export async function bedrockSpendSince(q: Queryable, userId: string, from: Date): Promise<number> {
  const [row] = await q.query<{ spend: number }>(sql`
    SELECT coalesce(sum(total_cost_usd), 0) AS spend FROM usage_aggregates
    WHERE user_id = ${userId} AND granularity = 'hour' AND provider = 'bedrock' AND time_bucket >= ${from}`);
  return Number(row.spend);
}

/**
 * Deletes one batch of `token_usages` rows older than `cutoff`, unless another replica holds the retention lock.
 * Returns the rows deleted, or null when the lock was taken elsewhere. Aggregates are kept.
 */
export async function deleteOldUsageBatch(
  q: { begin<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> },
  cutoff: Date,
  batch: number,
): Promise<number | null> {
  return await q.begin(async (tx) => {
    const [lock] = await tx.query<{ ok: boolean }>(sql`SELECT pg_try_advisory_xact_lock(727310002) AS ok`);
    if (!lock.ok) return null;
    const deleted = await tx.query(sql`DELETE FROM token_usages WHERE id IN (
      SELECT id FROM token_usages WHERE created_at < ${cutoff} ORDER BY created_at LIMIT ${batch}) RETURNING id`);
    return deleted.length;
  });
}
