/**
 * A bound on a wait that a bug could make endless, where an abort signal would not do (after a garbage collection,
 * aborting a fetch no longer ends a body it is streaming): the test then fails instead of hanging. The same bound
 * the proxy puts on a stalled database.
 *
 * @example
 * ```ts
 * const text = await within(1500, new Response(stream).text(), "the stream");
 * ```
 */
export { within } from "../../lib/within.ts";
