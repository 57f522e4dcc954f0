/**
 * Bedrock failures expressed as Anthropic API errors.
 *
 * Clients of the proxy (Claude Code, the Anthropic SDKs) only understand Anthropic's error shape and status codes,
 * and decide on retries from them: 429, 5xx and 529 are retried, 4xx are not. A Bedrock answer therefore has to be
 * translated to the Anthropic status and type that makes the client behave the same way it would have if Anthropic
 * itself had failed like that.
 *
 * Choices worth knowing:
 * - A model timeout (`ModelTimeoutException`, or the HTTP handler's own timeout) becomes 504 `timeout_error`,
 *   an error type Anthropic's API and SDK define; clients retry it like any 5xx.
 * - Capacity problems (`ServiceUnavailableException`, `ModelNotReadyException`) become 529 `overloaded_error`,
 *   Anthropic's own "come back later" answer; an internal failure (`InternalServerException`,
 *   `ModelStreamErrorException`, `ModelErrorException`) becomes 500 `api_error`, unless the model error names the
 *   model's own status (`originalStatusCode` 429, 503, 529, …), which is then mapped as that status would be.
 * - Bedrock answers every credential problem with 403; only `AccessDeniedException` (valid identity, missing
 *   permission) stays 403 `permission_error`, the rest (unknown key, bad signature, expired token) become
 *   401 `authentication_error`.
 * - Anything not recognised (network failures included) is 502 `api_error`: the proxy's upstream failed.
 */
import { causeChain } from "../../errors.ts";

/** An Anthropic-shaped error: the HTTP status to answer with, the Anthropic error type and a message. */
export interface MappedError {
  status: number;
  type: string;
  message: string;
}

const MAX_MESSAGE_LENGTH = 500;

/** Bedrock error name (as in `x-amzn-errortype` and the SDK's `err.name`) → Anthropic status and type. */
const BY_NAME: Record<string, { status: number; type: string }> = {
  ThrottlingException: { status: 429, type: "rate_limit_error" },
  ServiceQuotaExceededException: { status: 429, type: "rate_limit_error" },
  TooManyRequestsException: { status: 429, type: "rate_limit_error" },
  ValidationException: { status: 400, type: "invalid_request_error" },
  SerializationException: { status: 400, type: "invalid_request_error" },
  AccessDeniedException: { status: 403, type: "permission_error" },
  UnrecognizedClientException: { status: 401, type: "authentication_error" },
  InvalidSignatureException: { status: 401, type: "authentication_error" },
  IncompleteSignatureException: { status: 401, type: "authentication_error" },
  MissingAuthenticationTokenException: { status: 401, type: "authentication_error" },
  InvalidClientTokenId: { status: 401, type: "authentication_error" },
  ExpiredTokenException: { status: 401, type: "authentication_error" },
  ExpiredToken: { status: 401, type: "authentication_error" },
  ResourceNotFoundException: { status: 404, type: "not_found_error" },
  ModelTimeoutException: { status: 504, type: "timeout_error" },
  TimeoutError: { status: 504, type: "timeout_error" },
  ServiceUnavailableException: { status: 529, type: "overloaded_error" },
  ModelNotReadyException: { status: 529, type: "overloaded_error" },
  InternalServerException: { status: 500, type: "api_error" },
  ModelStreamErrorException: { status: 500, type: "api_error" },
  ModelErrorException: { status: 500, type: "api_error" },
  // The credential chain or token provider found nothing: the proxy's own configuration is wrong.
  CredentialsProviderError: { status: 500, type: "api_error" },
  TokenProviderError: { status: 500, type: "api_error" },
  // The caller aborted (the client went away); there is no one left to answer, 499 only labels it.
  AbortError: { status: 499, type: "api_error" },
};

/** Bedrock HTTP status → Anthropic status and type, for errors whose name is not known. */
function byStatus(status: number): { status: number; type: string } | undefined {
  if (status === 400 || status === 422) return { status: 400, type: "invalid_request_error" };
  if (status === 401) return { status: 401, type: "authentication_error" };
  if (status === 403) return { status: 403, type: "permission_error" };
  if (status === 404) return { status: 404, type: "not_found_error" };
  if (status === 408) return { status: 504, type: "timeout_error" };
  if (status === 413) return { status: 413, type: "request_too_large" };
  if (status === 429) return { status: 429, type: "rate_limit_error" };
  if (status === 503 || status === 529) return { status: 529, type: "overloaded_error" };
  if (status >= 500) return { status: 500, type: "api_error" };
  return undefined;
}

/**
 * Translates anything the Bedrock client threw (an AWS SDK service exception, an in-stream exception, a timeout,
 * a network failure, an abort) into the Anthropic status, error type and message to answer with.
 * The message is prefixed `Bedrock: ` and scrubbed of anything that looks like a credential.
 */
