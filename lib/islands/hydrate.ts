/**
 * The browser side of islands: finds every `[data-island]` marker, reads its JSON props block and hydrates the
 * registered component into it. An unknown name or unreadable props leaves the server-rendered HTML as it is.
 *
 * @example
 * ```ts
 * import { registry } from "./registry.ts";
 * hydrateIslands(registry);
 * ```
 */
import { h, hydrate } from "preact";
import { ISLAND_ATTR, type IslandRegistry, PROPS_ATTR } from "./island.tsx";

/** Hydrates every island under `root`; returns how many were hydrated. */
export function hydrateIslands(registry: IslandRegistry, root: ParentNode = document): number {
  let hydrated = 0;
  for (const el of Array.from(root.querySelectorAll<HTMLElement>(`[${ISLAND_ATTR}]`))) {
    const name = el.getAttribute(ISLAND_ATTR) ?? "";
    if (!Object.hasOwn(registry, name)) {
      console.warn(`island "${name}" is not in the registry; left as server-rendered HTML`);
      continue;
    }
    const block = document.getElementById(el.getAttribute(PROPS_ATTR) ?? "");
    let props: Record<string, unknown>;
    try {
      props = JSON.parse(block?.textContent ?? "{}");
    } catch (e) {
      console.warn(`island "${name}": unreadable props`, e);
      continue;
    }
    hydrate(h(registry[name], props), el);
    el.setAttribute("data-hydrated", "");
    hydrated++;
  }
  return hydrated;
}
