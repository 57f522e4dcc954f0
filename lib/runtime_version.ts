/**
 * The Deno release the proxy is tested on, and a check of the one it runs on. Older 2.x releases run it, but
 * differently where it matters: 2.9.0 and 2.8.3 drop the length of a passed-through HEAD answer, and 2.6 and 2.5
 * also fail tests of answers cut mid-stream and of path checks (each found by running the test suite on them).
 *
 * @example
 * ```ts
 * olderDeno("2.9.0"); // "2.9.6": the release to upgrade to
 * olderDeno("2.10.1"); // null
 * ```
 */

/** The release the image pins (Dockerfile) and the test suite passes on. */
export const TESTED_DENO = "2.9.6";

/** The numbers of a `major.minor.patch` version, any suffix (`-rc.1`, `+build`) left off; null when not one. */
function numbers(version: string): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** {@link TESTED_DENO} when `version` is older than it (or unreadable), else null. */
export function olderDeno(version: string): string | null {
  const have = numbers(version);
  const want = numbers(TESTED_DENO)!;
  if (!have) return TESTED_DENO;
  for (let k = 0; k < 3; k++) {
    if (have[k] !== want[k]) return have[k] < want[k] ? TESTED_DENO : null;
  }
  return null;
}
