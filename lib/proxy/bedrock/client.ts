/**
 * Calls Claude on Amazon Bedrock with per-access-key credentials and turns the answer back into Anthropic's wire
 * format: a Messages JSON body, or the exact SSE event sequence Anthropic would have streamed.
 *
 * One `BedrockRuntimeClient` per (credentials, region) is kept and reused (clients hold connection pools and
 * credential caches), in a small LRU so rotating or many keys cannot grow memory without bound. The map is keyed
 * by a SHA-256 of the credentials so no secret ever becomes a key string.
 *
 * Every client uses `FetchHttpHandler`: the SDK's default HTTP/2 handler silently drops response-stream events
 * (see DESIGN.md), and using fetch everywhere keeps tests and production on one code path.
 *
 * Failures are thrown as the SDK's own errors (or the fetch/abort error); pass them to `mapBedrockError`.
 */
import { fetchWithAbortableBody } from "../../net/abortable_body.ts";
import type {
  BedrockRuntimeClient,
  BedrockRuntimeClientConfig,
  ResponseStream,
} from "@aws-sdk/client-bedrock-runtime";
import { createHash } from "node:crypto";
import { tokenCount } from "../../usage/token_count.ts";
import { estimatedOutputTokens } from "../../usage/output_estimate.ts";
import { idleWatch } from "../idle_watch.ts";
import type { HttpClientPool } from "../../net/http_client_pool.ts";
import { mapBedrockError, SHUTDOWN_MESSAGE, ShutdownError, sseErrorEvent } from "./errors.ts";

/** The credentials one Bedrock call is made with. */
export type BedrockCredentials =
  | { kind: "iam"; accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  | { kind: "api_key"; apiKey: string }
  | { kind: "default" }; // the process's own AWS credential chain (Fargate task role)

/** Token usage of one Bedrock call, in the four counters the proxy records. */
export interface BedrockUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens: number;
  cacheCreationInputTokens: number;
  /** Of the cache writes, those with a one-hour lifetime (priced higher than five-minute ones). */
  cacheCreation1hInputTokens: number;
}

/** Usage of a streamed call, known once the stream has ended (or failed, or was cancelled). */
export type BedrockStreamUsage = BedrockUsage & {
  stopReason: string | null;
  messageId: string | null;
  /** Set when the stream ended with an error event (the Anthropic error type and message that were sent). */
  error?: { type: string; message: string };
  /** Set when the consumer cancelled the events stream (the client went away) before it ended. */
  cancelled?: boolean;
  /** Set when Bedrock's stream ended (cleanly, or with an error) before its message_stop event. */
  interrupted?: boolean;
  /** Set when the stream was cut short before its final count and `outputTokens` is estimated from its text. */
  outputEstimated?: boolean;
};

/** A streamed answer: Anthropic SSE bytes, and the usage once they are all out. */
export interface BedrockStream {
  /** `event: <type>\ndata: <json>\n\n` frames, exactly as Anthropic streams them. Cancel it to abort the call. */
  events: ReadableStream<Uint8Array>;
  /** Resolves (never rejects) when the stream ends, fails or is cancelled. */
  usage: Promise<BedrockStreamUsage>;
  /**
   * Ends the stream for a shutdown: the client gets the shutdown `error` event. The same as the caller's signal
   * aborting with a {@link ShutdownError}, without depending on that signal reaching here.
   */
  interrupt(): void;
  /** Bedrock's id of the call (`x-amzn-requestid`), for tracing it with AWS; undefined if it sent none. */
  requestId?: string;
}

/** One call to Bedrock. */
export interface BedrockInvokeRequest {
  credentials: BedrockCredentials;
  region: string;
  /** Bedrock model id or inference profile (see `mapModel`). */
  modelId: string;
  /** Request body from `toBedrockBody`. */
  body: Uint8Array;
  /** The model name the client asked for; the answer reports this name instead of Bedrock's. */
  requestedModel?: string;
  signal?: AbortSignal;
}

