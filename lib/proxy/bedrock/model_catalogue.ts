/**
 * The Claude models this proxy can serve from Bedrock, as Anthropic's Models API lists them
 * (`GET /v1/models`). Claude Code asks for it at start-up when gateway model discovery is on
 * (`CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1`) to fill its `/model` picker; a key routed to Bedrock, or one
 * whose Anthropic API is down, gets this list instead of an error.
 *
 * @example
 * ```ts
 * const models = modelCatalogue({ "claude-custom": "arn:aws:bedrock:…" });
 * models[0]; // { type: "model", id: "claude-opus-4-8", display_name: "Claude Opus 4.8" }
 * ```
 */
import { ALIASES, DATED } from "./model_map.ts";

/** One entry of Anthropic's Models API list. */
export interface ModelInfo {
  type: "model";
  id: string;
  display_name: string;
  /** The snapshot date, for dated names; the epoch where the name carries none (as the API does). */
  created_at: string;
}

/** What `created_at` says for a name without a date. */
const UNKNOWN_DATE = "1970-01-01T00:00:00Z";

const FAMILIES = new Set(["opus", "sonnet", "haiku", "fable", "mythos"]);

/**
 * The models: Bedrock-only dateless names (the newest), the dated Claude 4 names of the model table, and the operator's
 * `PROXY_BEDROCK_MODEL_MAP` names that look like Claude's; newest first (by version, then date).
 */
export function modelCatalogue(overrides: Readonly<Record<string, string>>): ModelInfo[] {
  const ids = new Set<string>();
  for (const [alias, target] of Object.entries(ALIASES)) if (target.startsWith("anthropic.")) ids.add(alias);
  // Claude 3.x models are still mapped for requests that name them, but not offered: Bedrock retires them.
  for (const name of Object.keys(DATED)) if (!name.startsWith("claude-3-")) ids.add(name);
  for (const name of Object.keys(overrides)) if (/^claude-[a-z0-9-]+$/.test(name)) ids.add(name);
  return [...ids].map(describe).sort((a, b) => rank(b) - rank(a) || b.id.localeCompare(a.id));
}

function describe(id: string): ModelInfo {
  const date = /-(\d{4})(\d{2})(\d{2})$/.exec(id);
  const parts = (date ? id.slice(0, -9) : id).split("-").slice(1);
  const family = parts.find((p) => FAMILIES.has(p));
  const version = parts.filter((p) => /^\d+$/.test(p)).join(".");
  const display_name = family
    ? `Claude ${family[0].toUpperCase()}${family.slice(1)}${version ? ` ${version}` : ""}`
    : id;
  // The API's ModelInfo requires created_at and sets "an epoch value if the release date is unknown".
  const created_at = date ? `${date[1]}-${date[2]}-${date[3]}T00:00:00Z` : UNKNOWN_DATE;
  return { type: "model", id, display_name, created_at };
}

/** Newer first: version number, then snapshot date (dateless names are the newest of their version). */
function rank(m: ModelInfo): number {
  // Major and minor apart: 4.10 is newer than 4.9, which read as one decimal it would not be.
  const [, major = "0", minor = "0"] = m.display_name.match(/ (\d+)(?:\.(\d+))?$/) ?? [];
  const date = m.created_at === UNKNOWN_DATE ? 1 : Date.parse(m.created_at) / 1e13;
  return (Number(major) * 100 + Number(minor)) * 10 + date;
}
