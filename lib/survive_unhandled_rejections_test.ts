import assert from "node:assert/strict";
import { surviveUnhandledRejections } from "./survive_unhandled_rejections.ts";
import type { Logger } from "./log.ts";

/** A logger that keeps its error lines. */
function errorLines(): { log: Logger; lines: Array<[string, Record<string, unknown> | undefined]> } {
  const lines: Array<[string, Record<string, unknown> | undefined]> = [];
  const log: Logger = {
    debug() {},
    info() {},
    warn() {},
    error: (msg, fields) => void lines.push([msg, fields]),
    child: () => log,
    isEnabled: () => true,
  };
  return { log, lines };
}

Deno.test("a rejection nobody handles is logged as an error and does not end the process", async () => {
  const { log, lines } = errorLines();
  const stop = surviveUnhandledRejections(log);
  try {
    // Without the handler, Deno fails this test (and would end a server) over this promise.
    Promise.reject(new Error("CONNECTION_DESTROYED 127.0.0.1:5432"));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(lines.length, 1);
    assert.equal(lines[0][0], "unhandled rejection");
    assert.equal(lines[0][1]?.error, "Error: CONNECTION_DESTROYED 127.0.0.1:5432");
  } finally {
    stop();
  }
});
