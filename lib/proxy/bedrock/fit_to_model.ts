/**
 * A Messages body made for one Claude model, fitted to another that answers in its place: the default Bedrock
 * model standing in for a name Bedrock does not know.
 *
 * Claude Code sets the thinking mode and effort by the model it asks for. A name newer than the proxy's table
 * (`claude-sonnet-9`) gets adaptive thinking and `output_config.effort`; an older default model refuses both
 * ("output_config.effort: Extra inputs are not permitted", "thinking.type: adaptive is not supported"), and the
 * newest models refuse the manual mode (`{"type":"enabled","budget_tokens":…}`) older ones take. Anthropic's
 * thinking documentation: manual mode only up to the 4.5 models, both on 4.6, adaptive only from 4.7; effort on
 * Opus 4.5 and every model from 4.6.
 *
 * @example
 * ```ts
 * fitToModel(
 *   { max_tokens: 32000, thinking: { type: "adaptive" }, output_config: { effort: "high" }, messages },
 *   "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
 * );
 * // { max_tokens: 32000, thinking: { type: "enabled", budget_tokens: 31999 }, messages }
 * ```
 */
import { prefixOf } from "./model_map.ts";

/** The manual-mode budget an adaptive request gets on a model without adaptive thinking (Claude Code's own). */
export const FITTED_THINKING_BUDGET = 31_999;
/** Anthropic's least manual-mode budget. */
const MIN_THINKING_BUDGET = 1_024;

/**
 * The Claude version of a Bedrock model id (base id, inference profile or foundation-model ARN) as
 * major × 10 + minor (`claude-sonnet-4-5-…` → 45, `claude-opus-4-20250514` → 40, `claude-3-7-sonnet` → 37),
 * with its family; null when the id names no Claude model this can read (an application inference profile).
 */
export function claudeVersion(modelId: string): { version: number; family: string } | null {
  const id = modelId.startsWith("arn:") ? modelId.slice(modelId.lastIndexOf("/") + 1) : modelId;
  const base = id.slice(prefixOf(id).length).replace(/^anthropic\./, "");
  // Current names: claude-<family>-<major>[-<minor>][-<date>]; a date has 8 digits, a minor one.
  const current = /^claude-([a-z]+)-(\d+)(?:-(\d)(?!\d))?(?:[-:]|$)/.exec(base);
  if (current) return { family: current[1], version: Number(current[2]) * 10 + Number(current[3] ?? 0) };
  const older = /^claude-(\d)(?:-(\d))?-([a-z]+)(?:[-:]|$)/.exec(base);
  if (older) return { family: older[3], version: Number(older[1]) * 10 + Number(older[2] ?? 0) };
  return null;
}

/**
 * `body` with its thinking mode and effort changed to what `modelId` takes; the input is not modified, and a
 * body that fits already is returned as it is. Ids whose version cannot be read are left alone.
 */
export function fitToModel(body: Record<string, unknown>, modelId: string): Record<string, unknown> {
  const model = claudeVersion(modelId);
  if (!model) return body;
  const out: Record<string, unknown> = { ...body };
  let changed = false;
  const thinking = body.thinking as { type?: unknown } | null | undefined;
  if (thinking && typeof thinking === "object") {
    if (thinking.type === "adaptive" && model.version < 46) {
      changed = true;
      const maxTokens = typeof body.max_tokens === "number" ? body.max_tokens : 0;
      const choice = (body.tool_choice as { type?: unknown } | undefined)?.type;
      // Manual mode refuses a forced tool and a budget under its least; 3.5 and older think not at all.
      if (model.version < 37 || choice === "any" || choice === "tool" || maxTokens <= MIN_THINKING_BUDGET) {
        delete out.thinking;
      } else {
        out.thinking = { type: "enabled", budget_tokens: Math.min(maxTokens - 1, FITTED_THINKING_BUDGET) };
      }
    } else if (thinking.type === "enabled" && model.version >= 47) {
      changed = true;
      out.thinking = { type: "adaptive" };
    }
  }
  const config = body.output_config as Record<string, unknown> | null | undefined;
  const takesEffort = model.version >= 46 || (model.version === 45 && model.family === "opus");
  if (!takesEffort && config && typeof config === "object" && Object.hasOwn(config, "effort")) {
    changed = true;
    const { effort: _effort, ...rest } = config;
    if (Object.keys(rest).length > 0) out.output_config = rest;
    else delete out.output_config;
  }
  return changed ? out : body;
}
