/**
 * The plan upstream client: sends a request to the Anthropic API (`PROXY_PLAN_API_URL`) with a connect timeout
 * and a first-byte timeout, aborting when the client goes away.
 *
 * `fetch` has no connect timeout of its own. When the upstream has not answered for a while, a TCP connect probe
 * runs beside the request (it adds no latency); if it cannot connect within the connect timeout the request is
 * aborted as unreachable, instead of waiting for the much longer first-byte timeout.
 *
 * Requests are spread, in turn, over the HTTP clients of a {@link HttpClientPool}, so over several connections
 * (an HTTP/2 server caps the streams of one).
 *
 * @example
 * ```ts
 * const plan = new PlanClient({ baseUrl: "https://api.anthropic.com", connectTimeoutMs: 10_000, firstByteTimeoutMs: 300_000 });
 * const sent = await plan.send({ method: "POST", pathAndQuery: "/v1/messages", headers, body, signal });
 * ```
 */

import { HttpClientPool } from "../net/http_client_pool.ts";

/** Why the upstream could not answer. */
export type NetworkFailure = "connect_error" | "connect_timeout" | "first_byte_timeout" | "client_aborted";

/** A sent request: either a response (whose body may still time out) or a network failure. */
export type PlanResult =
  | {
    ok: true;
    response: Response;
    firstByte: FirstByteTimer;
    abort: () => void;
    /** Aborted with the call: read the body with `chunkReader(response.body, signal)` so an abort ends the read. */
    signal: AbortSignal;
    /** Why the call was aborted after its headers came, if it was (a body read then fails). */
    readonly abortedFor: NetworkFailure | null;
  }
  | { ok: false; failure: NetworkFailure; message: string };

/** The first-byte timer outlives the headers for streams: cleared when the first body chunk arrives. */
export interface FirstByteTimer {
  clear(): void;
  /** True when it fired (the body read then fails with an abort error). */
  readonly fired: boolean;
}

/** Options of {@link PlanClient}. */
export interface PlanClientOptions {
  baseUrl: string;
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  fetch?: typeof fetch;
  now?: () => number;
  /** How long after a successful answer the connect probe is skipped. */
  healthyForMs?: number;
  /** False when fetch goes through an egress proxy: a direct connect probe would test the wrong path. */
  probe?: boolean;
  /** Opens the probe's TCP connection (tests swap it). */
  connect?: (host: { hostname: string; port: number }) => Promise<{ close(): void }>;
  /** The HTTP clients requests are spread over; by default the runtime's shared one. */
  clients?: HttpClientPool;
}

/** See the module documentation. */
export class PlanClient {
  readonly #o: Required<PlanClientOptions>;
  readonly #host: { hostname: string; port: number };
  #lastAnswerAt = -Infinity;

