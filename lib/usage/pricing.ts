/**
 * Model prices and request cost.
 *
 * The built-in table holds Anthropic's published list prices in USD per million tokens
 * (platform.claude.com/docs/en/about-claude/pricing, re-checked 2026-11). Bedrock bills Anthropic models at
 * the same list price on its global endpoint; its geographic/in-region endpoints (`us.`, `eu.`, ... ids)
 * cost about 10% more for Claude 4.5 and newer. That premium is deliberately not built in: an operator who
 * uses such an endpoint overrides the exact Bedrock id in `PROXY_MODEL_PRICING`.
 *
 * @module
 */

/**
 * Prices in USD per million tokens. `cacheWrite` is the 5-minute cache write price; 1-hour writes cost twice
 * `input`.
 */
export interface ModelPrice {
  /** Uncached input tokens. */
  input: number;
  /** Output tokens, including thinking. */
  output: number;
  /** Tokens written to the prompt cache with the default 5-minute lifetime. */
  cacheWrite: number;
  /** Tokens read from the prompt cache. */
  cacheRead: number;
}

/** Token counts of one request, as reported in the Messages API `usage` object. */
export interface TokenCounts {
  /** `usage.input_tokens`: input not read from or written to the cache. */
  inputTokens: number;
  /** `usage.output_tokens`. */
  outputTokens: number;
  /** `usage.cache_read_input_tokens`. */
  cacheReadInputTokens: number;
  /** `usage.cache_creation_input_tokens`. */
  cacheCreationInputTokens: number;
  /**
   * Of those, the ones written with the 1-hour lifetime (`usage.cache_creation.ephemeral_1h_input_tokens`),
   * billed at twice the input price instead of the 5-minute write price.
   */
  cacheCreation1hInputTokens?: number;
  /** `usage.speed`: `"fast"` when the request ran in fast mode, billed at a multiple of the model's rates. */
  speed?: string | null;
  /** `usage.inference_geo`: `"us"` when inference was kept in the US, billed at 1.1× the token rates. */
  inferenceGeo?: string | null;
  /** `usage.server_tool_use.web_search_requests`: web searches, billed per search on top of the tokens. */
  webSearchRequests?: number;
}

/** A price that switches to a second price when a request's prompt is longer than a threshold. */
interface Tier {
  /** Prompt tokens (input + cache read + cache write) above which `price` applies to the whole request. */
  above: number;
  price: ModelPrice;
}

interface Entry {
  price: ModelPrice;
  tier: Tier | null;
  /** Fast mode's multiple of every token rate, for the models that offer it. */
  fast: number | null;
}

const CACHE_WRITE_FACTOR = 1.25;
/** Anthropic bills 1-hour cache writes at 2× the base input price (5-minute writes: 1.25×). */
const CACHE_WRITE_1H_FACTOR = 2;
const CACHE_READ_FACTOR = 0.1;
/** US-only inference (`inference_geo: "us"`) costs 1.1× the token rates. */
const US_GEO_FACTOR = 1.1;
/** Web search: $10 per 1,000 searches, in micro-dollars per search. */
const WEB_SEARCH_MICRO_USD = 10_000;