export function mapBedrockError(err: unknown): MappedError {
  const name = errorName(err);
  const status = httpStatus(err);
  // A model error carries the model's own status (`originalStatusCode`): an overloaded or throttled model mid-
  // stream must reach the client as overloaded or rate limited (which it waits out), not as a bare api_error.
  const original = (name === "ModelStreamErrorException" || name === "ModelErrorException")
    ? (err as { originalStatusCode?: unknown }).originalStatusCode
    : undefined;
  const mapped = (typeof original === "number" && original >= 400 ? byStatus(original) : undefined) ??
    (name ? BY_NAME[name] : undefined) ??
    (status ? byStatus(status) : undefined) ??
    { status: 502, type: "api_error" };
  const raw = errorMessage(err);
  const label = name && !raw.includes(name) ? `${name}: ${raw}` : raw;
  return { ...mapped, message: `Bedrock: ${scrub(unreachable(err) ?? label)}` };
}

/**
 * A network failure before Bedrock answered, said plainly (what the runtime reports is long and nested: "fetch
 * failed (error sending request for url (…): client error (Connect): dns error: …)"); null for anything else.
 */
function unreachable(err: unknown): string | null {
  const text = [...causeChain(err)].map((c) => String(c.message ?? "")).join(" ");
  if (
    !/error sending request|fetch failed|connection refused|dns error/i.test(text) &&
    !/\bE(CONNREFUSED|NOTFOUND)\b/.test(text)
  ) {
    return null;
  }
  const why = /dns error|failed to lookup|not known/i.test(text) || /\bENOTFOUND\b/.test(text)
    ? "its name could not be resolved (DNS)"
    : /connection refused/i.test(text) || /\bECONNREFUSED\b/.test(text)
    ? "the connection was refused"
    : /timed out/i.test(text) || /\bETIMEDOUT\b/.test(text)
    ? "the connection timed out"
    : /certificate|tls|ssl/i.test(text)
    ? "the TLS handshake failed"
    : null;
  if (!why) return null;
  const host = /https?:\/\/([^/):\s]+)/.exec(text)?.[1] ?? "the Bedrock endpoint";
  return `the proxy cannot reach ${host}: ${why}`;
}

/**
 * Whether Bedrock refused the model id itself (no such id or profile in this region, or a model offered only
 * through an inference profile), as opposed to the request: then another profile of the same model may work.
 */
export function isModelIdRefusal(err: unknown): boolean {
  return errorName(err) === "ValidationException" &&
    /model identifier is invalid|on-demand throughput isn.t supported/i.test(errorMessage(err));
}

/** The message streams cut short by a shutdown end with, whichever provider served them. */
export const SHUTDOWN_MESSAGE = "the proxy is shutting down; the answer is incomplete";

/** The message of a request the drain deadline cut before any answer came. */
export const SHUTDOWN_BEFORE_ANSWER = "the proxy is shutting down; retry the request";

/**
 * The abort reason the proxy uses when it ends streams at its drain deadline, so a Bedrock stream can tell a
 * shutdown (the client is still reading: tell it why the answer stops) from a client that left (nobody to tell).
 */
export class ShutdownError extends Error {
  override name = "ShutdownError";
  constructor() {
    super(SHUTDOWN_MESSAGE);
  }
}

/** The JSON body of an Anthropic error response: `{"type":"error","error":{"type":…,"message":…}}`. */
export function anthropicErrorBody(type: string, message: string): string {
  return JSON.stringify({ type: "error", error: { type, message } });
}

/** An Anthropic SSE `error` event, as Anthropic sends it when a stream fails after it started. */
export function sseErrorEvent(type: string, message: string): string {
  return `event: error\ndata: ${anthropicErrorBody(type, message)}\n\n`;
}

function errorName(err: unknown): string | undefined {
  if (!err || typeof err !== "object") return undefined;
  const e = err as { name?: unknown; code?: unknown; Code?: unknown };
  for (const candidate of [e.name, e.code, e.Code]) {
    if (typeof candidate === "string" && candidate && candidate !== "Error") return candidate;
  }
  return undefined;
}

function httpStatus(err: unknown): number | undefined {
  if (!err || typeof err !== "object") return undefined;
  const meta = (err as { $metadata?: { httpStatusCode?: unknown } }).$metadata;
  const status = meta?.httpStatusCode ??
    (err as { $response?: { statusCode?: unknown } }).$response?.statusCode;
  return typeof status === "number" ? status : undefined;
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error && err.cause.message ? ` (${err.cause.message})` : "";
    return (err.message || "unknown error") + cause;
  }
  if (err && typeof err === "object" && typeof (err as { message?: unknown }).message === "string") {
    return (err as { message: string }).message;
  }
  return typeof err === "string" ? err : "unknown error";
}

/**
 * Removes credential-looking substrings: the AWS SDK never puts secrets in messages, but network errors echo
 * URLs and headers, and a message is the one thing that reaches the client verbatim.
 */
function scrub(message: string): string {
  const cleaned = message
    .replace(/\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b/g, "[redacted-access-key]")
    .replace(/\bABSK[A-Za-z0-9+/=]{8,}/g, "[redacted-api-key]")
    .replace(/\bbedrock-api-key-[A-Za-z0-9+/=_.%-]+/g, "[redacted-api-key]")
    .replace(/(Bearer|Signature=|Credential=|X-Amz-Security-Token=)\s*[^\s,;"']+/gi, "$1[redacted]")
    .replace(/\s+/g, " ")
    .trim();
  return cleaned.length > MAX_MESSAGE_LENGTH ? `${cleaned.slice(0, MAX_MESSAGE_LENGTH)}…` : cleaned;
}
