/**
 * The server side of islands: `<Island name="UsageChart" props={...} />` renders the component on the server
 * inside a marker element and puts its props into the page as escaped JSON (see `serialize.ts`), so the browser
 * (`hydrate.ts`, bundled from `islands/client.ts`) can hydrate the same component with the same props. Everything
 * outside islands is plain HTML that works without JavaScript.
 *
 * The markup, for `<Island name="CopyButton" props={{ text: "…" }} />`:
 *
 * ```html
 * <script type="application/json" id="island-7">{"text":"…"}</script>
 * <div data-island="CopyButton" data-island-props="island-7" class="contents">…server-rendered button…</div>
 * ```
 *
 * The JSON block is a data block (`type="application/json"`), never executed, so a Content-Security-Policy of
 * `script-src 'self'` holds.
 *
 * @example
 * ```tsx
 * const Island = makeIsland(registry);
 * <Island name="CopyButton" props={{ text: key, label: "Copy key" }} />
 * ```
 */
import type { ComponentProps, ComponentType, VNode } from "preact";
import { serializeProps } from "./serialize.ts";

/** Island components by name; the same object is used on the server and in the browser bundle. */
// deno-lint-ignore no-explicit-any
export type IslandRegistry = Record<string, ComponentType<any>>;

/** Attribute naming the island on its marker element. */
export const ISLAND_ATTR = "data-island";
/** Attribute holding the id of the island's JSON props block. */
export const PROPS_ATTR = "data-island-props";

let counter = 0;

/** A fresh element id for a props block; unique within the process, so unique within any page. */
function nextId(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `island-${counter.toString(36)}`;
}

/** Creates the `<Island>` server component for a registry; props are type-checked against the component. */
export function makeIsland<R extends IslandRegistry>(registry: R) {
  return function Island<N extends keyof R & string>(
    { name, props }: { name: N; props: ComponentProps<R[N]> },
  ): VNode {
    if (!Object.hasOwn(registry, name)) {
      throw new Error(`unknown island "${name}": add it to islands/registry.ts`);
    }
    const Component = registry[name];
    const json = serializeProps(props); // throws on functions, class instances, cycles
    const id = nextId();
    return (
      <>
        <script type="application/json" id={id} dangerouslySetInnerHTML={{ __html: json }} />
        <div {...{ [ISLAND_ATTR]: name, [PROPS_ATTR]: id }} class="contents">
          <Component {...props} />
        </div>
      </>
    );
  };
}
