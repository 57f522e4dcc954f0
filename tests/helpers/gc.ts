/**
 * Garbage collection on demand, for tests of what must still work after the runtime collects: Deno's fetch holds
 * the link from a request's signal to its response body only weakly, so an abort that works in a short test can
 * do nothing in a process that has collected garbage meanwhile.
 *
 * Needs V8's `--expose-gc`; `deno task test` passes it (`--v8-flags=--expose-gc`).
 *
 * @example
 * ```ts
 * const storm = gcStorm(20);
 * try {
 *   // … the request that must survive collections …
 * } finally {
 *   storm.stop();
 * }
 * ```
 */

function exposedGc(): () => void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function") {
    throw new Error(
      "this test needs V8's gc(): run it with --v8-flags=--expose-gc (deno task test passes it)",
    );
  }
  return gc;
}

/** Runs a full garbage collection now. */
export function collectGarbage(): void {
  exposedGc()();
}

/** Collects garbage every `everyMs` until stopped; `runs` counts the collections so far. */
export function gcStorm(everyMs: number): { stop(): void; readonly runs: number } {
  const gc = exposedGc();
  let runs = 0;
  const timer = setInterval(() => {
    gc();
    runs++;
  }, everyMs);
  return {
    stop: () => clearInterval(timer),
    get runs() {
      return runs;
    },
  };
}
