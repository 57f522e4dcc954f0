/**
 * Whether `p` settles (resolves or rejects) within `ms`. The promise is left running either way; the point is
 * that shutdown steps waiting on a database that may have stalled (a partition, a failover) end on time.
 *
 * @example
 * ```ts
 * if (!await settlesWithin(recorder.flush(), 2_000)) log.warn("flush still pending");
 * ```
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
