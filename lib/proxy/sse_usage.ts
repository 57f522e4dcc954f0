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
  stopReason: string | null;
  /** The first event's type, once one complete event was seen. */
  firstEvent: string | null;
  /** An `error` event's content. */
  error: { type: string; message: string } | null;
  /** True once `message_stop` arrived. */
  completed: boolean;
  events: number;
}

type UsageFields = {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_creation?: { ephemeral_1h_input_tokens?: number };
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
    stopReason: null,
    firstEvent: null,
    error: null,
    completed: false,
    events: 0,
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

  #onEvent(e: EventSourceMessage): void {
    const type = e.event ?? "message";
    this.result.events++;
    if (this.result.firstEvent === null) this.result.firstEvent = type;
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
    if (type === "message_start") {
      const message = data.message as { id?: string; model?: string; usage?: UsageFields } | undefined;
      this.result.messageId = message?.id ?? null;
      this.result.model = message?.model ?? null;
      this.#usage(message?.usage);
    } else if (type === "message_delta") {
      const delta = data.delta as { stop_reason?: string | null } | undefined;
      if (delta?.stop_reason) this.result.stopReason = delta.stop_reason;
      this.#usage(data.usage as UsageFields | undefined);
    } else {
      const error = data.error as { type?: string; message?: string } | undefined;
      this.result.error = { type: error?.type ?? "api_error", message: error?.message ?? "" };
    }
  }

  #usage(u: UsageFields | undefined): void {
    if (!u) return;
    // Cumulative counters: the latest report replaces the earlier one.
    if (typeof u.input_tokens === "number") this.result.inputTokens = u.input_tokens;
    if (typeof u.output_tokens === "number") this.result.outputTokens = u.output_tokens;
    if (typeof u.cache_read_input_tokens === "number") {
      this.result.cacheReadInputTokens = u.cache_read_input_tokens;
    }
    if (typeof u.cache_creation_input_tokens === "number") {
      this.result.cacheCreationInputTokens = u.cache_creation_input_tokens;
    }
    const oneHour = u.cache_creation?.ephemeral_1h_input_tokens;
    if (typeof oneHour === "number") this.result.cacheCreation1hInputTokens = oneHour;
  }
}

/** Usage from a non-streaming Messages response body. */
export function usageFromJson(bytes: Uint8Array): Partial<StreamUsage> {
  try {
    const body = JSON.parse(new TextDecoder().decode(bytes)) as {
      id?: string;
      model?: string;
      stop_reason?: string | null;
      usage?: UsageFields;
      type?: string;
      error?: { type?: string; message?: string };
    };
    if (body.type === "error") {
      return { error: { type: body.error?.type ?? "api_error", message: body.error?.message ?? "" } };
    }
    return {
      messageId: body.id ?? null,
      model: body.model ?? null,
      stopReason: body.stop_reason ?? null,
      inputTokens: body.usage?.input_tokens ?? 0,
      outputTokens: body.usage?.output_tokens ?? 0,
      cacheReadInputTokens: body.usage?.cache_read_input_tokens ?? 0,
      cacheCreationInputTokens: body.usage?.cache_creation_input_tokens ?? 0,
      cacheCreation1hInputTokens: body.usage?.cache_creation?.ephemeral_1h_input_tokens ?? 0,
    };
  } catch {
    return {};
  }
}