/** Options of {@link BedrockInvoker}. */
export interface BedrockInvokerOptions {
  /** Endpoint URL override (tests, VPC endpoints); default: the regional Bedrock runtime endpoint. */
  endpoint?: string;
  /** Most SDK clients kept at once (least recently used are dropped). Default 64. */
  maxClients?: number;
  /**
   * SDK attempts per call. Default 1: the proxy's clients (Claude Code, the SDKs) already retry 429/5xx with
   * their own backoff, and retrying here too would multiply the wait before the client sees an answer.
   */
  maxAttempts?: number;
  /**
   * Milliseconds to wait for Bedrock's response headers, which a non-streamed answer sends with its whole body;
   * default: no limit.
   */
  requestTimeoutMs?: number;
  /**
   * Milliseconds a stream may stay silent (before its first event and between events) before it is ended with
   * a `timeout_error`; default: no limit. A connection that hangs must not hold the client forever.
   */
  streamIdleTimeoutMs?: number;
  /**
   * The HTTP clients calls are spread over, shared by every SDK client (they call the same regional host): an
   * HTTP/2 server caps the streams of one connection. Default: the runtime's shared client.
   */
  httpClients?: HttpClientPool;
}

/**
 * The AWS SDK, loaded on the first Bedrock call (once, some 80 ms): it adds about 25 MB to the process, which a
 * proxy whose Anthropic upstream is healthy never needs.
 */
async function loadSdk() {
  const [runtime, { FetchHttpHandler }] = await Promise.all([
    import("@aws-sdk/client-bedrock-runtime"),
    import("@smithy/fetch-http-handler"),
  ]);
  return { ...runtime, FetchHttpHandler };
}
type BedrockSdk = Awaited<ReturnType<typeof loadSdk>>;

const METRICS_FIELD = "amazon-bedrock-invocationMetrics";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Invokes Claude on Bedrock, reusing one SDK client per (credentials, region). */
export class BedrockInvoker {
  readonly #endpoint?: string;
  readonly #maxClients: number;
  readonly #maxAttempts: number;
  readonly #requestTimeoutMs?: number;
  readonly #streamIdleTimeoutMs?: number;
  readonly #httpClients?: HttpClientPool;
  readonly #clients = new Map<string, BedrockRuntimeClient>();
  #sdk: Promise<BedrockSdk> | null = null;

  constructor(opts: BedrockInvokerOptions = {}) {
    this.#endpoint = opts.endpoint;
    this.#maxClients = Math.max(1, opts.maxClients ?? 64);
    this.#maxAttempts = Math.max(1, opts.maxAttempts ?? 1);
    this.#requestTimeoutMs = opts.requestTimeoutMs;
    this.#streamIdleTimeoutMs = opts.streamIdleTimeoutMs;
    this.#httpClients = opts.httpClients;
  }

  /** Number of SDK clients currently kept. */
  get clientCount(): number {
    return this.#clients.size;
  }

