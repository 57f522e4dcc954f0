/**
 * Anthropic model names → Bedrock model ids.
 *
 * A request that falls back to Bedrock names an Anthropic model (`claude-sonnet-4-5-20250929`, an alias such as
 * `claude-sonnet-4-5`, or a Bedrock id Claude Code was configured with). Bedrock wants its own id, and for the
 * newer models an inference profile (`global.`, `us.`, `eu.`, …) in front of it, because on-demand throughput is
 * only offered through profiles. Which profile the organisation uses is read off the configured default model, so
 * configuring one thing (the default) is enough.
 */
import { z } from "zod";

/** Inference-profile prefixes Bedrock uses for cross-region routing (the part before `anthropic.`). */
const PROFILE_PREFIXES = ["global", "us", "us-gov", "eu", "apac", "jp", "au", "ca"] as const;

/**
 * Dated Anthropic name → base Bedrock model id (without profile prefix). Ids that do not follow the
 * `anthropic.<name>-v1:0` rule are the reason this table exists (e.g. 3.5 Sonnet v2, and the 4.6+ models whose
 * Bedrock ids have no date).
 */
export const DATED: Readonly<Record<string, string>> = {
  "claude-opus-4-5-20251101": "anthropic.claude-opus-4-5-20251101-v1:0",
  "claude-sonnet-4-5-20250929": "anthropic.claude-sonnet-4-5-20250929-v1:0",
  "claude-haiku-4-5-20251001": "anthropic.claude-haiku-4-5-20251001-v1:0",
  "claude-opus-4-1-20250805": "anthropic.claude-opus-4-1-20250805-v1:0",
  "claude-opus-4-20250514": "anthropic.claude-opus-4-20250514-v1:0",
  "claude-sonnet-4-20250514": "anthropic.claude-sonnet-4-20250514-v1:0",
  "claude-3-7-sonnet-20250219": "anthropic.claude-3-7-sonnet-20250219-v1:0",
  "claude-3-5-haiku-20241022": "anthropic.claude-3-5-haiku-20241022-v1:0",
  "claude-3-5-sonnet-20241022": "anthropic.claude-3-5-sonnet-20241022-v2:0",
  "claude-3-5-sonnet-20240620": "anthropic.claude-3-5-sonnet-20240620-v1:0",
  "claude-3-opus-20240229": "anthropic.claude-3-opus-20240229-v1:0",
  "claude-3-haiku-20240307": "anthropic.claude-3-haiku-20240307-v1:0",
};

/**
 * Undated aliases → the dated name they currently point at, or straight to a Bedrock id for dateless models.
 * The dateless ids are those of Claude Code's own model table (`provider_ids.bedrock` in Claude Code 2.1.332,
 * whose `sonnet`, `opus` and `haiku` aliases ask the Anthropic API for the 5.5 models).
 */
export const ALIASES: Readonly<Record<string, string>> = {
  "claude-opus-5-5": "anthropic.claude-opus-5-5",
  "claude-sonnet-5-5": "anthropic.claude-sonnet-5-5",
  "claude-haiku-5-5": "anthropic.claude-haiku-5-5",
  "claude-fable-5-2": "anthropic.claude-fable-5-2",
  "claude-mythos-5-2": "anthropic.claude-mythos-5-2",
  "claude-fable-5-1": "anthropic.claude-fable-5-1",
  "claude-mythos-5-1": "anthropic.claude-mythos-5-1",
  "claude-opus-5": "anthropic.claude-opus-5",
  "claude-sonnet-5": "anthropic.claude-sonnet-5",
  "claude-fable-5": "anthropic.claude-fable-5",
  "claude-mythos-5": "anthropic.claude-mythos-5",
  "claude-opus-4-8": "anthropic.claude-opus-4-8",
  "claude-opus-4-7": "anthropic.claude-opus-4-7",
  "claude-opus-4-6": "anthropic.claude-opus-4-6-v1",
  "claude-sonnet-4-6": "anthropic.claude-sonnet-4-6",
  "claude-opus-4-5": "claude-opus-4-5-20251101",
  "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
  "claude-haiku-4-5": "claude-haiku-4-5-20251001",
  "claude-opus-4-1": "claude-opus-4-1-20250805",
  "claude-opus-4-0": "claude-opus-4-20250514",
  "claude-opus-4": "claude-opus-4-20250514",
  "claude-sonnet-4-0": "claude-sonnet-4-20250514",
  "claude-sonnet-4": "claude-sonnet-4-20250514",
  "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
  "claude-3-7-sonnet": "claude-3-7-sonnet-20250219",
  "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
  "claude-3-5-haiku": "claude-3-5-haiku-20241022",
  "claude-3-5-sonnet-latest": "claude-3-5-sonnet-20241022",
  "claude-3-5-sonnet": "claude-3-5-sonnet-20241022",
  "claude-3-opus-latest": "claude-3-opus-20240229",
};

