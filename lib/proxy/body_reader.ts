/**
 * Body reading tuned for the hot path, where Deno's defaults allocate far more than the bytes they carry.
 *
 * - A fetch response body read with a default reader gets a fresh 64 KiB buffer for every read
 *   (`autoAllocateChunkSize`), even for a 150-byte SSE event: most of the proxy's garbage, and 64 KiB held by
 *   every stream waiting for its next event. {@link chunkReader} reads into one small buffer per body (a BYOB
 *   read) and hands out exact-size copies.
 * - A request body read chunk by chunk goes through the same allocation; {@link readBody} reads a body of
 *   declared length straight into one buffer (from a {@link BufferPool} when given one), and falls back to the
 *   bounded chunked read otherwise.
 */
import { readLimited, readWithin, refuseAnnouncedTooLarge } from "../http.ts";
import { HttpError } from "../errors.ts";
import type { BufferPool } from "./buffer_pool.ts";

/** The reads the proxy makes of an upstream body. */
export interface ChunkReader {
  read(): Promise<ReadableStreamReadResult<Uint8Array>>;
  cancel(reason?: unknown): Promise<void>;
}

/**
 * Bytes of the first read: a Claude SSE event is a few hundred bytes, and a stream waiting for its next event holds
 * its buffer, so 1,000 open streams hold 1,000 of them.
 */
export const FIRST_READ_BYTES = 4 * 1024;
/** The buffer doubles each time a read fills it (a JSON answer, a burst of events), up to this. */
export const MAX_READ_BYTES = 64 * 1024;
/** A request body's first buffer: larger ones grow as their bytes come (Claude Code's bodies fit in this). */
export const FIRST_BODY_BYTES = 1024 * 1024;
/**
 * The most a request body read asks Deno's HTTP server for at once. What the server keeps per connection after the
 * body is read follows the size of these reads, not the body's: a bare `Deno.serve` holding 1,000 connections
 * whose 70 KB bodies it read took 257 MB in 64 KiB reads, 176 MB in 16 KiB and 146 MB in 4 KiB (1 KB bodies: 118
 * MB). It is kept for as long as the connection (a held stream, an idle keep-alive), so smaller reads are worth
 * their few extra calls.
 */
export const BODY_READ_STEP_BYTES = 16 * 1024;

/**
 * A reader of `body` whose chunks are exact-size copies read through one reused buffer, which starts small and
 * grows while reads fill it. Falls back to the default reader for streams that are not byte streams (e.g. a
 * test's hand-made body).
 *
 * Given the signal of the request `body` answers, an abort of it fails a read pending or to come with its reason,
 * and cancels `body`. Deno's fetch does that itself only while something keeps the `Response` reachable: its link
 * from the signal to the body is weak (see `lib/net/abortable_body.ts`), and timeouts must not depend on what a
 * closure happens to keep.
 */
export function chunkReader(body: ReadableStream<Uint8Array> | null, signal?: AbortSignal): ChunkReader {
  if (!body) return new ReadableStream<Uint8Array>({ start: (c) => c.close() }).getReader();
  let inner: ReadableStreamBYOBReader | ReadableStreamDefaultReader<Uint8Array>;
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    inner = byob = body.getReader({ mode: "byob" });
  } catch {
    inner = body.getReader();
  }
  // The cancel ends a pending read as if the body had ended; read() below tells the two apart.
  const onAbort = () => inner.cancel(signal!.reason).catch(() => {});
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  /** After each read: fails it when the signal aborted, and lets go of the signal once the body is done. */
  const settle = (done: boolean) => {
    if (signal?.aborted) throw signal.reason ?? new DOMException("aborted", "AbortError");
    if (done) signal?.removeEventListener("abort", onAbort);
  };
  /** A read that failed: the body is done for, so the signal is let go too. */
  const failed = (e: unknown): never => {
    signal?.removeEventListener("abort", onAbort);
    throw e;
  };
  const cancel = (reason?: unknown) => {
    signal?.removeEventListener("abort", onAbort);
    return inner.cancel(reason);
  };
  if (!byob) {
    const plain = inner as ReadableStreamDefaultReader<Uint8Array>;
    return {
      async read() {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await plain.read();
        } catch (e) {
          return failed(e);
        }
        settle(result.done === true);
        return result;
      },
      cancel,
    };
  }
  const reader = byob;
  let spare: ArrayBuffer | null = null;
  let size = FIRST_READ_BYTES;
  return {
    async read() {
      const buffer = spare?.byteLength === size ? spare : new ArrayBuffer(size);
      spare = null;
      // try/catch rather than .catch(): no extra promise per read on the hot path.
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read(new Uint8Array(buffer));
      } catch (e) {
        return failed(e);
      }
      const { done, value } = read;
      settle(done || !value);
      // The buffer was transferred into the read and comes back as value.buffer: keep it for the next read.
      if (value) spare = value.buffer as ArrayBuffer;
      if (done || !value) return { done: true, value: undefined };
      if (value.length === size && size < MAX_READ_BYTES) size *= 2;
      return { done: false, value: value.slice() };
    },
    cancel,
  };
}

