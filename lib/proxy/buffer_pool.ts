/**
 * Reusable memory for request bodies. Every Claude Code request brings tens of kilobytes to megabytes of JSON;
 * a fresh buffer per request is zero-filled on allocation and, as V8 external memory, drives a full garbage
 * collection about every second under load. The proxy returns a body's buffer here once the body has been handed
 * to `fetch` (which copies it) and is no longer needed for a fallback.
 *
 * Giving a buffer back detaches it (`ArrayBuffer.prototype.transfer`): every view the proxy still holds reads as
 * empty from then on, so a stale reference can never see the next request's bytes. Only buffers this pool handed
 * out (and {@link BufferPool.adopt}ed) are taken back; the pool keeps at most `maxBytes`.
 *
 * @example
 * ```ts
 * const pool = new BufferPool({ maxBytes: 32 * 1024 * 1024, maxBufferBytes: 4 * 1024 * 1024 });
 * let buffer = pool.acquire(70_000);   // 128 KiB, reused when one is free
 * // … read into it (a BYOB read hands back a new ArrayBuffer object for the same memory) …
 * pool.adopt(buffer);
 * pool.release(new Uint8Array(buffer, 0, 70_000)); // the view is now empty; the memory serves the next body
 * ```
 */

/** Options of {@link BufferPool}. */
export interface BufferPoolOptions {
  /** Most bytes kept for reuse. */
  maxBytes: number;
  /** Larger buffers are allocated to size and never kept. */
  maxBufferBytes: number;
}

/** Sizes are powers of two from 16 KiB, so a buffer serves every body up to its size. */
const MIN_CLASS = 14;

/** See the module documentation. */
export class BufferPool {
  readonly #o: BufferPoolOptions;
  readonly #free: ArrayBuffer[][] = [];
  readonly #ours = new WeakSet<ArrayBuffer>();
  #pooledBytes = 0;

  constructor(opts: BufferPoolOptions) {
    this.#o = opts;
  }

  /** A buffer of at least `minBytes`: a kept one of its size class when there is one. */
  acquire(minBytes: number): ArrayBuffer {
    if (minBytes > this.#o.maxBufferBytes) return new ArrayBuffer(minBytes);
    const k = Math.max(MIN_CLASS, Math.ceil(Math.log2(Math.max(1, minBytes))));
    const kept = this.#free[k]?.pop();
    if (kept) {
      this.#pooledBytes -= kept.byteLength;
      return kept;
    }
    return new ArrayBuffer(2 ** k);
  }

  /** Marks `buffer` (from {@link acquire}, possibly transferred by reads since) as one to take back. */
  adopt(buffer: ArrayBuffer): void {
    const k = Math.log2(buffer.byteLength);
    if (Number.isInteger(k) && k >= MIN_CLASS && buffer.byteLength <= this.#o.maxBufferBytes) {
      this.#ours.add(buffer);
    }
  }

  /** Takes back the buffer behind `view` when it is one of ours; `view` and its siblings read as empty after. */
  release(view: Uint8Array): void {
    const buffer = view.buffer as ArrayBuffer;
    if (!this.#ours.has(buffer)) return;
    this.#ours.delete(buffer);
    // Detach every view of it now, whether or not the memory is kept.
    const fresh = buffer.transfer();
    if (this.#pooledBytes + fresh.byteLength > this.#o.maxBytes) {
      // Not kept: free the memory now rather than at some later garbage collection (a burst of large bodies
      // would otherwise stay resident until V8 gets round to it).
      fresh.transfer(0);
      return;
    }
    const k = Math.log2(fresh.byteLength);
    (this.#free[k] ??= []).push(fresh);
    this.#pooledBytes += fresh.byteLength;
  }

  /** Bytes kept for reuse. */
  get pooledBytes(): number {
    return this.#pooledBytes;
  }
}