/** `claude-<family>-<ver>-YYYYMMDD` or the older `claude-<ver>-<family>-YYYYMMDD`. */
const DATED_NAME = /^claude-(?:[a-z]+-\d+(?:-\d+)?|\d+(?:-\d+)?-[a-z]+)-\d{8}$/;

/**
 * `claude-<family>-<major>[-<minor>]` without a date: how every model since Opus 4.7 is named, on Bedrock too
 * (`anthropic.<name>`). A name of this shape missing from the table is tried that way before the default model.
 */
const UNDATED_NAME = /^claude-[a-z]+-\d{1,2}(?:-\d{1,2})?$/;

/** Options of {@link mapModel}. */
export interface ModelMapOptions {
  /** Exact requested name → Bedrock id; wins over everything else and is used as given (no prefix added). */
  overrides: Readonly<Record<string, string>>;
  /** Bedrock id used for names that cannot be mapped; its profile prefix is the default prefix. */
  defaultModel: string;
  /** Profile prefix to put before mapped ids (`"us"` or `"us."`; `""` for none). Default: `defaultModel`'s. */
  profilePrefix?: string;
}

/** The Bedrock model id to call, and whether the requested name was recognised (false: the default was used). */
export interface ModelMapResult {
  modelId: string;
  known: boolean;
  /**
   * The id without the inference-profile prefix, when that prefix was this table's choice (a built-in name, not
   * an override, a Bedrock id the client sent, or the default): another profile may then be tried.
   */
  base: string | null;
  /**
   * Present when the id was inferred from the name's shape, not found in the table: a model newer than this
   * proxy. Bedrock may not know it; the default model is then the last id to try.
   */
  guessed?: true;
}

/**
 * Maps the model a client asked for to the Bedrock model id to invoke.
 *
 * Order: `overrides` (exact name), a name that already is a Bedrock id or ARN (passed through), the built-in table
 * (dated names and undated aliases, case-insensitive), the dated-name rule (`claude-x-y-YYYYMMDD` →
 * `anthropic.claude-x-y-YYYYMMDD-v1:0`), the undated-name guess (`claude-x-9` → `anthropic.claude-x-9`,
 * `guessed`), and otherwise `defaultModel` with `known: false`.
 * Mapped ids get the inference-profile prefix.
 */
export function mapModel(requested: string, opts: ModelMapOptions): ModelMapResult {
  const override = Object.hasOwn(opts.overrides, requested) ? opts.overrides[requested] : undefined;
  if (override) return { modelId: override, known: true, base: null };

  const name = requested.trim();
  if (isBedrockId(name)) return { modelId: name, known: true, base: null };

  const lower = name.toLowerCase();
  const prefix = normalizePrefix(opts.profilePrefix ?? prefixOf(opts.defaultModel));
  const base = lookup(lower);
  if (base) return { modelId: prefix + base, known: true, base };
  if (UNDATED_NAME.test(lower)) {
    const guess = `anthropic.${lower}`;
    return { modelId: prefix + guess, known: true, base: guess, guessed: true };
  }
  return { modelId: opts.defaultModel, known: false, base: null };
}

/**
 * The ids to try, in order, for a mapped model whose first choice Bedrock refused as an invalid id: not every
 * model has every profile (older models have no `global.` one; some regions have their own, such as `jp.`).
 * `first` (already tried), then `global.`, then the geography of `region`, then the bare id.
 */
export function profileCandidates(base: string, first: string, region: string): string[] {
  const ids = [first, `global.${base}`, ...geographies(region).map((g) => `${g}.${base}`), base];
  return [...new Set(ids)];
}