  /**
   * The SDK client used for these credentials and region: the same instance for the same pair, a new one
   * otherwise. Exposed for diagnostics and tests; `invoke`/`invokeStream` use it.
   */
  async clientFor(credentials: BedrockCredentials, region: string): Promise<BedrockRuntimeClient> {
    return (await this.#connect({ credentials, region })).client;
  }

  /** The SDK (loaded on first use) and the client for a call's credentials and region. */
  async #connect(
    req: { credentials: BedrockCredentials; region: string },
  ): Promise<{ sdk: BedrockSdk; client: BedrockRuntimeClient }> {
    const sdk = await this.#load();
    return { sdk, client: this.#clientFor(sdk, req.credentials, req.region) };
  }

  #load(): Promise<BedrockSdk> {
    return this.#sdk ??= loadSdk().catch((e) => {
      this.#sdk = null; // the next call tries again
      throw e;
    });
  }

  #clientFor(sdk: BedrockSdk, credentials: BedrockCredentials, region: string): BedrockRuntimeClient {
    const key = clientKey(credentials, region);
    const existing = this.#clients.get(key);
    if (existing) {
      // Re-insert to mark it most recently used.
      this.#clients.delete(key);
      this.#clients.set(key, existing);
      return existing;
    }
    const client = new sdk.BedrockRuntimeClient(this.#config(sdk, credentials, region));
    this.#clients.set(key, client);
    while (this.#clients.size > this.#maxClients) {
      const [oldestKey, oldest] = this.#clients.entries().next().value!;
      this.#clients.delete(oldestKey);
      // In-flight calls on the evicted client keep their own fetches; destroy only drops idle resources.
      oldest.destroy();
    }
    return client;
  }

  /** Destroys every kept client (shutdown). */
  close(): void {
    for (const client of this.#clients.values()) client.destroy();
    this.#clients.clear();
  }

  /**
   * Non-streaming call: the Anthropic message Bedrock returned, with `model` set back to the requested name,
   * and its usage.
   */
  async invoke(
    req: BedrockInvokeRequest,
  ): Promise<{ body: Record<string, unknown>; usage: BedrockUsage; requestId?: string }> {
    const { sdk, client } = await this.#connect(req);
    let out;
    try {
      out = await client.send(
        new sdk.InvokeModelCommand({
          modelId: req.modelId,
          body: req.body,
          contentType: "application/json",
          accept: "application/json",
        }),
        { abortSignal: req.signal },
      );
    } catch (err) {
      throw callerTimeout(req.signal) ?? err;
    }
    const body = JSON.parse(decoder.decode(out.body)) as Record<string, unknown>;
    if (req.requestedModel) body.model = req.requestedModel;
    const tally = emptyTally();
    mergeUsage(tally, body.usage);
    const { stopReason: _s, messageId: _m, ...usage } = finishUsage(tally, undefined);
    return { body, usage, requestId: out.$metadata.requestId };
  }

  /**
   * Counts the input tokens of an InvokeModel body (Bedrock's CountTokens, which takes bare foundation-model ids,
   * not inference profiles). Free of charge; throws like {@link invoke}.
   */
  async countTokens(req: Omit<BedrockInvokeRequest, "requestedModel">): Promise<number> {
    const { sdk, client } = await this.#connect(req);
    try {
      const out = await client.send(
        new sdk.CountTokensCommand({ modelId: req.modelId, input: { invokeModel: { body: req.body } } }),
        { abortSignal: req.signal },
      );
      if (typeof out.inputTokens !== "number") throw new Error("Bedrock CountTokens returned no inputTokens");
      return out.inputTokens;
    } catch (err) {
      throw callerTimeout(req.signal) ?? err;
    }
  }

  /**
   * Streaming call. Resolves once Bedrock has answered and its first event has arrived, so a failure before any
   * byte was sent to the client (HTTP error, or an exception as the first frame) rejects and the caller can still
   * answer with an HTTP error. After that, failures become a final SSE `error` event and `usage.error`.
   */
  async invokeStream(req: BedrockInvokeRequest): Promise<BedrockStream> {
    const { sdk, client } = await this.#connect(req);
    const abort = new AbortController();
    const onCallerAbort = () => abort.abort(req.signal?.reason);
    if (req.signal?.aborted) abort.abort(req.signal.reason);
    else req.signal?.addEventListener("abort", onCallerAbort, { once: true });
    const idle = idleWatch(this.#streamIdleTimeoutMs, (e) => abort.abort(e), "Bedrock");
    const detach = () => {
      idle.stop();
      req.signal?.removeEventListener("abort", onCallerAbort);
    };

    let iterator: AsyncIterator<ResponseStream>;
    let first: IteratorResult<ResponseStream>;
    let requestId: string | undefined;
    try {
      const out = await client.send(
        new sdk.InvokeModelWithResponseStreamCommand({
          modelId: req.modelId,
          body: req.body,
          contentType: "application/json",
          accept: "application/json",
        }),
        { abortSignal: abort.signal },
      );
      if (!out.body) throw new Error("Bedrock returned no response stream");
      requestId = out.$metadata.requestId;
      iterator = out.body[Symbol.asyncIterator]();
      first = await iterator.next();
      // Until the caller pulls, nothing is asked of Bedrock: a client that is not reading is no silence of its.
      idle.pause();
      // Nothing sent yet: an empty stream is still a failed call the caller can answer with an HTTP error.
      if (first.done) throw new Error("Bedrock's response stream ended before any event");
    } catch (err) {
      detach();
      abort.abort();
      throw callerTimeout(req.signal) ?? idle.error ?? err;
    }

    const tally = emptyTally();
    let resolveUsage!: (u: BedrockStreamUsage) => void;
    const usage = new Promise<BedrockStreamUsage>((resolve) => resolveUsage = resolve);
    let pending: IteratorResult<ResponseStream> | undefined = first;
    let finished = false;
    let shutdown = false;

    const finish = (extra: Partial<BedrockStreamUsage> = {}) => {
      if (finished) return;
      finished = true;
      detach();
      const cutShort = extra.cancelled === true || extra.interrupted === true || extra.error !== undefined;
      resolveUsage({ ...finishUsage(tally, tally.metrics, cutShort), ...extra });
    };

    const events = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          // Skip events that produce no bytes (unknown union members) so each pull enqueues or ends.
          while (true) {
            let next = pending;
            pending = undefined;
            if (!next) {
              idle.resume();
              next = await iterator.next();
              idle.pause();
            }
            if (finished) return;
            if (next.done) {
              if (!tally.stopped) {
                // Ended on a frame boundary but short of message_stop (a connection closed cleanly mid-answer):
                // as on the Anthropic path, the client must not take a cut-off answer for a whole one.
                const error = { type: "api_error", message: INCOMPLETE_MESSAGE };
                controller.enqueue(encoder.encode(sseErrorEvent(error.type, error.message)));
                finish({ error, interrupted: true });
              } else finish();
              controller.close();
              return;
            }
            const frame = toSse(next.value, tally, req.requestedModel);
            if (frame) {
              controller.enqueue(encoder.encode(frame));
              return;
            }
          }
        } catch (err) {
          if (finished) return;
          const timedOut = callerTimeout(req.signal) ?? idle.error ?? undefined;
          if (shutdown || req.signal?.reason instanceof ShutdownError) {
            controller.enqueue(encoder.encode(sseErrorEvent("api_error", SHUTDOWN_MESSAGE)));
            finish({ cancelled: true });
            controller.close();
            abort.abort();
            return;
          }
          if (abort.signal.aborted && !timedOut) {
            // The caller gave up (its client went away): nobody is left to read an error event.
            finish({ cancelled: true });
            controller.close();
            return;
          }
          const mapped = mapBedrockError(timedOut ?? err);
          const error = { type: mapped.type, message: mapped.message };
          controller.enqueue(encoder.encode(sseErrorEvent(error.type, error.message)));
          finish({ error });
          controller.close();
          abort.abort();
        }
      },
      cancel: () => {
        // After message_stop the answer is whole: a client that stops reading then is no cancelled request.
        finish(tally.stopped ? {} : { cancelled: true });
        abort.abort();
        iterator.return?.().catch(() => {});
      },
    }, { highWaterMark: 0 });

    const interrupt = () => {
      if (finished) return;
      shutdown = true;
      abort.abort(new ShutdownError());
    };
    return { events, usage, interrupt, requestId };
  }

  #config(sdk: BedrockSdk, credentials: BedrockCredentials, region: string): BedrockRuntimeClientConfig {
    const config: BedrockRuntimeClientConfig = {
      region,
      maxAttempts: this.#maxAttempts,
      requestHandler: new sdk.FetchHttpHandler({
        requestTimeout: this.#requestTimeoutMs,
        // The handler keeps only the response's body: without this, an abort after a garbage collection (the
        // drain deadline, the idle timeout, the client leaving) would leave Bedrock's stream running.
        customFetch: fetchWithAbortableBody,
        // Deno's Request keeps a `client` given to it, and the handler builds its Request from these options.
        requestInit: () => {
          const client = this.#httpClients?.next();
          return (client ? { client } : {}) as RequestInit;
        },
      }),
    };
    if (this.#endpoint) config.endpoint = this.#endpoint;
    switch (credentials.kind) {
      case "iam":
        config.credentials = {
          accessKeyId: credentials.accessKeyId,
          secretAccessKey: credentials.secretAccessKey,
          sessionToken: credentials.sessionToken,
        };
        // Explicit, so an AWS_BEARER_TOKEN_BEDROCK in the environment cannot switch these clients to bearer auth.
        config.authSchemePreference = ["sigv4"];
        break;
      case "api_key":
        // Bedrock API keys are bearer tokens; the SDK sends `Authorization: Bearer <key>` instead of SigV4.
        config.token = { token: credentials.apiKey };
        config.authSchemePreference = ["httpBearerAuth"];
        break;
      case "default":
        config.authSchemePreference = ["sigv4"];
        break;
    }
    return config;
  }
}