  constructor(opts: PlanClientOptions) {
    this.#o = {
      clients: new HttpClientPool(1),
      ...opts,
      fetch: opts.fetch ?? ((input, init) => fetch(input, init)),
      now: opts.now ?? (() => performance.now()),
      healthyForMs: opts.healthyForMs ?? 30_000,
      probe: opts.probe ?? true,
      connect: opts.connect ?? ((host) => Deno.connect(host)),
    };
    const u = new URL(opts.baseUrl);
    this.#host = { hostname: u.hostname, port: Number(u.port || (u.protocol === "https:" ? 443 : 80)) };
  }

  /** Sends one request. Never throws for network problems: they come back as `{ ok: false }`. */
  async send(req: {
    method: string;
    pathAndQuery: string;
    headers: HeadersInit;
    /** The body: bytes, or a stream sent on as it comes (an upload; see `bodySent`). */
    body: Uint8Array | ReadableStream<Uint8Array> | null;
    signal: AbortSignal;
    /** Overrides the client's first-byte timeout (a non-streaming answer's first byte is its last). */
    firstByteTimeoutMs?: number;
    /**
     * For a streamed body: settles once it has all been read. The first-byte timeout starts then, not at the
     * start: an upload of minutes is the client's time, not the upstream's silence.
     */
    bodySent?: Promise<void>;
  }): Promise<PlanResult> {
    const controller = new AbortController();
    let cause: NetworkFailure | null = null;
    const abortWith = (why: NetworkFailure) => {
      if (cause === null) cause = why;
      controller.abort();
    };
    const onClientAbort = () => abortWith("client_aborted");
    if (req.signal.aborted) return { ok: false, failure: "client_aborted", message: "client went away" };
    req.signal.addEventListener("abort", onClientAbort, { once: true });

    let fired = false;
    let answered = false;
    let cleared = false;
    const firstByteTimeoutMs = req.firstByteTimeoutMs ?? this.#o.firstByteTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      if (cleared || answered || controller.signal.aborted) return;
      timer = setTimeout(() => {
        fired = true;
        abortWith("first_byte_timeout");
      }, firstByteTimeoutMs);
    };
    // A body that failed (too slow, its client gone) ends the call: fetch does not notice while the upstream
    // has stopped reading it. The caller tells why from the body's own failure.
    if (req.bodySent) req.bodySent.then(arm, () => answered || controller.abort());
    else arm();
    const firstByte: FirstByteTimer = {
      clear: () => {
        cleared = true;
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
      },
      get fired() {
        return fired;
      },
    };

    if (this.#o.probe && this.#o.now() - this.#lastAnswerAt > this.#o.healthyForMs) {
      this.#probe().then((failure) => {
        // Once headers came the upstream is evidently reachable: a late probe failure must not kill the answer.
        if (failure && !answered) abortWith(failure);
      });
    }

    try {
      const doFetch = this.#o.fetch;
      const client = this.#o.clients.next();
      const response = await doFetch(this.#o.baseUrl + req.pathAndQuery, {
        method: req.method,
        headers: req.headers,
        body: req.body as BodyInit | null,
        signal: controller.signal,
        redirect: "manual",
        ...(client ? { client } : {}),
      });
      answered = true;
      this.#lastAnswerAt = this.#o.now();
      return {
        ok: true,
        response,
        firstByte,
        signal: controller.signal,
        get abortedFor() {
          return cause;
        },
        abort: () => {
          firstByte.clear();
          req.signal.removeEventListener("abort", onClientAbort);
          controller.abort();
        },
      };
    } catch (e) {
      firstByte.clear();
      req.signal.removeEventListener("abort", onClientAbort);
      const failure: NetworkFailure = cause ?? "connect_error";
      return { ok: false, failure, message: describe(failure, e, { ...this.#o, firstByteTimeoutMs }) };
    }
  }

  /** Opens and closes a TCP connection; resolves to a failure, or null when it connected in time. */
  async #probe(): Promise<NetworkFailure | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => {
      timer = setTimeout(() => r("timeout"), this.#o.connectTimeoutMs);
    });
    const attempt = this.#o.connect(this.#host).then((conn) => {
      conn.close();
      return "ok" as const;
    }, () => "refused" as const);
    const outcome = await Promise.race([attempt, timeout]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      attempt.catch(() => {}); // the late connection is closed by its own handler
      return "connect_timeout";
    }
    return outcome === "refused" ? "connect_error" : null;
  }
}

function describe(
  failure: NetworkFailure,
  e: unknown,
  o: { connectTimeoutMs: number; firstByteTimeoutMs: number },
): string {
  switch (failure) {
    case "connect_timeout":
      return `upstream did not accept a connection within ${o.connectTimeoutMs} ms`;
    case "first_byte_timeout":
      return `upstream sent nothing within ${o.firstByteTimeoutMs} ms`;
    case "client_aborted":
      return "client went away";
    default: {
      const message = e instanceof Error ? e.message : String(e);
      // fetch's message names the URL; keep only the reason.
      return `upstream unreachable: ${message.replace(/https?:\/\/\S+/g, "<upstream>").slice(0, 200)}`;
    }
  }
}
