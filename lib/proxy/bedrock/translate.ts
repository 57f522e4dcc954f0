/**
 * Anthropic Messages request → Bedrock InvokeModel body.
 *
 * Bedrock's Claude models take the Anthropic Messages body almost verbatim; the differences are few and
 * mechanical: the model lives in the URL, streaming is a different operation, the API version is a body field,
 * beta flags travel in the body instead of the `anthropic-beta` header, and Bedrock's schema refuses any
 * top-level field it does not know with 400 "extraneous key … is not permitted", so only the fields it documents
 * go. Within those fields — content blocks, tools, thinking, cache_control, sampling parameters — everything
 * passes through untouched, which is what keeps the fallback answer faithful to what the client asked for.
 */
import { baseModelId } from "./model_map.ts";

/** The `anthropic_version` Bedrock requires for the Messages API. */
export const BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31";

/**
 * Beta flags Bedrock's Claude models accept in `anthropic_beta`. Claude Code sends a long list in
 * `anthropic-beta`, several of them Anthropic-only (`claude-code-20250219`, `oauth-2025-04-20`, …); an unknown
 * flag makes Bedrock answer 400, so only these are forwarded. Operators can replace the list by configuration.
 */
export const DEFAULT_BEDROCK_BETAS: readonly string[] = Object.freeze([
  "computer-use-2024-10-22",
  "computer-use-2025-01-24",
  "computer-use-2025-11-24",
  "token-efficient-tools-2025-02-19",
  "interleaved-thinking-2025-05-14",
  "output-128k-2025-02-19",
  "dev-full-thinking-2025-05-14",
  "fine-grained-tool-streaming-2025-05-14",
  "context-1m-2025-08-07",
  "context-management-2025-06-27",
  "effort-2025-11-24",
  "tool-search-tool-2025-10-19",
  "tool-examples-2025-10-29",
  "thinking-token-count-2026-05-13",
]);

/**
 * The top-level fields of Bedrock's Anthropic Messages body (AWS, "Anthropic Claude Messages API": request and
 * response, adaptive thinking, compaction, structured outputs); `anthropic_version` and `anthropic_beta` are
 * written by the translation itself. Everything else is left out: the Anthropic API gains body fields before
 * Bedrock does, and a single one Bedrock does not know makes it refuse the request, so a deny-list let each new
 * field break every fallback answer of a conversation for the whole outage (Claude Code 2.1.332 sends
 * `fallback_credit_token`, `resumption`, `context_hint` and `fallbacks`; earlier versions `metadata`,
 * `service_tier`, `inference_geo`, `speed`, `container`, `mcp_servers`). What is left out is Anthropic's own
 * bookkeeping and server-side features Bedrock does not run; the answer does not depend on it. Operators can
 * replace the list by configuration (a field Bedrock starts to take can then go without a release).
 */