/**
 * The caller's timeout (an `AbortSignal.timeout` that fired), so it is reported as a timeout rather than as the
 * SDK's generic "Request aborted".
 */
function callerTimeout(signal: AbortSignal | undefined): Error | undefined {
  const reason = signal?.aborted ? signal.reason : undefined;
  return reason instanceof Error && reason.name === "TimeoutError" ? reason : undefined;
}

/** Hash of everything that identifies a client; secrets never appear as map keys. */
function clientKey(c: BedrockCredentials, region: string): string {
  const parts = c.kind === "iam"
    ? [c.kind, c.accessKeyId, c.secretAccessKey, c.sessionToken ?? ""]
    : c.kind === "api_key"
    ? [c.kind, c.apiKey]
    : [c.kind];
  return createHash("sha256").update(JSON.stringify([region, ...parts])).digest("hex");
}

interface Tally {
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheCreation?: number;
  cacheCreation1h?: number;
  stopReason: string | null;
  messageId: string | null;
  metrics?: Record<string, unknown>;
  /** message_stop went by. */
  stopped?: boolean;
  /** A message_delta reported the output count. */
  finalOutput?: boolean;
  /** Characters of generated text, thinking and tool input, for an estimate if the stream is cut short. */
  deltaChars: number;
}

/** The error event's message when Bedrock's stream ends short of message_stop. */
export const INCOMPLETE_MESSAGE = "Bedrock stream ended before message_stop; the answer is incomplete";

