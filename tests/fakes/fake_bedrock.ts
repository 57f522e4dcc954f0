/**
 * A fake Amazon Bedrock runtime that speaks the real wire protocol, so the real AWS SDK can run against it.
 *
 * - Authentication is checked the way Bedrock does: a SigV4 `Authorization` header is re-signed with the secret
 *   known for its access key id (`@smithy/signature-v4`) and compared; a `Bearer` header must carry a known
 *   Bedrock API key. Failures answer 403 with `x-amzn-errortype` and `{"message":…}` like the real service.
 * - `POST /model/{id}/invoke` answers an Anthropic message as JSON.
 * - `POST /model/{id}/count-tokens` answers `{"inputTokens": n}` ({@link fakeTokenCount} of the InvokeModel body
 *   it carries); like Bedrock, it refuses inference-profile ids.
 * - `POST /model/{id}/invoke-with-response-stream` answers AWS event-stream frames (`@smithy/eventstream-codec`),
 *   each a `chunk` event whose payload `{"bytes":"<base64>"}` holds one Anthropic streaming event; the final
 *   `message_stop` carries `amazon-bedrock-invocationMetrics`.
 * - Bodies are checked as Bedrock checks them: a top-level key it does not document (or a gated one without its
 *   beta) is refused with 400 "extraneous key", and `output_config.format` for a model without structured outputs.
 * - Behaviour can be scripted per request: HTTP errors, an exception frame mid-stream, reply contents, delays.
 * - Every request is recorded (model id decoded, parsed body, headers, whether the client went away).
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { SignatureV4 } from "@smithy/signature-v4";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";

/** Token counts the fake reports, in Anthropic's field names. */
export interface FakeUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  /** How the cache writes split by lifetime, as Anthropic models on Bedrock report it (sent only when set). */
  cache_creation?: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
}

/** What the fake answers with (all optional; defaults give a short text reply). */
export interface FakeReply {
  /** Text of the reply; an array gives the exact streaming deltas. */
  text?: string | string[];
  /** A tool_use block after the text. */
  toolUse?: { id: string; name: string; input: Record<string, unknown> };
  usage?: Partial<FakeUsage>;
  stopReason?: string;
  messageId?: string;
  /** The `model` field Bedrock puts in the message (defaults to the model id, without prefix and version). */
  model?: string;
  /** Milliseconds to wait before each streamed frame. */
  eventDelayMs?: number;
  /** After this many streamed frames the stream goes silent (a hung connection) until the client leaves. */
  stallAfterEvents?: number;
  /** After this many streamed frames the stream ends cleanly, message_stop never sent (0: an empty stream). */
  endAfterEvents?: number;
  /** Milliseconds to wait before answering at all (before the response headers). */
  responseDelayMs?: number;
  /**
   * `"minimal"`: message_start reports only input_tokens and message_delta only output_tokens, so the cache
   * counters are known from `amazon-bedrock-invocationMetrics` alone. Default `"full"`.
   */
  eventUsage?: "full" | "minimal";
}

/** One scripted behaviour, consumed by the next request(s). */
export type FakeBedrockStep =
  | {
    kind: "error";
    /** HTTP status, e.g. 429, 400, 403, 500, 503. */
    status: number;
    /** Bedrock error type, e.g. `ThrottlingException`; sent in `x-amzn-errortype`. */
    errorType: string;
    message?: string;
    /** How many consecutive requests get this answer (default 1). */
    times?: number;
  }
  | {
    kind: "stream_exception";
    /** Number of chunk frames sent before the exception frame. */
    afterEvents: number;
    /** Event-stream exception type, e.g. `throttlingException`, `modelStreamErrorException`. */
    exceptionType: string;
    message?: string;
    reply?: FakeReply;
    times?: number;
  }
  | { kind: "reply"; reply: FakeReply; times?: number };

