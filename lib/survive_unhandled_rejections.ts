/**
 * Keeps the process up through a promise rejection nobody handled, logging it at error level instead. Deno
 * ends the process on one by default; for this proxy that would cut every stream in flight over what is
 * usually a driver's own loose end: postgres.js reads the array types on every new connection and leaves
 * that promise unhandled, so a connection lost mid-read rejects with no caller left to hear it (a CI run saw
 * it). Returns the function that removes the handler.
 *
 * @example
 * ```ts
 * const stop = surviveUnhandledRejections(log);
 * Promise.reject(new Error("lost")); // logged: "unhandled rejection" {"error":"lost"}; the process goes on
 * stop();
 * ```
 */
import type { Logger } from "./log.ts";

export function surviveUnhandledRejections(log: Logger): () => void {
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    const reason = e.reason;
    log.error("unhandled rejection", {
      error: reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason),
      stack: reason instanceof Error ? reason.stack?.split("\n").slice(1, 6).join("\n") : undefined,
    });
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => globalThis.removeEventListener("unhandledrejection", onRejection);
}
