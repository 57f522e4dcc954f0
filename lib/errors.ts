/**
 * Errors that carry an HTTP status and an error type, thrown by `lib/` and turned into the right shape at the
 * edge: Anthropic's `{"type":"error","error":{...}}` on proxy routes, `{"error":{...}}` on the JSON API.
 *
 * @example
 * ```ts
 * throw new HttpError(404, "not_found_error", "user 1b9d… does not exist");
 * ```
 */

/** Anthropic's error types, reused by the admin API so clients see one vocabulary. */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "conflict_error"
  | "request_too_large"
  | "rate_limit_error"
  | "api_error"
  | "overloaded_error"
  | "timeout_error";

/** An error with a status code and a message fit to show the caller (never a secret, never a stack). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
    readonly headers: Record<string, string> = {},
    /** For validation errors: the field at fault, so forms can show the message beside it. */
    readonly field?: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** Anthropic's error body. */
export function anthropicError(
  type: string,
  message: string,
): { type: "error"; error: { type: string; message: string } } {
  return { type: "error", error: { type, message } };
}
