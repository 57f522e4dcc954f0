/**
 * Anthropic Messages request → Bedrock InvokeModel body.
 *
 * Bedrock's Claude models take the Anthropic Messages body almost verbatim; the differences are few and
 * mechanical: the model lives in the URL, streaming is a different operation, the API version is a body field,
 * beta flags travel in the body instead of the `anthropic-beta` header, and Bedrock's schema rejects some
 * top-level fields with 400 "extraneous key … is not permitted". Everything else — content blocks, tools,
 * thinking, cache_control, sampling parameters — passes through untouched, which is what keeps the fallback
 * answer faithful to what the client asked for.
 */

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
 * Top-level Anthropic request fields Bedrock's InvokeModel schema rejects (400 "extraneous key"): request
 * metadata (`metadata`), Anthropic's service tiers, data-residency routing and fast mode (`service_tier`,
 * `inference_geo`, `speed`),
 * and server-side features Bedrock does not run (`container` for code execution, `mcp_servers` for the MCP
 * connector). Dropping them loses nothing the answer depends on. Operators can replace the list by configuration.
 */
export const DEFAULT_DROPPED_FIELDS: readonly string[] = Object.freeze([
  "metadata",
  "service_tier",
  "inference_geo",
  "speed",
  "container",
  "mcp_servers",
]);

/**
 * Fields Bedrock accepts only together with a beta flag: kept when that flag is among the betas forwarded to
 * Bedrock, dropped otherwise. Claude Code sends `context_management` on most requests; Bedrock accepts it with
 * `context-management-2025-06-27` and rejects it without.
 */
export const DEFAULT_BETA_GATED_FIELDS: Readonly<Record<string, string>> = Object.freeze({
  context_management: "context-management-2025-06-27",
});

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
  /** Top-level fields to remove. */
  droppedFields: readonly string[];
  /** Field → beta flag it needs; see {@link DEFAULT_BETA_GATED_FIELDS} (the default). */
  betaGatedFields?: Readonly<Record<string, string>>;
}

/** Fields that never reach Bedrock: the model is in the URL, streaming is chosen by the operation. */
const ALWAYS_REMOVED = ["model", "stream"];

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

  const rest: Record<string, unknown> = { ...body };
  for (const field of [...ALWAYS_REMOVED, ...opts.droppedFields, "anthropic_version", "anthropic_beta"]) {
    delete rest[field];
  }
  for (const [field, beta] of Object.entries(gated)) {
    if (!betas.includes(beta)) delete rest[field];
  }
  promptStructuredOutput(rest);
  dropGatedMessageFields(rest, betas);

  const out: Record<string, unknown> = { anthropic_version: BEDROCK_ANTHROPIC_VERSION };
  if (betas.length > 0) out.anthropic_beta = betas;
  Object.assign(out, rest);
  return new TextEncoder().encode(JSON.stringify(out));
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

/** The `output_config` keys Bedrock's InvokeModel takes (it refuses `format`: "Extra inputs are not permitted"). */
const BEDROCK_OUTPUT_CONFIG_KEYS = new Set(["effort"]);

/**
 * Structured outputs on Bedrock. Bedrock refuses `output_config.format` and the beta's `output_format`, and
 * recent Claude Code sends a format on some of its own side requests (titles, summaries): forwarded, each would
 * fail on Bedrock, so the fallback could never answer them. The format's JSON schema becomes an instruction at
 * the end of the system prompt (after any cached blocks, so their prefix is unchanged): the answer then follows
 * the schema as the model is told to, not as a constrained decoder guarantees, which is the most Bedrock offers.
 * `output_config`'s other keys Bedrock does not take are dropped; `effort` stays.
 */
function promptStructuredOutput(body: Record<string, unknown>): void {
  let format: unknown = body.output_format;
  delete body.output_format;
  const config = body.output_config;
  if (config !== null && typeof config === "object" && !Array.isArray(config)) {
    const kept: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(config)) {
      // Of two formats (the beta's and this one), the one with a schema.
      if (key === "format" && (format as { schema?: unknown } | undefined)?.schema === undefined) {
        format = value;
      } else if (BEDROCK_OUTPUT_CONFIG_KEYS.has(key)) kept[key] = value;
    }
    if (Object.keys(kept).length > 0) body.output_config = kept;
    else delete body.output_config;
  }
  const schema = (format as { schema?: unknown } | null | undefined)?.schema;
  if (schema === undefined) return;
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
