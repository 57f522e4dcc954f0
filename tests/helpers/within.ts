/**
 * A bound on a wait that a bug could make endless, where an abort signal would not do (after a garbage collection,
 * aborting a fetch no longer ends a body it is streaming): the test then fails instead of hanging.
 *
 * @example
 * ```ts
 * const text = await within(1500, new Response(stream).text(), "the stream");
 * ```
 */

/** `promise`, or a rejection naming `what` once `ms` have passed. */
export async function within<T>(ms: number, promise: Promise<T>, what = "the wait"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
