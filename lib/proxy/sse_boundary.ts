/**
 * Where SSE events end in a byte chunk, so a relay can pass on whole events only.
 *
 * @example
 * ```ts
 * afterLastEvent(new TextEncoder().encode("event: ping\ndata: {}\n\nevent: mess")); // 22
 * ```
 */

/**
 * The offset just after the last SSE event boundary (a blank line: LF LF, LF CR LF, or CR CR for a stream whose
 * lines end in CR alone, which SSE allows) in `b`, 0 if none. Only where bytes are cut depends on it, never
 * which bytes go out.
 */
export function afterLastEvent(b: Uint8Array): number {
  const n = b.length;
  if (n >= 2 && b[n - 1] === 10 && (b[n - 2] === 10 || (b[n - 2] === 13 && n >= 3 && b[n - 3] === 10))) {
    return n; // the usual case: the chunk ends an event
  }
  for (let i = n - 1; i >= 1; i--) {
    const c = b[i];
    if (c === 10) {
      if (b[i - 1] === 10 || (b[i - 1] === 13 && i >= 2 && b[i - 2] === 10)) return i + 1;
    } else if (c === 13 && b[i - 1] === 13) return i + 1;
  }
  return 0;
}
