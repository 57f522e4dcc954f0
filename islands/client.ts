/**
 * The browser entry of the console, bundled into `static/build/islands.<hash>.js` by `scripts/build_assets.ts`:
 * hydrates every island on the page, and guards its forms against being sent twice. Loaded as a module script
 * (deferred), so the DOM is complete when it runs.
 */
import { hydrateIslands } from "../lib/islands/hydrate.ts";
import { forgetNotice, guardSubmissions } from "../lib/islands/submit_guard.ts";
import { registry } from "./registry.ts";

guardSubmissions(document, window);
forgetNotice(window);
hydrateIslands(registry);