/** How a request body is read: its size limit, and optionally a buffer pool and a deadline. */
export interface BodyLimits {
  /** Past this many bytes the body is refused with 413. */
  maxBytes: number;
  /** A buffer pool for bodies of declared length. */
  pool?: BufferPool;
  /**
   * The time the whole body may take to arrive, from when the proxy starts reading it (right after the
   * headers): past it, 408. Memory is bounded by the buffer growing with the bytes; without this, time is not,
   * and a client sending a byte every few seconds holds its connection and its request for as long as it likes.
   */
  timeoutMs?: number;
}

/**
 * The request body, refused with 413 past `limits.maxBytes` and with 408 past `limits.timeoutMs`. A body with a
 * declared `content-length` within the limit (the server enforces it) is read into one buffer that grows with
 * its bytes; any other goes through the bounded chunked read. (`Request.bytes()` would be one call too, but
 * leaves twice the memory behind per connection.)
 *
 * @example
 * ```ts
 * const body = await readBody(request, { maxBytes: 32 * 1024 * 1024, timeoutMs: 300_000 });
 * ```
 */
export async function readBody(req: Request, limits: BodyLimits): Promise<Uint8Array> {
  refuseAnnouncedTooLarge(req, limits.maxBytes);
  if (!req.body) return new Uint8Array(0);
  const { timeoutMs } = limits;
  if (timeoutMs === undefined) return await readBodyOnce(req, limits.maxBytes, limits.pool);
  return await readWithin(
    timeoutMs,
    "PROXY_REQUEST_BODY_TIMEOUT_MS",
    (signal) => readBodyOnce(req, limits.maxBytes, limits.pool, signal),
  );
}

async function readBodyOnce(
  req: Request,
  maxBytes: number,
  pool?: BufferPool,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (
    req.body && declared !== null && /^\d{1,15}$/.test(declared) && Number(declared) <= maxBytes &&
    !req.headers.has("transfer-encoding")
  ) {
    const length = Number(declared);
    let reader: ReadableStreamBYOBReader | null = null;
    try {
      reader = req.body.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream: read it in chunks below.
    }
    if (reader) {
      // Memory follows the bytes that came, not the length announced: a client announcing 32 MB and sending a
      // byte at a time would otherwise hold 32 MB per connection (a hundred such: gigabytes).
      const first = Math.min(length, FIRST_BODY_BYTES);
      let buffer = pool ? pool.acquire(first) : new ArrayBuffer(first);
      let filled = 0;
      // The cancel ends the read under way as if the body had ended: short of its length, which throws below.
      const onAbort = () => reader.cancel(signal!.reason).catch(() => {});
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        while (filled < length) {
          if (filled === Math.min(length, buffer.byteLength)) {
            const bigger = new ArrayBuffer(Math.min(length, buffer.byteLength * 2));
            new Uint8Array(bigger).set(new Uint8Array(buffer, 0, filled));
            buffer = bigger;
          }
          const room = Math.min(length, buffer.byteLength, filled + BODY_READ_STEP_BYTES) - filled;
          const { done, value } = await reader.read(new Uint8Array(buffer, filled, room));
          if (value) buffer = value.buffer as ArrayBuffer;
          if (done || !value) break;
          filled += value.length;
        }
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
      if (filled < length) {
        throw signal?.reason ?? new Error(`request body ended after ${filled} of its ${length} bytes`);
      }
      // One more read sees the end, which closes the body's resource now; left open, it would be closed by a
      // finalizer after garbage collection, hundreds at a time, stalling every request in flight. (The reader
      // keeps its lock: releasing it costs a TypeError, and its stack trace, per request.)
      const end = await reader.read(new Uint8Array(1));
      if (!end.done) {
        throw new HttpError(400, "invalid_request_error", "request body longer than its content-length");
      }
      pool?.adopt(buffer);
      return new Uint8Array(buffer, 0, filled);
    }
  }
  return await readLimited(req, maxBytes, signal);
}