/** One request as the fake saw it. */
export interface RecordedRequest {
  method: string;
  /** The raw request path (the model id percent-encoded as the SDK sent it). */
  path: string;
  operation: "invoke" | "invoke-with-response-stream" | "count-tokens" | "other";
  /** The model id, percent-decoded. */
  modelId: string;
  headers: Record<string, string>;
  /** Parsed JSON body (or the raw text when it is not JSON). */
  body: unknown;
  auth: "sigv4" | "bearer" | "none" | "rejected";
  accessKeyId?: string;
  region?: string;
  /** Set when the client closed the connection before the answer was complete. */
  aborted: boolean;
  /** The Anthropic events the fake sent (streaming), in order. */
  sentEvents: Record<string, unknown>[];
}

/** Options of {@link startFakeBedrock}. */
export interface FakeBedrockOptions {
  /** Known IAM credentials: access key id → secret access key. */
  iamCredentials?: Record<string, string>;
  /** Known Bedrock API keys (bearer tokens). */
  apiKeys?: string[];
  /** The reply used when no scripted step says otherwise. */
  reply?: FakeReply;
}

/** A running fake; `close()` it in `finally`. */
export interface FakeBedrock {
  /** Base URL, e.g. `http://127.0.0.1:12345`, to pass as the SDK's `endpoint`. */
  url: string;
  requests: RecordedRequest[];
  /** Appends steps to the script; each authenticated, valid request consumes the first remaining step. */
  script: (...steps: FakeBedrockStep[]) => void;
  close(): Promise<void>;
}

const DEFAULT_USAGE: FakeUsage = {
  input_tokens: 25,
  output_tokens: 12,
  cache_read_input_tokens: 0,
  cache_creation_input_tokens: 0,
};

const codec = new EventStreamCodec(toUtf8, fromUtf8);

/** The count the fake's CountTokens answers for an InvokeModel body: its messages' JSON length / 4. */
export function fakeTokenCount(body: unknown): number {
  return Math.ceil(JSON.stringify((body as { messages?: unknown }).messages ?? []).length / 4);
}

interface CountTokensWire {
  input?: { invokeModel?: { body?: unknown } };
}

