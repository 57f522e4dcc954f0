/**
 * One page of a model list, as Anthropic's Models API pages it: `limit` (1 to 1000, default 20), and `after_id`
 * or `before_id` naming the model the page starts after or ends before. The answer carries `has_more`,
 * `first_id` and `last_id`, so a client pages through the proxy's Bedrock list as through the API's.
 *
 * @example
 * ```ts
 * const page = modelPage(models, new URLSearchParams("limit=2"));
 * if ("error" in page) throw new Error(page.error);
 * page.has_more; // true when more than two models are served
 * ```
 */
import type { ModelInfo } from "./model_catalogue.ts";

/** A page of the list, or what was wrong with the query. */
export type ModelPage =
  | { data: ModelInfo[]; has_more: boolean; first_id: string | null; last_id: string | null }
  | { error: string };

/** See the module documentation. */
export function modelPage(models: ModelInfo[], query: URLSearchParams): ModelPage {
  const rawLimit = query.get("limit");
  let limit = 20;
  if (rawLimit !== null) {
    limit = /^\d{1,4}$/.test(rawLimit) ? Number(rawLimit) : 0;
    if (limit < 1 || limit > 1000) {
      return { error: `limit: expected a whole number from 1 to 1000, got ${rawLimit}` };
    }
  }
  const after = query.get("after_id");
  const before = query.get("before_id");
  if (after !== null && before !== null) return { error: "after_id and before_id: give one or neither" };
  let start = 0;
  let end = models.length;
  for (const [name, id] of [["after_id", after], ["before_id", before]] as const) {
    if (id === null) continue;
    const at = models.findIndex((m) => m.id === id);
    if (at < 0) return { error: `${name}: no model ${JSON.stringify(id.slice(0, 100))} in this list` };
    if (name === "after_id") start = at + 1;
    else end = at;
  }
  // Before an id, the page is the `limit` models right before it; otherwise the first `limit` from the start.
  const data = before !== null
    ? models.slice(Math.max(start, end - limit), end)
    : models.slice(start, start + limit);
  const has_more = before !== null ? end - limit > start : start + limit < end;
  return { data, has_more, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}
