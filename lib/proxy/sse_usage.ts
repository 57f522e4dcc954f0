/**
 * A tap beside an Anthropic SSE stream: it reads the bytes the client receives and extracts the message id,
 * model, token usage (`message_start`, then `message_delta` whose usage is cumulative: the last value wins, never
 * a sum), stop reason and any `error` event. It never modifies or delays the stream.
 *
 * Only the events that carry usage are JSON-parsed; content deltas, the bulk of a stream, are skipped.
 *
 * @example
 * ```ts
 * const tap = new SseUsageTap();
 * tap.push(chunk);            // for every chunk forwarded to the client
 * tap.result.outputTokens;    // at the end
 * ```
 */
import { tokenCount } from "../usage/token_count.ts";
import { estimatedOutputTokens } from "../usage/output_estimate.ts";
import { createParser, type EventSourceMessage, type EventSourceParser } from "eventsource-parser";

/** What the tap learned. */
export interface StreamUsage {
  messageId: string | null;
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens: number;
  cacheCreationInputTokens: number;
  /** Of the cache writes, those with the 1-hour lifetime (priced higher). */
  cacheCreation1hInputTokens: number;
  /** `usage.speed` (`"fast"` costs a multiple), `usage.inference_geo` (`"us"` costs more): priced and kept. */
  speed: string | null;
  inferenceGeo: string | null;
  /** `usage.server_tool_use.web_search_requests`: billed per search. */
  webSearchRequests: number;
  stopReason: string | null;
  /** The first event's type, once one complete event was seen. */
  firstEvent: string | null;
  /** An `error` event's content. */
  error: { type: string; message: string } | null;
  /** True once `message_stop` arrived. */
  completed: boolean;
  events: number;
  /** True once a `message_delta` reported the output count (the final one comes with the stop reason). */
  finalUsage: boolean;
  /** Characters of generated text, thinking and tool input relayed, for an estimate if no final count comes. */
  deltaChars: number;
  /** True when `outputTokens` was raised to an estimate by {@link SseUsageTap.estimateCutShort}. */
  outputEstimated: boolean;
}

/** The keys of a content delta's generated payload, the commonest first. */
const PAYLOAD_KEYS = ['"text":"', '"thinking":"', '"partial_json":"'];

type UsageFields = {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_creation?: { ephemeral_1h_input_tokens?: number };
  speed?: unknown;
  inference_geo?: unknown;
  server_tool_use?: { web_search_requests?: unknown };
};

/** See the module documentation. */
export class SseUsageTap {
  readonly result: StreamUsage = {
    messageId: null,
    model: null,
    inputTokens: 0,
    outputTokens: 0,
    cacheReadInputTokens: 0,
    cacheCreationInputTokens: 0,
    cacheCreation1hInputTokens: 0,
    speed: null,
    inferenceGeo: null,
    webSearchRequests: 0,
    stopReason: null,
    firstEvent: null,
    error: null,
    completed: false,
    events: 0,
    finalUsage: false,
    deltaChars: 0,
    outputEstimated: false,
  };
  readonly #decoder = new TextDecoder();
  readonly #parser: EventSourceParser;

  constructor() {
    this.#parser = createParser({ onEvent: (e) => this.#onEvent(e) });
  }

  /** Feeds bytes exactly as they go to the client. Malformed input is ignored, never thrown. */
  push(chunk: Uint8Array): void {
    try {
      this.#parser.feed(this.#decoder.decode(chunk, { stream: true }));
    } catch {
      // A tap must never break the stream it watches.
    }
  }

  /**
   * For a stream that ended before its final usage (its client left, its upstream was lost): the output count
   * from `message_start` (1) is raised to an estimate from the text relayed, since the provider bills what it
   * generated. Does nothing once the final count came.
   */
  estimateCutShort(): void {
    const r = this.result;
    if (r.finalUsage) return;
    const estimate = estimatedOutputTokens(r.deltaChars);
    if (estimate > r.outputTokens) {
      r.outputTokens = estimate;
      r.outputEstimated = true;
    }
  }

