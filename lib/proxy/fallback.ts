/**
 * The fallback policy: reads just enough of the plan upstream's answer to decide, before the client sees a byte,
 * whether it answered or failed.
 *
 * | plan upstream answer                                   | decision                                        |
 * |--------------------------------------------------------|-------------------------------------------------|
 * | 429 `rate_limit_error`                                 | failure (counts toward the breaker)             |
 * | 429 saying the plan's usage limit is reached           | failure that opens the breaker until the reset  |
 * | 529, 500, 502, 503, 504                                | failure                                         |
 * | connection refused/reset, DNS, connect/first-byte time | failure                                         |
 * | 200 stream whose first event is an `error` event       | failure (only the first event is held back)     |
 * | other 4xx                                              | answer, passed through, not counted             |
 * | 2xx                                                    | answer, a success                               |
 *
 * Whatever was read is kept (`head`) so an answer that is passed through reaches the client byte for byte.
 */
import type { PlanResult } from "./plan_client.ts";
import { SseUsageTap } from "./sse_usage.ts";
import { concatChunks } from "../encoding.ts";
import { anthropicErrorBody } from "./bedrock/errors.ts";
import { type ChunkReader, chunkReader, readUpTo } from "./body_reader.ts";

/**
 * Every 5xx: besides Anthropic's own 500/529 and a gateway's 502/503/504, the edge in front of the API answers
 * 520-524 when the origin fails, and clients retry any 5xx; none of them is the request's fault.
 */
function isFailureStatus(status: number): boolean {
  return status >= 500 && status <= 599;
}

/** Whether a plan answer with this status means "cannot answer now" (rate limited, overloaded, failing). */
export function isFallbackStatus(status: number): boolean {
  return status === 429 || isFailureStatus(status);
}

/**
 * The fallback reason for a plan answer that {@link isFallbackStatus} (the names `/v1/messages` uses too):
 * `rate_limited`, `usage_limit`, `overloaded` or `upstream_<status>`; `head` is the start of its body.
 */
export function fallbackReason(status: number, headers: Headers, head: Uint8Array[]): string {
  if (status === 529) return "overloaded";
  if (status !== 429) return `upstream_${status}`;
  return usageLimitReset(headers, parseError(head)?.message ?? "") === undefined
    ? "rate_limited"
    : "usage_limit";
}
const MAX_ERROR_BODY = 64 * 1024;

/** The decision, with the bytes already read from the upstream answer. */
export type FallbackDecision =
  | { kind: "client_gone" }
  | {
    kind: "failure";
    reason: string;
    message: string;
    /** Epoch ms until which the plan is known unusable (usage limit with a reset time). */
    opensUntil?: number;
    /** The upstream's answer, when there was one, for keys that cannot fall back. */
    response?: Response;
    head: Uint8Array[];
    reader?: ChunkReader;
    errorType: string | null;
    /** Releases the upstream answer (the request goes to Bedrock instead). */
    discard(): void;
  }
  | {
    kind: "answer";
    status: number;
    response: Response;
    head: Uint8Array[];
    reader: ChunkReader;
    countsAsSuccess: boolean;
    errorType: string | null;
  };