/** Rounds to 6 decimals so derived prices such as 0.8 × 0.1 do not carry float noise. */
function round6(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

function price(input: number, output: number, cacheWrite?: number, cacheRead?: number): ModelPrice {
  return Object.freeze({
    input,
    output,
    cacheWrite: cacheWrite ?? round6(input * CACHE_WRITE_FACTOR),
    cacheRead: cacheRead ?? round6(input * CACHE_READ_FACTOR),
  });
}

function entry(p: ModelPrice, tier: Tier | null = null, fast: number | null = null): Entry {
  return Object.freeze({ price: p, tier, fast });
}

// Sonnet 4 and 4.5 bill every token of a request whose prompt exceeds 200k tokens (only possible with the
// 1M-context beta) at the long-context rate. Sonnet 4.6 and later price the full window at the base rate.
const SONNET_4_LONG: Tier = Object.freeze({ above: 200_000, price: price(6, 22.5) });
// Haiku 5.5 is priced by prompt length: up to 100k prompt tokens at the base rate, above it at this rate.
const HAIKU_5_5_LONG: Tier = Object.freeze({ above: 100_000, price: price(0.5, 2.5) });

/** Family key → entry. Keys are what {@link modelFamily} produces. */
const BUILT_IN: ReadonlyMap<string, Entry> = new Map<string, Entry>([
  // Fable and Mythos 5.1 and 5.2 cache reads are 0.025× input, not 0.1×. Fable 5.2 (2026-11-09) is $8/$40 with
  // $0.20 cache reads, as resellers quoting Anthropic's list price give it; Mythos 5.2 is the same model (AWS's
  // model card) and, as every Mythos before it, priced as its Fable.
  ["claude-fable-5-2", entry(price(8, 40, 10, 0.2))],
  ["claude-mythos-5-2", entry(price(8, 40, 10, 0.2))],
  ["claude-fable-5-1", entry(price(10, 50, 12.5, 0.25))],
  ["claude-fable-5", entry(price(10, 50, 12.5, 1))],
  ["claude-mythos-5-1", entry(price(10, 50, 12.5, 0.25))],
  ["claude-mythos-5", entry(price(10, 50, 12.5, 1))],
  // Fast mode (`speed: "fast"`): 2× on Opus 4.8 and later, 6× on Opus 4.6 and 4.7.
  ["claude-opus-5-5", entry(price(4, 20, 5, 0.2), null, 2)],
  ["claude-opus-5", entry(price(5, 25), null, 2)],
  ["claude-opus-4-8", entry(price(5, 25), null, 2)],
  ["claude-opus-4-7", entry(price(5, 25), null, 6)],
  ["claude-opus-4-6", entry(price(5, 25), null, 6)],
  ["claude-opus-4-5", entry(price(5, 25))],
  ["claude-opus-4-1", entry(price(15, 75))],
  ["claude-opus-4", entry(price(15, 75))],
  ["claude-opus-3", entry(price(15, 75))],
  // Sonnet 5.5 cache reads were cut from $0.20 to $0.10 on 2026-10-07.
  ["claude-sonnet-5-5", entry(price(2, 10, 2.5, 0.1))],
  ["claude-sonnet-5", entry(price(2, 10))],
  ["claude-sonnet-4-6", entry(price(3, 15))],
  ["claude-sonnet-4-5", entry(price(3, 15), SONNET_4_LONG)],
  ["claude-sonnet-4", entry(price(3, 15), SONNET_4_LONG)],
  ["claude-sonnet-3-7", entry(price(3, 15))],
  ["claude-sonnet-3-5", entry(price(3, 15))],
  ["claude-haiku-5-5", entry(price(0.1, 0.5), HAIKU_5_5_LONG)],
  ["claude-haiku-4-5", entry(price(1, 5))],
  ["claude-haiku-3-5", entry(price(0.8, 4))],
  // Haiku 3's published cache prices are rounded ($0.30 / $0.03), not exactly 1.25x / 0.1x.
  ["claude-haiku-3", entry(price(0.25, 1.25, 0.3, 0.03))],
]);

// Region prefixes of Bedrock cross-region inference profiles: global., us., eu., apac., jp., au., us-gov., ...
const REGION_PREFIX = /^[a-z]{2,6}(?:-[a-z]+)?\.(?=anthropic\.)/;
// Suffixes that name a snapshot rather than a family: a date (or -latest), then Bedrock's -v1:0 and :200k.
const SNAPSHOT = String.raw`((?:-(?:\d{8}|latest))?(?:-v\d+(?::[a-z0-9]+)*)?)`;
const NEW_STYLE = new RegExp(String.raw`^claude-([a-z]+)-(\d{1,2})(?:-(\d{1,2}))?` + SNAPSHOT + "$");
const OLD_STYLE = new RegExp(String.raw`^claude-(\d{1,2})(?:-(\d{1,2}))?-([a-z]+)` + SNAPSHOT + "$");

/**
 * Normalises an Anthropic model name or Bedrock model id to its family key, or returns null when the string
 * is not a Claude model name. `bare` is true when the input named the family itself (no provider prefix,
 * date, or version), which is what makes an override key apply to the whole family.
 *
 * @example
 * ```ts
 * modelFamily("global.anthropic.claude-sonnet-4-5-20250929-v1:0"); // { family: "claude-sonnet-4-5", bare: false }
 * modelFamily("claude-3-5-haiku"); // { family: "claude-haiku-3-5", bare: true }
 * ```
 */
export function modelFamily(model: string): { family: string; bare: boolean } | null {
  let s = model.trim().toLowerCase();
  const original = s;
  // Bedrock ARNs (inference profiles, provisioned models) end in the model id.
  const slash = s.lastIndexOf("/");
  if (slash >= 0) s = s.slice(slash + 1);
  // Claude Code's "[1m]" context marker and Vertex's "@20250929" snapshot suffix.
  const bracket = s.indexOf("[");
  if (bracket >= 0) s = s.slice(0, bracket);
  const at = s.indexOf("@");
  if (at >= 0) s = s.slice(0, at);
  s = s.replace(REGION_PREFIX, "");
  if (s.startsWith("anthropic.")) s = s.slice("anthropic.".length);

  let tier: string, major: string, minor: string | undefined, snapshot: string, m: RegExpExecArray | null;
  if ((m = NEW_STYLE.exec(s)) !== null) [, tier, major, minor, snapshot] = m;
  else if ((m = OLD_STYLE.exec(s)) !== null) [, major, minor, tier, snapshot] = m;
  else return null;
  // "claude-opus-4-0" is the alias of Opus 4, not a separate family.
  const family = minor === undefined || minor === "0"
    ? `claude-${tier}-${major}`
    : `claude-${tier}-${major}-${minor}`;
  return { family, bare: s === original && snapshot === "" };
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  const json = JSON.stringify(v);
  return json === undefined ? String(v) : json.length > 40 ? json.slice(0, 37) + "..." : json;
}

const FIELDS = ["input", "output", "cacheWrite", "cacheRead"] as const;

/**
 * Parses and validates `PROXY_MODEL_PRICING`: a JSON object mapping a model name, Bedrock id or family key to
 * prices in USD per million tokens. `input` and `output` are required; `cacheWrite` and `cacheRead` default
 * to 1.25× and 0.1× `input`. Throws one Error listing every problem, each naming the model key and field.
 *
 * @example
 * ```ts
 * parsePricingJson('{"claude-sonnet-4-5": {"input": 3.3, "output": 16.5}}');
 * // { "claude-sonnet-4-5": { input: 3.3, output: 16.5, cacheWrite: 4.125, cacheRead: 0.33 } }
 * ```
 */
export function parsePricingJson(text: string): Record<string, ModelPrice> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`PROXY_MODEL_PRICING: not valid JSON (${(e as Error).message})`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new Error(
      `PROXY_MODEL_PRICING: expected a JSON object of model → {"input", "output", "cacheWrite"?, "cacheRead"?}, got ${
        describe(data)
      }`,
    );
  }
  const out: Record<string, ModelPrice> = {};
  const problems: string[] = [];
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if (key.trim() === "") {
      problems.push("a model key is empty");
      continue;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      problems.push(
        `model '${key}': expected an object with input and output prices, got ${describe(value)}`,
      );
      continue;
    }
    const v = value as Record<string, unknown>;
    let ok = true;
    for (const field of Object.keys(v)) {
      if (!(FIELDS as readonly string[]).includes(field)) {
        problems.push(
          `model '${key}': unknown field '${field}' (expected input, output, cacheWrite, cacheRead)`,
        );
        ok = false;
      }
    }
    for (const field of FIELDS) {
      const n = v[field];
      const optional = field === "cacheWrite" || field === "cacheRead";
      if (n === undefined && optional) continue;
      if (typeof n !== "number" || !Number.isFinite(n) || n < 0) {
        problems.push(
          `model '${key}' field '${field}': expected a non-negative number (USD per million tokens), got ${
            describe(n)
          }`,
        );
        ok = false;
      }
    }
    if (ok) {
      out[key] = price(
        v.input as number,
        v.output as number,
        v.cacheWrite as number | undefined,
        v.cacheRead as number | undefined,
      );
    }
  }
  if (problems.length > 0) throw new Error(`PROXY_MODEL_PRICING: ${problems.join("; ")}`);
  return out;
}

