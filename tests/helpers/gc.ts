/**
 * Garbage collection on demand, for tests of what must still work after the runtime collects: Deno's fetch holds
 * the link from a request's signal to its response body only weakly, so an abort that works in a short test can
 * do nothing in a process that has collected garbage meanwhile.
 *
 * Needs V8's `--expose-gc`; `deno task test` passes it (`--v8-flags=--expose-gc`).
 *
 * @example
 * ```ts
 * const response = await fetch(url, { signal: controller.signal });
 * collectGarbage();
 * controller.abort(); // must still end response.body
 * ```
 */

/** Runs a full garbage collection now. */
export function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") {
    throw new Error(
      "this test needs V8's gc(): run it with --v8-flags=--expose-gc (deno task test passes it)",
    );
  }
  gc();
}
