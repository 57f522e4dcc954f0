/**
 * `GET /metrics`: Prometheus text format, optionally behind `Authorization: Bearer <PROXY_METRICS_TOKEN>`.
 */
import { Hono } from "hono";
import type { Services } from "../lib/services.ts";
import { timingSafeEqual } from "../lib/encoding.ts";
import { metricLines } from "../lib/proxy/metrics.ts";

/** Mounts `/metrics`. */
export function metricsRoutes(deps: { services: Services; token: string }): Hono {
  const app = new Hono();
  const expected = new TextEncoder().encode(`Bearer ${deps.token}`);
  app.get("/metrics", (c) => {
    // Only as written: the load balancer answers /metrics itself (404), and a percent-encoded spelling
    // (/%6detrics), which the router decodes, must not reach the task past that rule.
    if (new URL(c.req.url).pathname !== "/metrics") return c.notFound();
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
      ...metricLines(
        "proxy_usage_queue_depth",
        "gauge",
        "Usage rows waiting in memory for the database.",
        rec.queued,
      ),
      ...metricLines(
        "proxy_usage_spooled_rows",
        "gauge",
        "Usage rows written to the spool file, waiting for replay.",
        rec.spooledRows,
      ),
      ...metricLines(
        "proxy_usage_flush_errors_total",
        "counter",
        "Failed usage flushes (database errors).",
        rec.flushErrors,
      ),
      ...metricLines("proxy_usage_flushed_rows_total", "counter", "Usage rows written.", rec.flushedRows),
      ...metricLines(
        "proxy_usage_rejected_rows_total",
        "counter",
        "Usage rows the database refused as data: logged as replayable lines, then dropped.",
        rec.rejectedRows,
      ),
      ...metricLines(
        "proxy_usage_expired_rows_total",
        "counter",
        "Replayed usage rows older than the retention window: logged as replayable lines, not written.",
        rec.expiredRows,
      ),
      "# HELP proxy_circuit_state Circuit state per access key with a non-closed breaker (1 open, 0.5 half-open).",
      "# TYPE proxy_circuit_state gauge",
      ...breakers.map((b) =>
        `proxy_circuit_state{access_key_id="${b.key}",state="${b.state}"} ${b.state === "open" ? 1 : 0.5}`
      ),
      ...metricLines(
        "proxy_circuits_open",
        "gauge",
        "Access keys whose circuit is open or half-open.",
        breakers.length,
      ),
      ...metricLines(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory of the process (what the container limit counts).",
        memory.rss,
      ),
      ...metricLines("deno_heap_used_bytes", "gauge", "JavaScript heap in use.", memory.heapUsed),
      ...metricLines("deno_heap_total_bytes", "gauge", "JavaScript heap reserved.", memory.heapTotal),
      ...metricLines(
        "deno_external_memory_bytes",
        "gauge",
        "Memory outside the JavaScript heap held by JavaScript objects (buffers).",
        memory.external,
      ),
      ...metricLines(
        "proxy_client_socket_watch_active",
        "gauge",
        "1 when clients leaving before their answer's headers are noticed from /proc/net/tcp (needs --allow-all), else 0.",
        s.peers.active ? 1 : 0,
      ),
      ...metricLines(
        "proxy_clients_left_before_answer_total",
        "counter",
        "Requests cancelled because the socket watch saw their client close its connection before the answer.",
        s.peers.noticed,
      ),
      ...metricLines(
        "proxy_access_key_cache_entries",
        "gauge",
        "Cached access-key lookups.",
        s.resolver.size,
      ),
    ];
    return c.body(s.metrics.render(extra), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    });
  });
  return app;
}
