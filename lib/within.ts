/**
 * A bound on a wait: `promise`, or a {@link TimedOut} once `ms` have passed. The promise goes on either way (its
 * outcome still handled); the caller stops waiting for it. For a database that stalls rather than refuses (a
 * failover, a partition: no reset, no error), where a request must not wait as long as the connection does.
 *
 * @example
 * ```ts
 * try {
 *   row = await within(1_000, lookup(key), "key lookup");
 * } catch (e) {
 *   if (e instanceof TimedOut) row = lastKnown; else throw e;
 * }
 * ```
 */
export async function within<T>(ms: number, promise: Promise<T>, what = "the wait"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimedOut(`${what}: still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** What {@link within} rejects with when the wait ran out. */
export class TimedOut extends Error {
  override name = "TimedOut";
}
