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
import { baseModelId } from "./model_map.ts";

/** The manual-mode budget an adaptive request gets on a model without adaptive thinking (Claude Code's own). */
export const FITTED_THINKING_BUDGET = 31_999;
/** Anthropic's least manual-mode budget. */
const MIN_THINKING_BUDGET = 1_024;

/**
 * The Claude version of a Bedrock model id (base id, inference profile or foundation-model ARN) as
 * major × 100 + minor (`claude-sonnet-4-5-…` → 405, `claude-opus-4-20250514` → 400, `claude-3-7-sonnet` → 307,
 * `claude-opus-4-10` → 410), with its family; null when the id names no Claude model this can read (an
 * application inference profile). Compare it with {@link version}.
 */
export function claudeVersion(modelId: string): { version: number; family: string } | null {
  const base = baseModelId(modelId).replace(/^anthropic\./, "");
  // Current names: claude-<family>-<major>[-<minor>][-<date>]; a date has 8 digits, a minor one or two (4-10).
  const current = /^claude-([a-z]+)-(\d+)(?:-(\d{1,2})(?!\d))?(?:[-:]|$)/.exec(base);
  if (current) return { family: current[1], version: version(Number(current[2]), Number(current[3] ?? 0)) };
  const older = /^claude-(\d)(?:-(\d))?-([a-z]+)(?:[-:]|$)/.exec(base);
  if (older) return { family: older[3], version: version(Number(older[1]), Number(older[2] ?? 0)) };
  return null;
}

/** A Claude version as {@link claudeVersion} gives it: `version(4, 6)` is 406. */
export function version(major: number, minor = 0): number {
  return major * 100 + minor;
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
    if (thinking.type === "adaptive" && model.version < version(4, 6)) {
      changed = true;
      const maxTokens = typeof body.max_tokens === "number" ? body.max_tokens : 0;
      const choice = (body.tool_choice as { type?: unknown } | undefined)?.type;
      // Manual mode refuses a forced tool and a budget under its least; 3.5 and older think not at all.
      if (
        model.version < version(3, 7) || choice === "any" || choice === "tool" ||
        maxTokens <= MIN_THINKING_BUDGET
      ) {
        delete out.thinking;
        withoutThinkingEdits(out);
      } else {
        out.thinking = { type: "enabled", budget_tokens: Math.min(maxTokens - 1, FITTED_THINKING_BUDGET) };
      }
    } else if (thinking.type === "enabled" && model.version >= version(4, 7)) {
      changed = true;
      const display = (thinking as { display?: unknown }).display;
      out.thinking = display === undefined ? { type: "adaptive" } : { type: "adaptive", display };
    }
  }
  const config = body.output_config as Record<string, unknown> | null | undefined;
  const takesEffort = model.version >= version(4, 6) ||
    (model.version === version(4, 5) && model.family === "opus");
  if (!takesEffort && config && typeof config === "object" && Object.hasOwn(config, "effort")) {
    changed = true;
    const { effort: _effort, ...rest } = config;
    if (Object.keys(rest).length > 0) out.output_config = rest;
    else delete out.output_config;
  }
  // Claude Code puts a system turn among the messages for the 5.5 models; models before 4.8 refuse the role
  // ("Unexpected role \"system\""), so its text joins the top-level system prompt.
  if (model.version < version(4, 8) && Array.isArray(body.messages) && body.messages.some(isSystemTurn)) {
    changed = true;
    const hoisted: Array<{ type: "text"; text: string }> = [];
    out.messages = body.messages.filter((m) => {
      if (!isSystemTurn(m)) return true;
      hoisted.push(...textBlocks((m as { content?: unknown }).content));
      return false;
    });
    const system = body.system;
    const base = typeof system === "string"
      ? (system === "" ? [] : [{ type: "text", text: system }])
      : Array.isArray(system)
      ? system
      : [];
    out.system = [...base, ...hoisted];
  }
  return changed ? out : body;
}

/**
 * Whether `modelId` takes `thinking.display`: the models from 4.7 on (Claude Code sends it to Bedrock only for
 * those; Sonnet 4.5 on Bedrock answers "thinking.enabled.display: Extra inputs are not permitted"). An id whose
 * version cannot be read is given the benefit of the doubt.
 */
export function takesThinkingDisplay(modelId: string): boolean {
  const model = claudeVersion(modelId);
  return model === null || model.version >= version(4, 7);
}

function isSystemTurn(m: unknown): boolean {
  return m !== null && typeof m === "object" && (m as { role?: unknown }).role === "system";
}

/** The text of a message's content, as text blocks (without their cache markers: the system prompt has its own). */
function textBlocks(content: unknown): Array<{ type: "text"; text: string }> {
  if (typeof content === "string") return content === "" ? [] : [{ type: "text", text: content }];
  if (!Array.isArray(content)) return [];
  return content.flatMap((b) =>
    b !== null && typeof b === "object" && (b as { type?: unknown }).type === "text" &&
      typeof (b as { text?: unknown }).text === "string"
      ? [{ type: "text" as const, text: (b as { text: string }).text }]
      : []
  );
}

/**
 * Without thinking there are no thinking blocks to clear: Claude Code's `clear_thinking_…` context edit goes (the
 * API documents it for requests with thinking on), and `context_management` with it when nothing else is left.
 */
function withoutThinkingEdits(body: Record<string, unknown>): void {
  const cm = body.context_management as { edits?: unknown } | null | undefined;
  if (!cm || typeof cm !== "object" || !Array.isArray(cm.edits)) return;
  const edits = cm.edits.filter((e) =>
    !String((e as { type?: unknown } | null)?.type ?? "").startsWith("clear_thinking")
  );
  if (edits.length === cm.edits.length) return;
  if (edits.length > 0 || Object.keys(cm).length > 1) body.context_management = { ...cm, edits };
  else delete body.context_management;
}