const MEMO_LIMIT = 512;

/** Clamps a token count from upstream to a non-negative number; a missing or malformed field counts as 0. */
function tokens(n: number): number {
  return n > 0 ? n : 0;
}

/**
 * The price table in use: the built-in Anthropic list prices with operator overrides on top.
 *
 * An override key that names a family (`claude-sonnet-4-5`, `claude-3-5-haiku`, `claude-opus-4-0`) replaces
 * that family's price for every name and Bedrock id of it; any other key (`claude-sonnet-4-5-20250929`,
 * `us.anthropic.claude-sonnet-4-5-20250929-v1:0`) applies to exactly that string and wins over a family
 * override. An overridden price is flat: it drops the built-in long-context tier.
 *
 * @example
 * ```ts
 * const book = new PriceBook(parsePricingJson(Deno.env.get("PROXY_MODEL_PRICING") ?? "{}"));
 * book.cost("anthropic.claude-haiku-4-5-20251001-v1:0", {
 *   inputTokens: 1000, outputTokens: 200, cacheReadInputTokens: 0, cacheCreationInputTokens: 0,
 * }); // { costUsd: 0.002, priced: true }
 * ```
 */
export class PriceBook {
  readonly #exact = new Map<string, Entry>();
  readonly #family = new Map<string, Entry>();
  // Every request prices its model string; parsing it once per distinct string keeps the hot path cheap.
  readonly #memo = new Map<string, Entry | null>();