/** Starts the fake on 127.0.0.1 with an ephemeral port. */
export function startFakeBedrock(opts: FakeBedrockOptions = {}): Promise<FakeBedrock> {
  const iam = opts.iamCredentials ?? {};
  const apiKeys = new Set(opts.apiKeys ?? []);
  const requests: RecordedRequest[] = [];
  const closing = new AbortController();
  const queue: FakeBedrockStep[] = [];

  function nextStep(): FakeBedrockStep | undefined {
    const step = queue[0];
    if (!step) return undefined;
    const times = (step.times ?? 1) - 1;
    if (times <= 0) queue.shift();
    else queue[0] = { ...step, times } as FakeBedrockStep;
    return step;
  }

  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req, info) => {
    const url = new URL(req.url);
    const raw = new Uint8Array(await req.arrayBuffer());
    const headers = Object.fromEntries(req.headers);
    const [, first, encodedId, op] = url.pathname.split("/");
    const operation =
      first === "model" && (op === "invoke" || op === "invoke-with-response-stream" || op === "count-tokens")
        ? op
        : "other";
    const text = new TextDecoder().decode(raw);
    let body: unknown = text;
    try {
      body = JSON.parse(text);
      // CountTokens wraps the InvokeModel body, base64-encoded: recorded (and checked) as that body.
      const wrapped = operation === "count-tokens"
        ? (body as CountTokensWire).input?.invokeModel?.body
        : undefined;
      if (typeof wrapped === "string") {
        body = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(wrapped), (c) => c.charCodeAt(0))));
      }
    } catch { /* recorded as text */ }
    const record: RecordedRequest = {
      method: req.method,
      path: url.pathname,
      operation,
      modelId: safeDecode(encodedId ?? ""),
      headers,
      body,
      auth: "none",
      aborted: false,
      sentEvents: [],
    };
    requests.push(record);
    // `completed` rejects when the client disconnects before the whole answer was delivered. (req.signal is not
    // used: in Deno it also aborts after a successful response.)
    const gone = new AbortController();
    closing.signal.addEventListener("abort", () => gone.abort(), { once: true });
    info.completed.catch(() => {
      record.aborted = true;
      gone.abort();
    });

    const denied = await authenticate(req, url, raw, iam, apiKeys, record);
    if (denied) return denied;

    if (req.method !== "POST" || operation === "other") {
      return bedrockError(404, "UnknownOperationException", "Unknown operation");
    }
    const invalid = validateBody(body, record.modelId);
    if (invalid) return bedrockError(400, "ValidationException", invalid);

    const step = nextStep();
    if (step?.kind === "error") {
      return bedrockError(step.status, step.errorType, step.message ?? defaultMessage(step.errorType));
    }
    if (operation === "count-tokens") {
      if (!record.modelId.startsWith("anthropic.")) {
        return bedrockError(
          400,
          "ValidationException",
          "The provided model doesn't support counting tokens.",
        );
      }
      return Response.json({ inputTokens: fakeTokenCount(body) }, {
        headers: { "x-amzn-requestid": crypto.randomUUID() },
      });
    }
    const reply = { ...opts.reply, ...(step && "reply" in step ? step.reply : {}) };
    const events = anthropicEvents(reply, record.modelId);
    if (reply.responseDelayMs) await sleep(reply.responseDelayMs, gone.signal);

    if (operation === "invoke") {
      const message = finalMessage(events);
      const usage = message.usage as FakeUsage;
      return Response.json(message, {
        headers: {
          "x-amzn-requestid": crypto.randomUUID(),
          "x-amzn-bedrock-input-token-count": String(usage.input_tokens),
          "x-amzn-bedrock-output-token-count": String(usage.output_tokens),
          "x-amzn-bedrock-invocation-latency": "321",
        },
      });
    }
    const exception = step?.kind === "stream_exception" ? step : undefined;
    const sent = reply.endAfterEvents === undefined ? events : events.slice(0, reply.endAfterEvents);
    return streamResponse(sent, reply.eventDelayMs ?? 0, exception, record, gone, reply.stallAfterEvents);
  });

  // A promise although Deno.serve listens synchronously, so callers need not change if start-up becomes async.
  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    script: (...steps: FakeBedrockStep[]) => {
      queue.push(...steps);
    },
    close: () => {
      // Answers still streaming (a stall, a slow reply the client never finished) end now, or shutdown would
      // wait for them.
      closing.abort();
      return server.shutdown();
    },
  });
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

async function authenticate(
  req: Request,
  url: URL,
  raw: Uint8Array,
  iam: Record<string, string>,
  apiKeys: Set<string>,
  record: RecordedRequest,
): Promise<Response | undefined> {
  const header = req.headers.get("authorization") ?? "";
  if (header.startsWith("Bearer ")) {
    if (apiKeys.has(header.slice("Bearer ".length).trim())) {
      record.auth = "bearer";
      return undefined;
    }
    record.auth = "rejected";
    return bedrockError(
      403,
      "UnrecognizedClientException",
      "Invalid API Key format: Must start with pre-defined prefix",
    );
  }
  const m = header.match(
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/,
  );
  if (!m) {
    record.auth = "rejected";
    return bedrockError(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
  }
  const [, accessKeyId, , region, service, signedHeaders, signature] = m;
  record.accessKeyId = accessKeyId;
  record.region = region;
  const secret = Object.hasOwn(iam, accessKeyId) ? iam[accessKeyId] : undefined;
  if (secret === undefined) {
    record.auth = "rejected";
    return bedrockError(
      403,
      "UnrecognizedClientException",
      "The security token included in the request is invalid.",
    );
  }
  const expected = await expectedSignature(req, url, raw, {
    accessKeyId,
    secretAccessKey: secret,
    region,
    service,
    signedHeaders: signedHeaders.split(";"),
  });
  if (expected !== signature) {
    record.auth = "rejected";
    return bedrockError(
      403,
      "InvalidSignatureException",
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret " +
        "Access Key and signing method. Consult the service documentation for details.",
    );
  }
  record.auth = "sigv4";
  return undefined;
}

/** Re-signs the request as the client should have, with the secret the fake knows for the access key. */
async function expectedSignature(
  req: Request,
  url: URL,
  raw: Uint8Array,
  c: {
    accessKeyId: string;
    secretAccessKey: string;
    region: string;
    service: string;
    signedHeaders: string[];
  },
): Promise<string | undefined> {
  const amzDate = req.headers.get("x-amz-date");
  if (!amzDate) return undefined;
  const signingDate = new Date(
    amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, "$1-$2-$3T$4:$5:$6Z"),
  );
  // The signer trusts a present x-amz-content-sha256; the service checks it against the body.
  const declaredHash = req.headers.get("x-amz-content-sha256");
  if (declaredHash && declaredHash !== "UNSIGNED-PAYLOAD" && declaredHash !== await sha256Hex(raw)) {
    return undefined;
  }
  const headers: Record<string, string> = {};
  for (const name of c.signedHeaders) headers[name] = req.headers.get(name) ?? "";
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: req.headers.get("x-amz-security-token") ?? undefined,
    },
    region: c.region,
    service: c.service,
    sha256: Sha256,
    // Only what the client signed may enter the canonical request.
    applyChecksum: c.signedHeaders.includes("x-amz-content-sha256"),
  });
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signed = await signer.sign({
    method: req.method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    // The path exactly as sent (the model id still percent-encoded), as the client signed it.
    path: url.pathname,
    query,
    headers,
    body: raw,
  }, { signingDate, signableHeaders: new Set(c.signedHeaders) });
  return String(signed.headers["authorization"] ?? "").match(/Signature=([0-9a-f]+)/)?.[1];
}