export const BEDROCK_BODY_FIELDS: readonly string[] = Object.freeze([
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

/**
 * Fields Bedrock accepts only together with a beta flag: kept when that flag is among the betas forwarded to
 * Bedrock, dropped otherwise. Claude Code sends `context_management` on most requests; Bedrock accepts it with
 * `context-management-2025-06-27` and rejects it without. Bedrock's top-level `compaction` goes with
 * `compact-2026-09-04`.
 */
export const DEFAULT_BETA_GATED_FIELDS: Readonly<Record<string, string>> = Object.freeze({
  context_management: "context-management-2025-06-27",
  compaction: "compact-2026-09-04",
});

/**
 * Bedrock models that take a structured-output format (`output_config.format`) on InvokeModel, by base id (AWS,
 * "Structured outputs for Anthropic Claude models": Claude Sonnet 4.5, Haiku 4.5, Opus 4.5 and Opus 4.6 on
 * bedrock-runtime, generally available since 2026-02-04). Only models named there: a model that does not take
 * the field refuses the whole request, while one left off this list still answers through the system-prompt
 * instruction, so a model is added when AWS lists it, not before.
 */
export const BEDROCK_STRUCTURED_OUTPUT_MODELS: readonly string[] = Object.freeze([
  "anthropic.claude-sonnet-4-5-20250929-v1:0",
  "anthropic.claude-haiku-4-5-20251001-v1:0",
  "anthropic.claude-opus-4-5-20251101-v1:0",
  "anthropic.claude-opus-4-6-v1",
]);

/**
 * Whether the Bedrock model `modelId` takes `output_config.format`: a base id, an inference profile
 * (`global.`, `us.`, …) or an ARN naming one of {@link BEDROCK_STRUCTURED_OUTPUT_MODELS}. An application
 * inference profile's ARN does not say which model it serves, so it is taken not to.
 */
export function takesStructuredOutputs(modelId: string): boolean {
  return BEDROCK_STRUCTURED_OUTPUT_MODELS.includes(baseModelId(modelId));
}

/**
 * Fields of a message (not of the body) that go only with their beta: Claude Code 2.1.332 sends a turn's own
 * `output_config` (`{"effort": …}` on a mid-conversation message) with `per-turn-control-2026-07-01`, which
 * Bedrock does not know; the flag is dropped, so the field goes too (Bedrock refuses it: "messages.1.output_config:
 * Extra inputs are not permitted", and its own Bedrock mode never sends it).
 */
const BETA_GATED_MESSAGE_FIELDS: Readonly<Record<string, string>> = Object.freeze({
  output_config: "per-turn-control-2026-07-01",
});

/** Options of {@link toBedrockBody}. */
export interface TranslateOptions {
  /** Beta flags that may be forwarded to Bedrock (others from the header are dropped). */
  allowedBetas: readonly string[];
  /** Top-level fields that may go to Bedrock; {@link BEDROCK_BODY_FIELDS} (the default). */
  allowedFields?: readonly string[];
  /** Top-level fields to remove even though allowed (none by default). */
  droppedFields?: readonly string[];
  /** Field → beta flag it needs; see {@link DEFAULT_BETA_GATED_FIELDS} (the default). */
  betaGatedFields?: Readonly<Record<string, string>>;
  /**
   * Whether the Bedrock model takes `output_config.format` ({@link takesStructuredOutputs}); when not (the
   * default), a format becomes an instruction in the system prompt.
   */
  structuredOutputs?: boolean;
  /**
   * Whether the Bedrock model takes `thinking.display` (`takesThinkingDisplay`); when false, it is left out.
   * Kept when not said.
   */
  thinkingDisplay?: boolean;
  /**
   * Told the names of the fields left out (top-level, and `output_config.<key>`), when there are any; never
   * their values, which may hold tokens.
   */
  onDropped?: (fields: string[]) => void;
}

/**
 * Fields translated rather than forwarded: the model is in the URL, streaming is chosen by the operation, the
 * version and betas are written by the translation, and the structured-outputs beta's `output_format` becomes
 * `output_config.format` (or the system-prompt instruction).
 */
const TRANSLATED = new Set(["model", "stream", "anthropic_version", "anthropic_beta", "output_format"]);

/**
 * Builds the Bedrock InvokeModel / InvokeModelWithResponseStream body (JSON bytes) from an Anthropic Messages
 * request body and the values of its `anthropic-beta` header(s) (each possibly comma-separated).
 * The input object is not modified.
 */
export function toBedrockBody(
  body: Record<string, unknown>,
  betaHeaderValues: string[],
  opts: TranslateOptions,
): Uint8Array {
  const betas = bedrockBetas(betaHeaderValues, opts.allowedBetas);
  const gated = opts.betaGatedFields ?? DEFAULT_BETA_GATED_FIELDS;
  const allowed = new Set(opts.allowedFields ?? BEDROCK_BODY_FIELDS);
  for (const field of opts.droppedFields ?? []) allowed.delete(field);

  const rest: Record<string, unknown> = {};
  const dropped: string[] = [];
  for (const [field, value] of Object.entries(body)) {
    if (TRANSLATED.has(field)) continue;
    const beta = Object.hasOwn(gated, field) ? gated[field] : undefined;
    if (allowed.has(field) && (beta === undefined || betas.includes(beta))) rest[field] = value;
    else dropped.push(field);
  }
  structuredOutput(rest, body.output_format, opts.structuredOutputs === true, dropped);
  dropGatedMessageFields(rest, betas);
  dropBillingHeader(rest, dropped);
  if (opts.thinkingDisplay === false) dropThinkingDisplay(rest, dropped);
  if (!betas.includes(CACHE_SCOPE_BETA)) dropCacheScope(rest, dropped);
  if (dropped.length > 0) opts.onDropped?.(dropped);

  const out: Record<string, unknown> = { anthropic_version: BEDROCK_ANTHROPIC_VERSION };
  if (betas.length > 0) out.anthropic_beta = betas;
  Object.assign(out, rest);
  return new TextEncoder().encode(JSON.stringify(out));
}

/**
 * Claude Code's attribution line, which it puts first in `system` (a text block
 * `x-anthropic-billing-header: cc_version=…; cc_entrypoint=…;`, seen in 2.1.332). Bedrock has refused whole
 * requests for it: "x-anthropic-billing-header is a reserved keyword and may not be used in the system prompt"
 * (anthropics/claude-code#24168, early 2026). 2.1.332 sends it in its own Bedrock mode too, so Bedrock may take it
 * now; it is left out all the same, as it carries no instruction for the model and is no bill of Bedrock's.
 */
export const BILLING_HEADER_PREFIX = "x-anthropic-billing-header:";

/**
 * The beta that lets `cache_control` carry a `scope` (Claude Code marks its system prompt
 * `{"type":"ephemeral","ttl":"1h","scope":"global"}`). Bedrock takes only `type` and `ttl` there and refuses the
 * request otherwise ("system.0.cache_control.ephemeral.scope: Extra inputs are not permitted"), so unless an
 * operator allows this beta for Bedrock, the scope is left out; the block is still cached.
 */
export const CACHE_SCOPE_BETA = "prompt-caching-scope-2026-01-05";

/** Removes `thinking.display`, which Claude Code sends every model and Bedrock's older ones refuse. */
function dropThinkingDisplay(body: Record<string, unknown>, dropped: string[]): void {
  const thinking = body.thinking;
  if (thinking === null || typeof thinking !== "object" || !Object.hasOwn(thinking, "display")) return;
  const { display: _display, ...rest } = thinking as Record<string, unknown>;
  body.thinking = rest;
  dropped.push("thinking.display");
}

/** Removes Claude Code's attribution block ({@link BILLING_HEADER_PREFIX}) from `system`. */
function dropBillingHeader(body: Record<string, unknown>, dropped: string[]): void {
  const system = body.system;
  const isHeader = (b: unknown) =>
    b !== null && typeof b === "object" && typeof (b as { text?: unknown }).text === "string" &&
    (b as { text: string }).text.startsWith(BILLING_HEADER_PREFIX);
  if (Array.isArray(system)) {
    if (!system.some(isHeader)) return;
    const rest = system.filter((b) => !isHeader(b));
    if (rest.length > 0) body.system = rest;
    else delete body.system;
  } else if (typeof system === "string" && system.startsWith(BILLING_HEADER_PREFIX)) {
    const rest = system.includes("\n") ? system.slice(system.indexOf("\n") + 1) : "";
    if (rest === "") delete body.system;
    else body.system = rest;
  } else return;
  dropped.push("system.x-anthropic-billing-header");
}

/**
 * Removes `scope` from every `cache_control` in `system`, `tools` and the messages' content blocks (a tool result's
 * and a document source's own blocks included), copying only what changes: the input stays as it was.
 */
function dropCacheScope(body: Record<string, unknown>, dropped: string[]): void {
  let found = false;
  const block = (b: unknown): unknown => {
    if (b === null || typeof b !== "object" || Array.isArray(b)) return b;
    const o = b as Record<string, unknown>;
    let out = o;
    const cc = o.cache_control;
    if (cc !== null && typeof cc === "object" && !Array.isArray(cc) && Object.hasOwn(cc, "scope")) {
      const { scope: _scope, ...kept } = cc as Record<string, unknown>;
      out = { ...o, cache_control: kept };
      found = true;
    }
    if (Array.isArray(o.content)) {
      const content = blocks(o.content);
      if (content !== o.content) out = { ...out, content };
    }
    // A document whose source is content blocks of its own.
    const source = o.source as { content?: unknown } | null | undefined;
    if (source && typeof source === "object" && Array.isArray(source.content)) {
      const content = blocks(source.content);
      if (content !== source.content) out = { ...out, source: { ...source, content } };
    }
    return out;
  };
  const blocks = (list: unknown[]): unknown[] => {
    let copy: unknown[] | null = null;
    list.forEach((b, i) => {
      const next = block(b);
      if (next !== b) (copy ??= [...list])[i] = next;
    });
    return copy ?? list;
  };
  for (const field of ["system", "tools", "messages"]) {
    const value = body[field];
    if (Array.isArray(value)) body[field] = blocks(value);
  }
  if (found) dropped.push("cache_control.scope");
}

/** Removes from each message the fields whose beta does not go to Bedrock; messages without them are kept as is. */
function dropGatedMessageFields(body: Record<string, unknown>, betas: readonly string[]): void {
  if (!Array.isArray(body.messages)) return;
  const dropped = Object.entries(BETA_GATED_MESSAGE_FIELDS).filter(([, beta]) => !betas.includes(beta));
  if (dropped.length === 0) return;
  let copied: unknown[] | null = null;
  body.messages.forEach((m: unknown, i: number) => {
    if (m === null || typeof m !== "object" || Array.isArray(m)) return;
    if (!dropped.some(([field]) => Object.hasOwn(m, field))) return;
    const kept: Record<string, unknown> = { ...m };
    for (const [field] of dropped) delete kept[field];
    copied ??= [...(body.messages as unknown[])];
    copied[i] = kept;
  });
  if (copied) body.messages = copied;
}

/** The `output_config` keys every Bedrock Claude model takes; `format` goes only to those that take it. */
const BEDROCK_OUTPUT_CONFIG_KEYS = new Set(["effort"]);

/**
 * Structured outputs on Bedrock. The models AWS lists take `output_config.format` as the Anthropic API does
 * ({@link takesStructuredOutputs}); the structured-outputs beta's `output_format`, which Bedrock deprecates, goes
 * there as `output_config.format`. Other models refuse the field, and recent Claude Code sends a format on some of
 * its own side requests (titles, summaries): forwarded, each would fail on Bedrock, so the fallback could never
 * answer them. For those the format's JSON schema becomes an instruction at the end of the system prompt (after
 * any cached blocks, so their prefix is unchanged): the answer then follows the schema as the model is told to,
 * not as a constrained decoder guarantees. `output_config`'s keys Bedrock does not take are dropped (and named in
 * `dropped`); `effort` stays.
 */
function structuredOutput(
  body: Record<string, unknown>,
  betaFormat: unknown,
  native: boolean,
  dropped: string[],
): void {
  let format: unknown = betaFormat;
  const config = body.output_config;
  const isObject = config !== null && typeof config === "object" && !Array.isArray(config);
  const kept: Record<string, unknown> = {};
  if (isObject) {
    for (const [key, value] of Object.entries(config)) {
      // Of two formats (the beta's and this one), the one with a schema.
      if (key === "format") {
        if ((format as { schema?: unknown } | undefined)?.schema === undefined) format = value;
      } else if (BEDROCK_OUTPUT_CONFIG_KEYS.has(key)) kept[key] = value;
      else dropped.push(`output_config.${key}`);
    }
  }
  const schema = (format as { schema?: unknown } | null | undefined)?.schema;
  if (schema !== undefined && native) kept.format = format;
  if (Object.keys(kept).length > 0) body.output_config = kept;
  else if (isObject) delete body.output_config;
  if (schema === undefined || native) return;
  const instruction = {
    type: "text",
    text: "Answer only with JSON, and nothing before or after it, that conforms to this JSON Schema: " +
      JSON.stringify(schema),
  };
  const system = body.system;
  if (Array.isArray(system)) body.system = [...system, instruction];
  else if (typeof system === "string" && system !== "") {
    body.system = [{ type: "text", text: system }, instruction];
  } else body.system = [instruction];
}

/**
 * Anthropic API beta flags whose feature Bedrock offers under another name. Claude Code asks the Anthropic API for
 * tool search with `advanced-tool-use-2025-11-20`; in its own Bedrock mode it sends `tool-search-tool-2025-10-19`
 * for the same tools (seen with Claude Code 2.1.197). Without the rename the flag was dropped while the
 * `tool_search_tool_*` tool and its deferred tools stayed in the body, which Bedrock refuses.
 */
export const BEDROCK_BETA_NAMES: Readonly<Record<string, string>> = Object.freeze({
  "advanced-tool-use-2025-11-20": "tool-search-tool-2025-10-19",
});

/**
 * The beta flags to send to Bedrock: every flag from the header values, split on commas, trimmed, renamed to
 * Bedrock's name where it has its own ({@link BEDROCK_BETA_NAMES}), de-duplicated in order of first appearance,
 * and kept only if allowed.
 */
export function bedrockBetas(betaHeaderValues: readonly string[], allowedBetas: readonly string[]): string[] {
  const allowed = new Set(allowedBetas.map((b) => b.trim().toLowerCase()));
  const seen = new Set<string>();
  const result: string[] = [];
  for (const value of betaHeaderValues) {
    for (const part of value.split(",")) {
      const given = part.trim().toLowerCase();
      const flag = Object.hasOwn(BEDROCK_BETA_NAMES, given) ? BEDROCK_BETA_NAMES[given] : given;
      if (flag && allowed.has(flag) && !seen.has(flag)) {
        seen.add(flag);
        result.push(flag);
      }
    }
  }
  return result;
}

/**
 * Anthropic's server tools, which the Anthropic API runs itself (searching the web, fetching pages, running
 * code); Bedrock runs none of them and refuses a request that names one. Claude Code sends its web search as a
 * request of its own with only that tool.
 */
const SERVER_TOOL = /^(web_search|web_fetch|code_execution)_\d{8}$/;

/** The type of the first tool in `body` that only the Anthropic API runs, or null. */
export function anthropicOnlyTool(body: Record<string, unknown>): string | null {
  if (!Array.isArray(body.tools)) return null;
  for (const tool of body.tools) {
    const type = (tool as { type?: unknown } | null)?.type;
    if (typeof type === "string" && SERVER_TOOL.test(type)) return type;
  }
  return null;
}