/** Classifies a sent plan request; `stream` is what the client asked for. */
export async function classifyPlanAnswer(sent: PlanResult, stream: boolean): Promise<FallbackDecision> {
  if (!sent.ok) {
    if (sent.failure === "client_aborted") return { kind: "client_gone" };
    return {
      kind: "failure",
      reason: sent.failure,
      message: sent.message,
      head: [],
      errorType: null,
      discard() {},
    };
  }
  const { response } = sent;
  // A body read that fails because the client left is the client's doing, not the upstream's: no breaker
  // failure, no fallback.
  const clientGone = () => sent.abortedFor === "client_aborted";
  const reader = chunkReader(response.body, sent.signal);
  const discard = () => {
    reader.cancel().catch(() => {});
    sent.abort();
  };
  const status = response.status;

  if (status >= 400) {
    let head: Uint8Array[];
    try {
      // Still under the first-byte timer: an error answer whose body never comes must not hold the request.
      head = (await readUpTo(reader, MAX_ERROR_BODY)).chunks;
    } catch {
      if (clientGone()) return { kind: "client_gone" };
      if (isFallbackStatus(status)) {
        // The status and its headers (retry-after, request-id) are real; only the body was lost. A key that
        // cannot fall back passes them on with an error body in Anthropic's shape, not a bare 502.
        const type = status === 429 ? "rate_limit_error" : status === 529 ? "overloaded_error" : "api_error";
        const body = anthropicErrorBody(type, `Anthropic API answered ${status}, but its body was cut off`);
        return {
          kind: "failure",
          reason: `upstream_${status}`,
          message: `status ${status}`,
          response,
          head: [new TextEncoder().encode(body)],
          errorType: type,
          discard,
        };
      }
      head = [];
    } finally {
      sent.firstByte.clear();
    }
    const error = parseError(head);
    if (status === 429) {
      const until = usageLimitReset(response.headers, error?.message ?? "");
      return {
        kind: "failure",
        reason: until === undefined ? "rate_limited" : "usage_limit",
        message: error?.message ?? "rate limited",
        opensUntil: until === null ? undefined : until,
        response,
        head,
        reader,
        errorType: error?.type ?? "rate_limit_error",
        discard,
      };
    }
    if (isFailureStatus(status)) {
      return {
        kind: "failure",
        reason: fallbackReason(status, response.headers, head),
        message: error?.message ?? `status ${status}`,
        response,
        head,
        reader,
        errorType: error?.type ?? (status === 529 ? "overloaded_error" : "api_error"),
        discard,
      };
    }
    return {
      kind: "answer",
      status,
      response,
      head,
      reader,
      countsAsSuccess: false,
      errorType: error?.type ?? null,
    };
  }

  const isSse = (response.headers.get("content-type") ?? "").includes("text/event-stream");
  // A compressed stream (asked for identity, sent anyway) cannot be read for its first event here: it goes on.
  const encoded = !/^\s*(identity)?\s*$/i.test(response.headers.get("content-encoding") ?? "");
  if (!(stream && isSse && status === 200) || encoded) {
    sent.firstByte.clear();
    return {
      kind: "answer",
      status,
      response,
      head: [],
      reader,
      countsAsSuccess: status < 300,
      errorType: null,
    };
  }

  // Hold back only the first event until it is known not to be an error. The first-byte timer runs until that
  // event is whole: the client has no headers until then, so a comment or half an event followed by silence
  // must not hold it (and its upstream connection) for ever.
  const tap = new SseUsageTap();
  const head: Uint8Array[] = [];
  try {
    while (tap.result.firstEvent === null) {
      const { done, value } = await reader.read();
      if (done) break;
      head.push(value);
      tap.push(value);
    }
  } catch (e) {
    if (clientGone()) {
      discard();
      return { kind: "client_gone" };
    }
    const reason = sent.firstByte.fired ? "first_byte_timeout" : "stream_reset";
    return {
      kind: "failure",
      reason,
      message: `stream failed before its first event: ${(e as Error).message}`,
      head: [],
      errorType: null,
      discard,
    };
  } finally {
    sent.firstByte.clear();
  }
  if (tap.result.firstEvent === null) {
    return {
      kind: "failure",
      reason: "empty_stream",
      message: "stream ended before any event",
      head: [],
      errorType: null,
      discard,
    };
  }
  if (tap.result.firstEvent === "error") {
    return {
      kind: "failure",
      reason: "stream_error",
      message: tap.result.error?.message ?? "error event",
      response,
      head,
      reader,
      errorType: tap.result.error?.type ?? "api_error",
      discard,
    };
  }
  return { kind: "answer", status, response, head, reader, countsAsSuccess: true, errorType: null };
}

/**
 * When a 429 says the plan's usage limit is reached: the reset time in epoch ms, `null` when none is given;
 * `undefined` when this is an ordinary rate limit.
 */
export function usageLimitReset(headers: Headers, message: string): number | null | undefined {
  const unified = headers.get("anthropic-ratelimit-unified-status");
  const isUsageLimit = /usage limit/i.test(message) || unified === "rejected";
  if (!isUsageLimit) return undefined;
  const candidates: number[] = [];
  const inMessage = /\|(\d{10})\b/.exec(message); // Claude's "usage limit reached|<epoch seconds>"
  if (inMessage) candidates.push(Number(inMessage[1]) * 1000);
  const unifiedReset = headers.get("anthropic-ratelimit-unified-reset");
  if (unifiedReset && /^\d+$/.test(unifiedReset)) candidates.push(Number(unifiedReset) * 1000);
  const retryAfter = headers.get("retry-after");
  if (retryAfter) {
    if (/^\d+$/.test(retryAfter)) candidates.push(Date.now() + Number(retryAfter) * 1000);
    else if (!Number.isNaN(Date.parse(retryAfter))) candidates.push(Date.parse(retryAfter));
  }
  headers.forEach((value, name) => {
    if (/^anthropic-ratelimit-.*-reset$/.test(name) && name !== "anthropic-ratelimit-unified-reset") {
      const t = Date.parse(value);
      if (!Number.isNaN(t)) candidates.push(t);
    }
  });
  const future = candidates.filter((t) => t > Date.now());
  return future.length === 0 ? null : Math.max(...future);
}

function parseError(head: Uint8Array[]): { type: string; message: string } | null {
  try {
    const text = new TextDecoder().decode(concatChunks(head));
    const body = JSON.parse(text) as { error?: { type?: string; message?: string } };
    if (!body.error) return null;
    return { type: body.error.type ?? "api_error", message: body.error.message ?? "" };
  } catch {
    return null;
  }
}