async function sha256Hex(data: Uint8Array): Promise<string> {
  const hash = new Sha256();
  hash.update(data);
  return Array.from(await hash.digest(), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The top-level keys Bedrock's Anthropic Messages body takes, as AWS documents them (written out here, not taken
 * from the proxy, so the fake refuses what Bedrock refuses whatever the proxy's list says); the gated ones only
 * with their beta.
 */
const BODY_KEYS = new Set([
  "anthropic_version",
  "anthropic_beta",
  "max_tokens",
  "messages",
  "system",
  "stop_sequences",
  "temperature",
  "top_p",
  "top_k",
  "tools",
  "tool_choice",
  "thinking",
  "output_config",
  "context_management",
  "compaction",
]);
const GATED_KEYS: Record<string, string> = {
  context_management: "context-management-2025-06-27",
  compaction: "compact-2026-09-04",
};

/** The models AWS lists as taking `output_config.format` on InvokeModel (base ids). */
const STRUCTURED_OUTPUT_MODELS = new Set([
  "anthropic.claude-sonnet-4-5-20250929-v1:0",
  "anthropic.claude-haiku-4-5-20251001-v1:0",
  "anthropic.claude-opus-4-5-20251101-v1:0",
  "anthropic.claude-opus-4-6-v1",
]);

/** Bedrock refuses top-level keys it does not know, and a structured-output format for a model without it. */
function validateBody(body: unknown, modelId: string): string | undefined {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    return "Malformed input request: expected a JSON object";
  }
  const b = body as Record<string, unknown>;
  if (b.anthropic_version !== "bedrock-2023-05-31") {
    return "Malformed input request: #: required key [anthropic_version] not found or invalid, please reformat your input and try again.";
  }
  const betas = Array.isArray(b.anthropic_beta) ? b.anthropic_beta : [];
  for (const key of Object.keys(b)) {
    if (!BODY_KEYS.has(key) || (Object.hasOwn(GATED_KEYS, key) && !betas.includes(GATED_KEYS[key]))) {
      return `Malformed input request: #: extraneous key [${key}] is not permitted, please reformat your input and try again.`;
    }
  }
  // As Bedrock has answered Claude Code's first-party system prompt and cache markers (see translate.ts).
  const system = typeof b.system === "string"
    ? [{ text: b.system }]
    : Array.isArray(b.system)
    ? b.system
    : [];
  if (
    system.some((s) => String((s as { text?: unknown })?.text ?? "").includes("x-anthropic-billing-header"))
  ) {
    return "x-anthropic-billing-header is a reserved keyword and may not be used in the system prompt.";
  }
  const scoped = findCacheScope(b);
  if (scoped) return `${scoped}.cache_control.ephemeral.scope: Extra inputs are not permitted`;
  const config = b.output_config as Record<string, unknown> | undefined;
  for (const key of Object.keys(config ?? {})) {
    const base = modelId.slice(modelId.indexOf("anthropic."));
    if (key === "effort" || (key === "format" && STRUCTURED_OUTPUT_MODELS.has(base))) continue;
    return `output_config.${key}: Extra inputs are not permitted`;
  }
  // Thinking modes and effort by model, as Anthropic documents them: manual thinking up to 4.6, adaptive from
  // 4.6, effort on Opus 4.5 and from 4.6; thinking.display from 4.7 and system turns from 4.8, as Bedrock has
  // answered them. Read here on its own terms, not with the proxy's parser.
  const version = fakeClaudeVersion(modelId);
  if (version !== null) {
    const type = (b.thinking as { type?: unknown } | undefined)?.type;
    if (type === "adaptive" && version.v < 406) {
      return "thinking.type: Input tag 'adaptive' found using 'type' does not match any of the expected tags: 'disabled', 'enabled'";
    }
    if (type === "enabled" && version.v >= 407) {
      return "thinking.type.enabled is not supported for this model. Use thinking.type.adaptive and output_config.effort instead.";
    }
    if (version.v < 407 && b.thinking && typeof b.thinking === "object" && "display" in b.thinking) {
      return `thinking.${String(type)}.display: Extra inputs are not permitted`;
    }
    const messages = Array.isArray(b.messages) ? b.messages : [];
    if (version.v < 408 && messages.some((m) => (m as { role?: unknown })?.role === "system")) {
      return 'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message';
    }
    const effort = config !== undefined && Object.hasOwn(config, "effort");
    if (effort && !(version.v >= 406 || (version.v === 405 && version.family === "opus"))) {
      return "output_config.effort: Extra inputs are not permitted";
    }
  }
  const budget = (b.thinking as { budget_tokens?: unknown } | undefined)?.budget_tokens;
  // Interleaved thinking lets the budget exceed max_tokens (it spans the whole turn).
  const interleaved = Array.isArray(b.anthropic_beta) &&
    b.anthropic_beta.includes("interleaved-thinking-2025-05-14");
  if (
    typeof budget === "number" && typeof b.max_tokens === "number" && b.max_tokens <= budget && !interleaved
  ) {
    return "max_tokens must be greater than thinking.budget_tokens";
  }
  return undefined;
}

/** `anthropic.claude-<family>-<major>-<minor>…` (any prefix) → major × 100 + minor; older `claude-3-7-sonnet` too. */
function fakeClaudeVersion(modelId: string): { v: number; family: string } | null {
  const at = modelId.indexOf("anthropic.claude-");
  if (at < 0) return null;
  const parts = modelId.slice(at + "anthropic.claude-".length).split(/[-:]/);
  const minorOf = (p: string | undefined) => (p !== undefined && /^\d{1,2}$/.test(p) ? Number(p) : 0);
  if (/^[a-z]+$/.test(parts[0]) && /^\d+$/.test(parts[1] ?? "")) {
    return { family: parts[0], v: Number(parts[1]) * 100 + minorOf(parts[2]) };
  }
  if (/^\d$/.test(parts[0])) {
    const family = /^[a-z]+$/.test(parts[1]) ? parts[1] : parts[2];
    return { family, v: Number(parts[0]) * 100 + minorOf(/^[a-z]+$/.test(parts[1]) ? undefined : parts[1]) };
  }
  return null;
}

/** The path of the first block whose `cache_control` has more than Bedrock's `type` and `ttl`, if any. */
function findCacheScope(b: Record<string, unknown>): string | undefined {
  const walk = (value: unknown, path: string): string | undefined => {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const found = walk(value[i], `${path}.${i}`);
        if (found) return found;
      }
      return undefined;
    }
    if (value === null || typeof value !== "object") return undefined;
    const o = value as Record<string, unknown>;
    const cc = o.cache_control;
    if (cc && typeof cc === "object" && Object.keys(cc).some((k) => k !== "type" && k !== "ttl")) return path;
    return Array.isArray(o.content) ? walk(o.content, `${path}.content`) : undefined;
  };
  for (const field of ["system", "tools", "messages"]) {
    const found = walk(b[field], field);
    if (found) return found;
  }
  return undefined;
}

