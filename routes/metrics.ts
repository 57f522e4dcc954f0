/**
 * `GET /metrics`: Prometheus text format, optionally behind `Authorization: Bearer <PROXY_METRICS_TOKEN>`.
 */
import { Hono } from "hono";
import type { Services } from "../lib/services.ts";
import { timingSafeEqual } from "../lib/encoding.ts";

/** Mounts `/metrics`. */
export function metricsRoutes(deps: { services: Services; token: string }): Hono {
  const app = new Hono();
  const expected = new TextEncoder().encode(`Bearer ${deps.token}`);
  app.get("/metrics", (c) => {
    if (deps.token !== "") {
      const given = new TextEncoder().encode(c.req.header("authorization") ?? "");
      if (!timingSafeEqual(given, expected)) {
        return c.text("metrics need Authorization: Bearer <token>\n", 401);
      }
    }
    const s = deps.services;
    const rec = s.recorder.stats();
    const breakers = s.breakers.states();
    const memory = Deno.memoryUsage();
    const extra = [
      "# HELP proxy_usage_queue_depth Usage rows waiting in memory for the database.",
      "# TYPE proxy_usage_queue_depth gauge",
      `proxy_usage_queue_depth ${rec.queued}`,
      "# HELP proxy_usage_spooled_rows Usage rows written to the spool file, waiting for replay.",
      "# TYPE proxy_usage_spooled_rows gauge",
      `proxy_usage_spooled_rows ${rec.spooledRows}`,
      "# HELP proxy_usage_flush_errors_total Failed usage flushes (database errors).",
      "# TYPE proxy_usage_flush_errors_total counter",
      `proxy_usage_flush_errors_total ${rec.flushErrors}`,
      "# HELP proxy_usage_flushed_rows_total Usage rows written.",
      "# TYPE proxy_usage_flushed_rows_total counter",
      `proxy_usage_flushed_rows_total ${rec.flushedRows}`,
      "# HELP proxy_circuit_state Circuit state per access key with a non-closed breaker (1 open, 0.5 half-open).",
      "# TYPE proxy_circuit_state gauge",
      ...breakers.map((b) =>
        `proxy_circuit_state{access_key_id="${b.key}",state="${b.state}"} ${b.state === "open" ? 1 : 0.5}`
      ),
      "# HELP proxy_circuits_open Access keys whose circuit is open or half-open.",
      "# TYPE proxy_circuits_open gauge",
      `proxy_circuits_open ${breakers.length}`,
      "# HELP process_resident_memory_bytes Resident memory of the process (what the container limit counts).",
      "# TYPE process_resident_memory_bytes gauge",
      `process_resident_memory_bytes ${memory.rss}`,
      "# HELP deno_heap_used_bytes JavaScript heap in use.",
      "# TYPE deno_heap_used_bytes gauge",
      `deno_heap_used_bytes ${memory.heapUsed}`,
      "# HELP deno_heap_total_bytes JavaScript heap reserved.",
      "# TYPE deno_heap_total_bytes gauge",
      `deno_heap_total_bytes ${memory.heapTotal}`,
      "# HELP deno_external_memory_bytes Memory outside the JavaScript heap held by JavaScript objects (buffers).",
      "# TYPE deno_external_memory_bytes gauge",
      `deno_external_memory_bytes ${memory.external}`,
      "# HELP proxy_access_key_cache_entries Cached access-key lookups.",
      "# TYPE proxy_access_key_cache_entries gauge",
      `proxy_access_key_cache_entries ${s.resolver.size}`,
    ];
    return c.body(s.metrics.render(extra), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    });
  });
  return app;
}
