/**
 * `<Island name="UsageChart" props={…} />`: the islands layer (`lib/islands/`) bound to this console's registry.
 */
import { makeIsland } from "../lib/islands/island.tsx";
import { registry } from "../islands/registry.ts";

/** Renders a registered island server-side with its props serialised for hydration. */
export const Island = makeIsland(registry);