function defaultMessage(errorType: string): string {
  switch (errorType) {
    case "ThrottlingException":
      return "Too many requests, please wait before trying again.";
    case "ValidationException":
      return "The provided request is not valid";
    case "AccessDeniedException":
      return "You don't have access to the model with the specified model ID.";
    case "ServiceUnavailableException":
      return "Bedrock is unable to process your request.";
    default:
      return "The server encountered an internal error while processing the request.";
  }
}

/** An error answer in Bedrock's REST-JSON shape. */
function bedrockError(status: number, errorType: string, message: string): Response {
  return new Response(JSON.stringify({ message }), {
    status,
    headers: {
      "content-type": "application/json",
      "x-amzn-errortype": `${errorType}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
      "x-amzn-requestid": crypto.randomUUID(),
    },
  });
}

/** The Anthropic streaming events of a reply, in the order Anthropic sends them. */
function anthropicEvents(reply: FakeReply, modelId: string): Record<string, unknown>[] {
  const usage: FakeUsage = { ...DEFAULT_USAGE, ...reply.usage };
  const deltas = Array.isArray(reply.text)
    ? reply.text
    : splitText(reply.text ?? "Hello from the fake Bedrock!");
  const events: Record<string, unknown>[] = [
    {
      type: "message_start",
      message: {
        id: reply.messageId ?? `msg_bdrk_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`,
        type: "message",
        role: "assistant",
        model: reply.model ?? bareModel(modelId),
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: reply.eventUsage === "minimal" ? { input_tokens: usage.input_tokens } : {
          input_tokens: usage.input_tokens,
          cache_creation_input_tokens: usage.cache_creation_input_tokens,
          cache_read_input_tokens: usage.cache_read_input_tokens,
          ...(usage.cache_creation ? { cache_creation: usage.cache_creation } : {}),
          output_tokens: 1,
        },
      },
    },
    { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
    { type: "ping" },
    ...deltas.map((text) => ({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } })),
    { type: "content_block_stop", index: 0 },
  ];
  if (reply.toolUse) {
    const json = JSON.stringify(reply.toolUse.input);
    const half = Math.ceil(json.length / 2);
    events.push(
      {
        type: "content_block_start",
        index: 1,
        content_block: { type: "tool_use", id: reply.toolUse.id, name: reply.toolUse.name, input: {} },
      },
      { type: "content_block_delta", index: 1, delta: { type: "input_json_delta", partial_json: "" } },
      {
        type: "content_block_delta",
        index: 1,
        delta: { type: "input_json_delta", partial_json: json.slice(0, half) },
      },
      {
        type: "content_block_delta",
        index: 1,
        delta: { type: "input_json_delta", partial_json: json.slice(half) },
      },
      { type: "content_block_stop", index: 1 },
    );
  }
  events.push(
    {
      type: "message_delta",
      delta: {
        stop_reason: reply.stopReason ?? (reply.toolUse ? "tool_use" : "end_turn"),
        stop_sequence: null,
      },
      usage: { output_tokens: usage.output_tokens },
    },
    {
      type: "message_stop",
      "amazon-bedrock-invocationMetrics": {
        inputTokenCount: usage.input_tokens,
        outputTokenCount: usage.output_tokens,
        invocationLatency: 321,
        firstByteLatency: 123,
        cacheReadInputTokenCount: usage.cache_read_input_tokens,
        cacheWriteInputTokenCount: usage.cache_creation_input_tokens,
      },
    },
  );
  return events;
}

/** The non-streaming message equivalent to a list of streaming events. */
function finalMessage(events: Record<string, unknown>[]): Record<string, unknown> {
  const start = events[0].message as Record<string, unknown>;
  const content: Record<string, unknown>[] = [];
  let partial = "";
  let delta: Record<string, unknown> = {};
  let usage = { ...(start.usage as Record<string, unknown>) };
  for (const e of events) {
    if (e.type === "content_block_start") content.push({ ...(e.content_block as Record<string, unknown>) });
    if (e.type === "content_block_delta") {
      const d = e.delta as Record<string, string>;
      const block = content[e.index as number];
      if (d.type === "text_delta") block.text = String(block.text) + d.text;
      if (d.type === "input_json_delta") partial += d.partial_json;
    }
    if (e.type === "content_block_stop" && content[e.index as number].type === "tool_use") {
      content[e.index as number].input = JSON.parse(partial || "{}");
      partial = "";
    }
    if (e.type === "message_delta") {
      delta = e.delta as Record<string, unknown>;
      usage = { ...usage, ...(e.usage as Record<string, unknown>) };
    }
  }
  return { ...start, content, ...delta, usage };
}

function splitText(text: string): string[] {
  const words = text.split(/(?<= )/);
  const parts: string[] = [];
  for (let i = 0; i < words.length; i += 2) parts.push(words.slice(i, i + 2).join(""));
  return parts.length ? parts : [""];
}

/** `global.anthropic.claude-x-20250101-v1:0` → `claude-x-20250101`, as Bedrock reports the model. */
function bareModel(modelId: string): string {
  const id = modelId.includes("anthropic.")
    ? modelId.slice(modelId.indexOf("anthropic.") + "anthropic.".length)
    : modelId;
  return id.replace(/-v\d+(?::\d+)?$/, "");
}

function chunkFrame(event: Record<string, unknown>): Uint8Array {
  const bytes = base64(new TextEncoder().encode(JSON.stringify(event)));
  // "p" is the random padding Bedrock adds so payload sizes do not leak token lengths.
  const payload = JSON.stringify({
    bytes,
    p: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ".slice(0, 1 + (bytes.length % 30)),
  });
  return codec.encode({
    headers: {
      ":event-type": { type: "string", value: "chunk" },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "event" },
    },
    body: fromUtf8(payload),
  });
}

function base64(data: Uint8Array): string {
  let binary = "";
  for (const byte of data) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function exceptionFrame(exceptionType: string, message: string): Uint8Array {
  return codec.encode({
    headers: {
      ":exception-type": { type: "string", value: exceptionType },
      ":content-type": { type: "string", value: "application/json" },
      ":message-type": { type: "string", value: "exception" },
    },
    body: fromUtf8(JSON.stringify({ message })),
  });
}

function streamResponse(
  events: Record<string, unknown>[],
  delayMs: number,
  exception: { afterEvents: number; exceptionType: string; message?: string } | undefined,
  record: RecordedRequest,
  gone: AbortController,
  stallAfterEvents?: number,
): Response {
  const signal = gone.signal;
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (delayMs > 0) await sleep(delayMs, signal);
      if (stallAfterEvents !== undefined && i >= stallAfterEvents) await sleep(3_600_000, signal);
      if (signal.aborted) {
        // The client left, or the fake is closing: the answer ends here, cleanly (shutdown would wait for it, and
        // the server logs an errored one). A cancelled stream refuses the close.
        try {
          controller.close();
        } catch { /* cancelled */ }
        return;
      }
      if (exception && i === exception.afterEvents) {
        controller.enqueue(
          exceptionFrame(
            exception.exceptionType,
            exception.message ?? "The stream was interrupted; please retry.",
          ),
        );
        controller.close();
        return;
      }
      if (i >= events.length) {
        controller.close();
        return;
      }
      const event = events[i++];
      record.sentEvents.push(event);
      controller.enqueue(chunkFrame(event));
    },
    cancel() {
      record.aborted = true;
      gone.abort();
    },
  }, { highWaterMark: 0 });
  return new Response(stream, {
    headers: {
      "content-type": "application/vnd.amazon.eventstream",
      "x-amzn-bedrock-content-type": "application/json",
      "x-amzn-requestid": crypto.randomUUID(),
    },
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
