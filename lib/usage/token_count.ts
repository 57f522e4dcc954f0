/** The largest count the usage columns (`integer`) hold; no real request comes near it. */
export const MAX_TOKEN_COUNT = 2_147_483_647;

/**
 * A token count as an upstream reported it, or `undefined` when the value is no count: not a whole number,
 * negative, or past what a column holds (`1e300`, or `Infinity` from a JSON `1e400`). Such a value is ignored
 * as if it had not been sent, rather than clamped: clamped, one broken event would be priced at millions of
 * dollars and put its user over budget for the month.
 *
 * @example
 * ```ts
 * tokenCount(1234); // 1234
 * tokenCount(1e300); // undefined
 * tokenCount(-1); // undefined
 * ```
 */
export function tokenCount(v: unknown): number | undefined {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_TOKEN_COUNT ? v : undefined;
}