/** The geographic inference-profile prefixes a source region can use, most specific first. */
function geographies(region: string): string[] {
  if (region.startsWith("us-gov-")) return ["us-gov"];
  if (region.startsWith("us-")) return ["us"];
  if (region.startsWith("ca-")) return ["ca", "us"];
  if (region.startsWith("eu-") || region.startsWith("il-")) return ["eu"];
  if (region === "ap-northeast-1" || region === "ap-northeast-3") return ["jp", "apac"];
  if (region === "ap-southeast-2" || region === "ap-southeast-4") return ["au", "apac"];
  if (region.startsWith("ap-")) return ["apac"];
  return [];
}

/** The inference-profile prefix of a Bedrock id, with its dot (`"global."`), or `""` when it has none. */
export function prefixOf(modelId: string): string {
  const dot = modelId.indexOf(".");
  if (dot <= 0) return "";
  const head = modelId.slice(0, dot);
  return (PROFILE_PREFIXES as readonly string[]).includes(head) && modelId.slice(dot + 1).includes(".")
    ? `${head}.`
    : "";
}

/** `modelId` without its inference-profile prefix (`global.anthropic.x` → `anthropic.x`). */
export function withoutProfile(modelId: string): string {
  return modelId.slice(prefixOf(modelId).length);
}

/**
 * The foundation model a Bedrock id names: an ARN's last segment, without its inference-profile prefix
 * (`arn:…:inference-profile/us.anthropic.x` → `anthropic.x`). An application inference profile's ARN names none,
 * and gives its own opaque segment.
 */
export function baseModelId(modelId: string): string {
  return withoutProfile(modelId.startsWith("arn:") ? modelId.slice(modelId.lastIndexOf("/") + 1) : modelId);
}

/** The dated name an undated alias points at (`claude-sonnet-4-5` → `claude-sonnet-4-5-20250929`), else `name`. */
export function resolveAlias(name: string): string {
  const target = Object.hasOwn(ALIASES, name) ? ALIASES[name] : name;
  return target.startsWith("anthropic.") ? name : target;
}

function lookup(name: string): string | undefined {
  const target = Object.hasOwn(ALIASES, name) ? ALIASES[name] : name;
  if (target.startsWith("anthropic.")) return target;
  if (Object.hasOwn(DATED, target)) return DATED[target];
  if (DATED_NAME.test(target)) return `anthropic.${target}-v1:0`;
  return undefined;
}

function isBedrockId(name: string): boolean {
  if (name.startsWith("anthropic.") || name.startsWith("arn:aws:bedrock:") || name.startsWith("arn:aws-")) {
    return true;
  }
  return prefixOf(name) !== "" && withoutProfile(name).startsWith("anthropic.");
}

function normalizePrefix(prefix: string): string {
  const p = prefix.trim();
  if (p === "") return "";
  return p.endsWith(".") ? p : `${p}.`;
}

const MODEL_MAP_SCHEMA = z.record(
  z.string().trim().min(1, "model names must not be empty"),
  z.string().regex(/^\S+$/, "Bedrock model ids must be non-empty and contain no spaces"),
);

const EXPECTED =
  'expected a JSON object mapping Anthropic model names to Bedrock model ids, e.g. {"claude-sonnet-4-5": ' +
  '"global.anthropic.claude-sonnet-4-5-20250929-v1:0"}';

/**
 * Parses an operator-supplied model map (JSON text) for {@link ModelMapOptions.overrides}.
 * Throws an Error whose message says what is wrong and what is expected.
 */
export function parseModelMapJson(text: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`model map is not valid JSON (${(err as Error).message}); ${EXPECTED}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    const got = parsed === null ? "null" : Array.isArray(parsed) ? "an array" : `a ${typeof parsed}`;
    throw new Error(`model map is ${got}; ${EXPECTED}`);
  }
  const result = MODEL_MAP_SCHEMA.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const where = issue.path.length ? `"${issue.path.join(".")}"` : "(root)";
      return `${where}: ${issue.message}`;
    });
    throw new Error(`model map is invalid: ${problems.join("; ")}; ${EXPECTED}`);
  }
  return result.data;
}
