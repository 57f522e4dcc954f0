/**
 * Output tokens for an answer cut short before its final count (its client left, its upstream was lost), from
 * the characters of text, thinking and tool input relayed: providers bill what they generated. English and code
 * run at about 3.5 to 4 characters a token, so 4 estimates low rather than bill output that was not generated.
 *
 * @example
 * ```ts
 * estimatedOutputTokens(401); // 101
 * ```
 */
export function estimatedOutputTokens(chars: number): number {
  return Math.ceil(chars / CHARS_PER_TOKEN);
}

const CHARS_PER_TOKEN = 4;