  /** Builds the table; `overrides` come from {@link parsePricingJson}, keyed by family key or model name/id. */
  constructor(overrides: Record<string, ModelPrice> = {}) {
    for (const [key, p] of Object.entries(overrides)) {
      const parsed = modelFamily(key);
      // An overridden price (a negotiated rate) still pays fast mode's premium as a multiple of it.
      const fast = parsed === null ? null : BUILT_IN.get(parsed.family)?.fast ?? null;
      const e = entry(price(p.input, p.output, p.cacheWrite, p.cacheRead), null, fast);
      if (parsed !== null && parsed.bare) this.#family.set(parsed.family, e);
      else this.#exact.set(key.trim().toLowerCase(), e);
    }
  }

  #lookup(model: string): Entry | null {
    const memo = this.#memo.get(model);
    if (memo !== undefined) return memo;
    const exact = this.#exact.get(model.trim().toLowerCase());
    let found: Entry | null = exact ?? null;
    if (found === null) {
      const parsed = modelFamily(model);
      if (parsed !== null) found = this.#family.get(parsed.family) ?? BUILT_IN.get(parsed.family) ?? null;
    }
    // Bounded: clients choose the model string, so evict the oldest entry rather than grow without limit.
    if (this.#memo.size >= MEMO_LIMIT) this.#memo.delete(this.#memo.keys().next().value!);
    this.#memo.set(model, found);
    return found;
  }

  /**
   * The base price of a model (a frozen object), or null when the model is unknown.
   *
   * @example
   * ```ts
   * new PriceBook().priceFor("claude-opus-4-5"); // { input: 5, output: 25, cacheWrite: 6.25, cacheRead: 0.5 }
   * ```
   */
  priceFor(model: string): ModelPrice | null {
    return this.#lookup(model)?.price ?? null;
  }

  /**
   * The cost of one request in USD, rounded to micro-dollars. An unknown model yields
   * `{ costUsd: null, priced: false }` so that missing prices are visible instead of counting as free.
   *
   * @example
   * ```ts
   * new PriceBook().cost("claude-sonnet-4-5", {
   *   inputTokens: 1_000_000, outputTokens: 0, cacheReadInputTokens: 0, cacheCreationInputTokens: 0,
   * }); // { costUsd: 3, priced: true }
   * ```
   */
  cost(model: string, t: TokenCounts): { costUsd: number | null; priced: boolean } {
    const e = this.#lookup(model);
    if (e === null) return { costUsd: null, priced: false };
    const input = tokens(t.inputTokens);
    const cacheRead = tokens(t.cacheReadInputTokens);
    const cacheWrite = tokens(t.cacheCreationInputTokens);
    const cacheWrite1h = Math.min(tokens(t.cacheCreation1hInputTokens ?? 0), cacheWrite);
    const p = e.tier !== null && input + cacheRead + cacheWrite > e.tier.above ? e.tier.price : e.price;
    // tokens × USD-per-million-tokens is micro-dollars; rounding that to an integer gives 6 decimals.
    let micro = input * p.input + tokens(t.outputTokens) * p.output +
      (cacheWrite - cacheWrite1h) * p.cacheWrite + cacheWrite1h * p.input * CACHE_WRITE_1H_FACTOR +
      cacheRead * p.cacheRead;
    // Both multiply every token rate, cache included; neither applies to the per-search fee.
    if (t.speed === "fast" && e.fast !== null) micro *= e.fast;
    if (t.inferenceGeo === "us") micro *= US_GEO_FACTOR;
    micro += tokens(t.webSearchRequests ?? 0) * WEB_SEARCH_MICRO_USD;
    return { costUsd: Math.round(micro) / 1e6, priced: true };
  }

  /**
   * The effective table: every built-in family with family overrides applied, then override keys that are
   * not built-in families, in the order given.
   *
   * @example
   * ```ts
   * for (const [model, p] of new PriceBook().entries()) console.log(model, p.input, p.output);
   * ```
   */
  entries(): Array<[string, ModelPrice]> {
    const out: Array<[string, ModelPrice]> = [];
    for (const [family, e] of BUILT_IN) out.push([family, (this.#family.get(family) ?? e).price]);
    for (const [family, e] of this.#family) if (!BUILT_IN.has(family)) out.push([family, e.price]);
    for (const [key, e] of this.#exact) out.push([key, e.price]);
    return out;
  }
}