  #onEvent(e: EventSourceMessage): void {
    const type = e.event ?? "message";
    this.result.events++;
    if (this.result.firstEvent === null) this.result.firstEvent = type;
    if (type === "content_block_delta") {
      this.#countDelta(e.data);
      return;
    }
    if (type !== "message_start" && type !== "message_delta" && type !== "error" && type !== "message_stop") {
      return;
    }
    if (type === "message_stop") {
      this.result.completed = true;
      return;
    }
    let data: Record<string, unknown>;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    // Fields are taken only with the types the API documents: whatever else an upstream sends must not reach
    // the price table, the metrics labels or the database as a number where text belongs, or the reverse.
    if (type === "message_start") {
      const message = data.message as { id?: unknown; model?: unknown; usage?: UsageFields } | undefined;
      this.result.messageId = str(message?.id);
      this.result.model = str(message?.model);
      this.#usage(message?.usage);
    } else if (type === "message_delta") {
      const delta = data.delta as { stop_reason?: unknown } | undefined;
      const stop = str(delta?.stop_reason);
      if (stop) this.result.stopReason = stop;
      const usage = data.usage as UsageFields | undefined;
      if (tokenCount(usage?.output_tokens) !== undefined) this.result.finalUsage = true;
      this.#usage(usage);
    } else {
      this.result.error = errorOf(data.error);
    }
  }

  /**
   * Counts a content delta's payload without parsing it (deltas are the bulk of a stream): the string after its
   * `"text":"`, `"thinking":"` or `"partial_json":"` key up to the closing `"}}`, as escaped on the wire. Inside
   * a JSON string every quote is escaped, so a key found unescaped is the envelope's, never the payload's. A
   * thinking block's signature is not generated output and has none of these keys.
   */
  #countDelta(data: string): void {
    if (!data.endsWith('"}}')) return;
    for (const key of PAYLOAD_KEYS) {
      const at = data.indexOf(key);
      if (at < 0) continue;
      this.result.deltaChars += Math.max(0, data.length - at - key.length - 3);
      return;
    }
  }

  #usage(u: UsageFields | undefined): void {
    if (!u || typeof u !== "object") return;
    // Cumulative counters: the latest report replaces the earlier one.
    // A value that is no count (1e300, a fraction) is ignored: priced, it could put a user over budget.
    const r = this.result;
    r.inputTokens = tokenCount(u.input_tokens) ?? r.inputTokens;
    r.outputTokens = tokenCount(u.output_tokens) ?? r.outputTokens;
    r.cacheReadInputTokens = tokenCount(u.cache_read_input_tokens) ?? r.cacheReadInputTokens;
    r.cacheCreationInputTokens = tokenCount(u.cache_creation_input_tokens) ?? r.cacheCreationInputTokens;
    r.cacheCreation1hInputTokens = tokenCount(u.cache_creation?.ephemeral_1h_input_tokens) ??
      r.cacheCreation1hInputTokens;
    r.speed = str(u.speed) ?? r.speed;
    r.inferenceGeo = str(u.inference_geo) ?? r.inferenceGeo;
    r.webSearchRequests = tokenCount(u.server_tool_use?.web_search_requests) ?? r.webSearchRequests;
  }
}

/** Usage from a non-streaming Messages response body. */
export function usageFromJson(bytes: Uint8Array): Partial<StreamUsage> {
  try {
    const body = JSON.parse(new TextDecoder().decode(bytes)) as {
      id?: unknown;
      model?: unknown;
      stop_reason?: unknown;
      usage?: UsageFields;
      type?: unknown;
      error?: unknown;
    } | null;
    if (!body || typeof body !== "object") return {};
    if (body.type === "error") return { error: errorOf(body.error) };
    const u = body.usage && typeof body.usage === "object" ? body.usage : undefined;
    return {
      messageId: str(body.id),
      model: str(body.model),
      stopReason: str(body.stop_reason),
      inputTokens: num(u?.input_tokens),
      outputTokens: num(u?.output_tokens),
      cacheReadInputTokens: num(u?.cache_read_input_tokens),
      cacheCreationInputTokens: num(u?.cache_creation_input_tokens),
      cacheCreation1hInputTokens: num(u?.cache_creation?.ephemeral_1h_input_tokens),
      speed: str(u?.speed),
      inferenceGeo: str(u?.inference_geo),
      webSearchRequests: num(u?.server_tool_use?.web_search_requests),
    };
  } catch {
    return {};
  }
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function num(v: unknown): number {
  return tokenCount(v) ?? 0;
}

function errorOf(v: unknown): { type: string; message: string } {
  const e = v && typeof v === "object" ? v as { type?: unknown; message?: unknown } : {};
  return { type: str(e.type) ?? "api_error", message: str(e.message) ?? "" };
}
