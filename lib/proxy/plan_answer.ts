/**
 * The plan upstream's error answer, kept whole while Bedrock is tried, and replayed to the client as it came
 * when Bedrock cannot answer either.
 *
 * @example
 * ```ts
 * const kept = planAnswerOf(upstream, head, false);
 * // … Bedrock failed too:
 * return replayPlanAnswer(kept, requestId, "overloaded");
 * ```
 */
import { concatChunks } from "../encoding.ts";
import { clientResponseHeaders } from "./headers.ts";

/** The plan upstream's error answer, kept while Bedrock is tried. */
export interface PlanAnswer {
  status: number;
  statusText: string;
  headers: Headers;
  body: Uint8Array;
}

/** Statuses whose response has no body (a Response with one cannot even be made). */
export const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * `headers` with the upstream's `content-encoding` put back, for bytes relayed as they came (still compressed).
 * Only the messages answer is decoded (its usage is read); everything else keeps the upstream's encoding.
 */
export function withEncoding(headers: Headers, upstream: Headers): Headers {
  const encoding = upstream.get("content-encoding");
  if (encoding && encoding.trim().toLowerCase() !== "identity") headers.set("content-encoding", encoding);
  return headers;
}

/**
 * An Anthropic answer kept to replay: its status and headers, and `head` as its body. `raw` bytes, as the
 * upstream sent them, keep its `content-encoding`; a body the proxy made has none.
 */
export function planAnswerOf(upstream: Response, head: Uint8Array[], raw: boolean): PlanAnswer {
  const headers = clientResponseHeaders(upstream.headers);
  return {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: raw ? withEncoding(headers, upstream.headers) : headers,
    body: concatChunks(head),
  };
}

/** The plan upstream's own (retryable) answer, passed on when the Bedrock fallback failed too. */
export function replayPlanAnswer(answer: PlanAnswer, requestId: string, reason: string | null): Response {
  const headers = new Headers(answer.headers);
  headers.set("x-proxy-request-id", requestId);
  headers.set("x-proxy-provider", "anthropic");
  if (reason) headers.set("x-proxy-fallback-reason", reason);
  return new Response(NULL_BODY_STATUSES.has(answer.status) ? null : answer.body as Uint8Array<ArrayBuffer>, {
    status: answer.status,
    statusText: answer.statusText,
    headers,
  });
}