function emptyTally(): Tally {
  return { stopReason: null, messageId: null, deltaChars: 0 };
}

/** Last reported value wins: message_delta usage is cumulative and may repeat message_start's counters. */
function mergeUsage(t: Tally, usage: unknown): void {
  if (!usage || typeof usage !== "object") return;
  const u = usage as Record<string, unknown>;
  t.input = tokenCount(u.input_tokens) ?? t.input;
  t.output = tokenCount(u.output_tokens) ?? t.output;
  t.cacheRead = tokenCount(u.cache_read_input_tokens) ?? t.cacheRead;
  t.cacheCreation = tokenCount(u.cache_creation_input_tokens) ?? t.cacheCreation;
  const split = u.cache_creation as { ephemeral_1h_input_tokens?: unknown } | undefined;
  t.cacheCreation1h = tokenCount(split?.ephemeral_1h_input_tokens) ?? t.cacheCreation1h;
}

/** Counters the events never reported are filled from Bedrock's invocation metrics, then 0. */
function finishUsage(
  t: Tally,
  metrics: Record<string, unknown> | undefined,
  cutShort = false,
): BedrockStreamUsage {
  const m = (key: string): number | undefined => tokenCount(metrics?.[key]);
  let outputTokens = t.output ?? m("outputTokenCount") ?? 0;
  // Cut short before the final count (the metrics come last too): the text relayed stands in for it.
  const estimate = cutShort && !t.finalOutput && m("outputTokenCount") === undefined
    ? estimatedOutputTokens(t.deltaChars)
    : 0;
  const outputEstimated = estimate > outputTokens;
  if (outputEstimated) outputTokens = estimate;
  return {
    inputTokens: t.input ?? m("inputTokenCount") ?? 0,
    outputTokens,
    cacheReadInputTokens: t.cacheRead ?? m("cacheReadInputTokenCount") ?? 0,
    cacheCreationInputTokens: t.cacheCreation ?? m("cacheWriteInputTokenCount") ?? 0,
    cacheCreation1hInputTokens: t.cacheCreation1h ?? 0,
    stopReason: t.stopReason,
    messageId: t.messageId,
    ...(outputEstimated ? { outputEstimated } : {}),
  };
}

/**
 * One Bedrock stream event → one Anthropic SSE frame, updating the usage tally on the way. Returns undefined for
 * events that carry no Anthropic event (unknown union members).
 */
function toSse(event: ResponseStream, t: Tally, requestedModel: string | undefined): string | undefined {
  const bytes = event.chunk?.bytes;
  if (!bytes) return undefined;
  const text = decoder.decode(bytes);
  const data = JSON.parse(text) as Record<string, unknown>;
  const type = typeof data.type === "string" ? data.type : "message";
  let changed = false;

  if (METRICS_FIELD in data) {
    const metrics = data[METRICS_FIELD];
    if (metrics && typeof metrics === "object") t.metrics = metrics as Record<string, unknown>;
    delete data[METRICS_FIELD];
    changed = true;
  }
  if (type === "message_start" && data.message && typeof data.message === "object") {
    const message = data.message as Record<string, unknown>;
    if (typeof message.id === "string") t.messageId = message.id;
    mergeUsage(t, message.usage);
    if (requestedModel) {
      message.model = requestedModel;
      changed = true;
    }
  } else if (type === "content_block_delta") {
    const delta = data.delta as Record<string, unknown> | undefined;
    const payload = delta?.text ?? delta?.thinking ?? delta?.partial_json;
    if (typeof payload === "string") t.deltaChars += payload.length;
  } else if (type === "message_delta") {
    if (tokenCount((data.usage as Record<string, unknown> | undefined)?.output_tokens) !== undefined) {
      t.finalOutput = true;
    }
    mergeUsage(t, data.usage);
    const delta = data.delta as Record<string, unknown> | undefined;
    if (typeof delta?.stop_reason === "string") t.stopReason = delta.stop_reason;
  } else if (type === "message_stop") t.stopped = true;
  // Unmodified events are forwarded byte for byte, unless a line break would split the SSE data line.
  const json = changed || /[\r\n]/.test(text) ? JSON.stringify(data) : text;
  return `event: ${type}\ndata: ${json}\n\n`;
}
