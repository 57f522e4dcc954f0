/**
 * Small HTTP helpers shared by route families: client address and JSON body reading with limits.
 */
import type { Context } from "hono";
import { HttpError } from "./errors.ts";
import { concatChunks } from "./encoding.ts";

/**
 * The client's address. Behind a load balancer (`trustForwardedFor`), the last `X-Forwarded-For` hop is the
 * address the balancer saw; earlier hops are client-supplied and could be forged.
 */
export function clientAddress(c: Context, trustForwardedFor: boolean): string | null {
  if (trustForwardedFor) {
    const xff = c.req.header("x-forwarded-for");
    if (xff) {
      const hops = xff.split(",").map((s) => s.trim()).filter(Boolean);
      if (hops.length > 0) return hops[hops.length - 1];
    }
  }
  const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return info?.remoteAddr?.hostname ?? null;
}

/**
 * The time the console's and the admin API's bodies (a form, a JSON object of at most 1 MB) may take to arrive:
 * without a limit, a client sending a byte every few seconds to the sign-in routes, before any authentication,
 * holds its request for as long as it likes.
 */
export const ADMIN_BODY_TIMEOUT_MS = 60_000;

/**
 * Runs `read` (a body read that ends when its signal aborts) within `timeoutMs`: past it, 408 `timeout_error`
 * naming `setting`, the configuration that sets the limit (if any).
 *
 * @example
 * ```ts
 * const bytes = await readWithin(60_000, "", (signal) => readLimited(req, 1024 * 1024, signal));
 * ```
 */
export async function readWithin<T>(
  timeoutMs: number,
  setting: string,
  read: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  try {
    return await read(deadline.signal);
  } catch (e) {
    if (!deadline.signal.aborted) throw e;
    throw new HttpError(
      408,
      "timeout_error",
      `request body not received within ${timeoutMs / 1000} s${
        setting ? ` (${setting})` : ""
      }; send it whole sooner`,
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a JSON body up to `maxBytes`: 413 when larger, 400 when malformed or not an object, 408 when slow. */
export async function readJsonBody(
  c: Context,
  maxBytes: number,
  timeoutMs = ADMIN_BODY_TIMEOUT_MS,
): Promise<Record<string, unknown>> {
  refuseAnnouncedTooLarge(c.req.raw, maxBytes);
  const bytes = await readWithin(
    timeoutMs,
    "",
    (signal) => readLimited(c.req.raw, maxBytes, signal),
  );
  if (bytes.length === 0) return {};
  let text: string;
  try {
    text = STRICT_UTF8.decode(bytes);
  } catch {
    throw new HttpError(
      400,
      "invalid_request_error",
      "request body is not valid UTF-8; expected a JSON object",
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(
      400,
      "invalid_request_error",
      "request body is not valid JSON; expected a JSON object",
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, "invalid_request_error", "request body must be a JSON object");
  }
  const bad = illFormedText(value);
  if (bad !== null) {
    throw new HttpError(
      400,
      "invalid_request_error",
      `${
        bad || "request body"
      }: holds an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape alone); expected well-formed text`,
      {},
      bad || undefined,
    );
  }
  return value as Record<string, unknown>;
}

/** Invalid bytes are an error, not U+FFFD: stored replaced, a retried create would then meet its own row. */
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The dotted path of the first string (value or key) in `value` that is not well-formed UTF-16 (`"\ud800"`
 * parses to a lone surrogate), or null when there is none. Such text cannot be stored as it came: PostgreSQL's
 * `jsonb` refuses it (the audit row of a change already made then failed, leaving a 500 behind it) and `text`
 * gets U+FFFD in its place.
 */
export function illFormedText(value: unknown): string | null {
  // An explicit stack, not recursion: a body nested 200,000 deep must not overflow the call stack.
  const stack: Array<[unknown, string]> = [[value, ""]];
  while (stack.length > 0) {
    const [item, path] = stack.pop()!;
    if (typeof item === "string") {
      if (!item.isWellFormed()) return path;
      continue;
    }
    if (item === null || typeof item !== "object") continue;
    const entries = Object.entries(item);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i];
      const at = Array.isArray(item) ? `${path}[${key}]` : path ? `${path}.${key}` : key;
      if (!key.isWellFormed()) return at;
      stack.push([child, at]);
    }
  }
  return null;
}

/**
 * Reads a request body, refusing (413) as soon as it passes `maxBytes` so memory stays bounded. An abort of
 * `signal` ends the read with its reason.
 */
export async function readLimited(req: Request, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array> {
  refuseAnnouncedTooLarge(req, maxBytes);
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const onAbort = () => reader.cancel(signal!.reason).catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (signal?.aborted) throw signal.reason;
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(maxBytes);
      }
      chunks.push(value);
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  return concatChunks(chunks);
}

/**
 * Refuses (413) a body whose `content-length` is over `maxBytes`. Call it before anything touches `req.body`: in
 * Deno, creating the body's stream already reads from the connection, which tells a client that sent `expect:
 * 100-continue` to upload the body (up to the limit, for nothing).
 */
export function refuseAnnouncedTooLarge(req: Request, maxBytes: number): void {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > maxBytes) throw tooLarge(maxBytes);
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, "request_too_large", `request body is larger than ${maxBytes} bytes`);
}

