/**
 * In-process counters and histograms of the proxy, rendered in Prometheus text format by `GET /metrics`.
 * Updating them is a few map operations: cheap enough for the hot path.
 */
import type { UsageRecord } from "../db/usage.ts";

const BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000];

class Histogram {
  readonly counts = new Map<string, { buckets: number[]; sum: number; count: number }>();
  observe(labels: string, valueMs: number): void {
    let h = this.counts.get(labels);
    if (!h) {
      h = { buckets: new Array(BUCKETS_MS.length).fill(0), sum: 0, count: 0 };
      this.counts.set(labels, h);
    }
    for (let i = 0; i < BUCKETS_MS.length; i++) if (valueMs <= BUCKETS_MS[i]) h.buckets[i]++;
    h.sum += valueMs;
    h.count++;
  }
  render(name: string, help: string): string[] {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    for (const [labels, h] of this.counts) {
      const sep = labels ? "," : "";
      BUCKETS_MS.forEach((le, i) =>
        lines.push(`${name}_bucket{${labels}${sep}le="${le / 1000}"} ${h.buckets[i]}`)
      );
      lines.push(`${name}_bucket{${labels}${sep}le="+Inf"} ${h.count}`);
      lines.push(`${name}_sum{${labels}} ${h.sum / 1000}`);
      lines.push(`${name}_count{${labels}} ${h.count}`);
    }
    return lines;
  }
}

/**
 * Distinct model names kept as label values. The model is whatever the client wrote, so without a bound one
 * key holder could grow the series (and this process's memory) without limit; the rest count as "other".
 */
export const MAX_MODEL_LABELS = 100;

/** The proxy's metrics. */
export class ProxyMetrics {
  readonly #models = new Set<string>();
  readonly #requests = new Map<string, number>();
  readonly #fallbacks = new Map<string, number>();
  readonly #unpriced = new Map<string, number>();
  readonly #upstream = new Histogram();
  readonly #ttfb = new Histogram();
  readonly #latency = new Histogram();
  #streamsOpen = 0;

  /** An answer started streaming to a client (either provider); {@link streamClosed} when it ends. */
  streamOpened(): void {
    this.#streamsOpen++;
  }

  /** A streamed answer ended: complete, cut off, or its client gone. */
  streamClosed(): void {
    this.#streamsOpen--;
  }

  /** Answers streaming right now. */
  get streamsOpen(): number {
    return this.#streamsOpen;
  }

  /**
   * One finished proxied request. `realModel`: a provider took its model name as a model; only such names earn
   * a label, so a flood of made-up names (which price tables' patterns may still match) cannot use up the
   * labels real models need.
   */
  observeRequest(r: UsageRecord, priced: boolean, realModel: boolean): void {
    const model = this.#modelLabel(r.model ?? "", realModel);
    const labels = `provider="${r.provider}",status="${r.statusCode}",model="${model}"`;
    this.#requests.set(labels, (this.#requests.get(labels) ?? 0) + 1);
    this.#latency.observe(`provider="${r.provider}"`, r.latencyMs);
    if (r.timeToFirstByteMs !== null) this.#ttfb.observe(`provider="${r.provider}"`, r.timeToFirstByteMs);
    if (!priced && r.model) this.#unpriced.set(model, (this.#unpriced.get(model) ?? 0) + 1);
  }

  #modelLabel(model: string, admit: boolean): string {
    if (this.#models.has(model)) return esc(model);
    if (!admit || this.#models.size >= MAX_MODEL_LABELS) return "other";
    this.#models.add(model);
    return esc(model);
  }

  /** A request sent to Bedrock in place of the Anthropic API, by endpoint and reason. */
  observeFallback(reason: string, endpoint: "messages" | "count_tokens" | "models" = "messages"): void {
    const labels = `endpoint="${endpoint}",reason="${esc(reason)}"`;
    this.#fallbacks.set(labels, (this.#fallbacks.get(labels) ?? 0) + 1);
  }

  /** Time until an upstream (Anthropic or Bedrock) answered. */
  observeUpstream(provider: "anthropic" | "bedrock", ms: number, status: number): void {
    this.#upstream.observe(
      `provider="${provider}",status_class="${status === 0 ? "network" : `${Math.floor(status / 100)}xx`}"`,
      ms,
    );
  }

  /** Prometheus text; `extra` lines (queue depth, breaker states, …) are appended. */
  render(extra: string[] = []): string {
    const lines: string[] = [];
    lines.push("# HELP proxy_requests_total Proxied Messages requests by provider, status and model.");
    lines.push("# TYPE proxy_requests_total counter");
    for (const [l, v] of this.#requests) lines.push(`proxy_requests_total{${l}} ${v}`);
    lines.push(
      "# HELP proxy_fallbacks_total Requests sent to Bedrock in place of the Anthropic API (it failed, or the key's circuit is open), by endpoint and reason.",
    );
    lines.push("# TYPE proxy_fallbacks_total counter");
    for (const [labels, v] of this.#fallbacks) lines.push(`proxy_fallbacks_total{${labels}} ${v}`);
    lines.push("# HELP proxy_unpriced_requests_total Requests whose model has no price (cost not recorded).");
    lines.push("# TYPE proxy_unpriced_requests_total counter");
    for (const [m, v] of this.#unpriced) lines.push(`proxy_unpriced_requests_total{model="${m}"} ${v}`);
    lines.push(
      ...this.#upstream.render("proxy_upstream_seconds", "Time until the upstream answered (headers)."),
    );
    lines.push(
      ...this.#ttfb.render(
        "proxy_time_to_first_byte_seconds",
        "Time until the first byte went to the client.",
      ),
    );
    lines.push(...this.#latency.render("proxy_request_duration_seconds", "Whole request duration."));
    lines.push(...metricLines(
      "proxy_streams_open",
      "gauge",
      "Answers streaming to clients now (memory grows with them: size tasks by it).",
      this.#streamsOpen,
    ));
    lines.push(...extra);
    return lines.join("\n") + "\n";
  }
}

/** One unlabelled metric in Prometheus text: its HELP and TYPE lines, then its value. */
export function metricLines(name: string, type: "gauge" | "counter", help: string, value: number): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`];
}

/** A label value: cut to 100 characters first, so the cut never splits an escape and unquotes the label. */
function esc(v: string): string {
  return v.slice(0, 100).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