/**
 * Reads `reader` until it ends or at least `max` bytes have come: `done` says which. Chunks are returned as read,
 * so a caller that stops early can still pass every byte on. `onChunk` is called as each arrives (a silence
 * watch's `touch`).
 */
export async function readUpTo(
  reader: ChunkReader,
  max: number,
  onChunk?: () => void,
): Promise<{ chunks: Uint8Array[]; bytes: number; done: boolean }> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  while (bytes < max) {
    const { done, value } = await reader.read();
    if (done) return { chunks, bytes, done: true };
    onChunk?.();
    chunks.push(value);
    bytes += value.length;
  }
  return { chunks, bytes, done: false };
}

/** A request body passed on as it arrives; see {@link streamBody}. */
export interface StreamedBody {
  stream: ReadableStream<Uint8Array>;
  /**
   * Resolves once the last byte was read from the client, or the stream's reader cancelled it; rejects when the
   * client's side failed (it left, or was too slow: a 408 {@link HttpError}).
   */
  done: Promise<void>;
}

/**
 * A request body to send on as it comes, in no more memory than a chunk or two: for uploads (the Files API
 * takes 500 MB, batches 256 MB) that the proxy does not read. Not done within `timeoutMs` of the first read,
 * the stream fails with a 408 {@link HttpError}, which `done` rejects with too, so a client trickling its upload
 * holds an upstream connection no longer than a read body would.
 *
 * @example
 * ```ts
 * const body = streamBody(request, 300_000);
 * const res = await fetch(upstream, { method: "POST", body: body.stream });
 * ```
 */
export function streamBody(req: Request, timeoutMs?: number): StreamedBody {
  const source = req.body!.getReader();
  let settle!: { resolve: () => void; reject: (e: unknown) => void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => {}); // read by whoever cares; a failure is also the stream's
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late: HttpError | null = null;
  let out!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      out = controller;
    },
    async pull(controller) {
      if (timer === undefined && timeoutMs !== undefined) {
        timer = setTimeout(() => {
          late = new HttpError(
            408,
            "timeout_error",
            `request body not received within ${timeoutMs / 1000} s (PROXY_REQUEST_BODY_TIMEOUT_MS); ` +
              "send it whole sooner",
          );
          source.cancel(late).catch(() => {});
          // Failed here too, not only in a pending pull: an upstream that stopped reading (no window granted,
          // a black-holed connection) asks for no more, and would leave the upload, and its request, hanging.
          settle.reject(late);
          try {
            out.error(late);
          } catch { /* already closed or errored */ }
        }, timeoutMs);
      }
      try {
        const { done: end, value } = await source.read();
        if (late) throw late;
        if (end) {
          clearTimeout(timer);
          settle.resolve();
          return controller.close();
        }
        controller.enqueue(value);
      } catch (e) {
        clearTimeout(timer);
        const reason = late ?? e;
        settle.reject(reason);
        controller.error(reason);
      }
    },
    cancel(reason) {
      // The sender stopped taking it (the upstream failed or answered early): nothing the client did wrong.
      clearTimeout(timer);
      settle.resolve();
      return source.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { stream, done };
}