/** Parses `limit`/`offset` query parameters with bounds. */
export function paging(c: Context, maxLimit = 200): { limit: number; offset: number } {
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = c.req.query(name);
    if (raw === undefined || raw === "") return fallback;
    // Digits only: Number() would also take "1e2", "0x10" and " 5".
    const n = /^\d{1,12}$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new HttpError(
        400,
        "invalid_request_error",
        `${name}: expected an integer between ${min} and ${max}`,
        {},
        name,
      );
    }
    return n;
  };
  return { limit: int("limit", 50, 1, maxLimit), offset: int("offset", 0, 0, 1_000_000_000) };
}

/**
 * Whether a URL path holds a `.` or `..` segment, plain or percent-encoded: one a URL parser (the browser's,
 * fetch's) resolves, so the path that is used is not the path that was checked or routed.
 *
 * @example
 * ```ts
 * hasDotSegment("/v1/x/%2e%2e/messages"); // true
 * hasDotSegment("/v1/messages.json"); // false
 * ```
 */
export function hasDotSegment(path: string): boolean {
  return /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i.test(path);
}

/**
 * Whether a browser sent `req` on behalf of a page of another site (or of an opaque origin): its
 * `Sec-Fetch-Site` says `cross-site` or `same-site`, or its `Origin` names another host than the request's
 * own. Such a page can post a "simple" request (`text/plain`, no preflight) without reading the answer; only
 * its side effects count. Programs such as curl send neither header and are never refused.
 *
 * @example
 * ```ts
 * isCrossSiteRequest(new Request("https://p.example/x", { headers: { origin: "https://evil.example" } })); // true
 * isCrossSiteRequest(new Request("https://p.example/x")); // false
 * ```
 */
export function isCrossSiteRequest(req: Request): boolean {
  const site = req.headers.get("sec-fetch-site")?.trim().toLowerCase();
  if (site === "cross-site" || site === "same-site") return true;
  // A browser that says where the request came from is believed (a same-origin page may send `Origin: null`).
  if (site === "same-origin" || site === "none") return false;
  const origin = req.headers.get("origin");
  if (origin === null) return false;
  try {
    const from = new URL(origin);
    // Behind a load balancer that ends TLS the request is http while the page was https: the host is what
    // counts, read with the page's scheme so that an explicit default port (`:443`) is the same host.
    const host = req.headers.get("host") ?? new URL(req.url).host;
    return new URL(`${from.protocol}//${host}`).host !== from.host;
  } catch {
    return true; // "null" (a sandboxed frame, a redirect across sites) or garbage
  }
}
