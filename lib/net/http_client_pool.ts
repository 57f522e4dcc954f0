/**
 * A few HTTP clients used in turn, so requests to one host travel over several connections. Over HTTP/2 a
 * server caps the streams one connection carries (`SETTINGS_MAX_CONCURRENT_STREAMS`, often 100 to 256), and
 * Deno's fetch then queues further requests until a stream ends rather than open another connection: with
 * answers that stream for minutes, a busy proxy's new requests would wait minutes for their first byte.
 *
 * @example
 * ```ts
 * const pool = new HttpClientPool(8);
 * const res = await fetch(url, { client: pool.next() }); // undefined for a pool of 1: the shared client
 * pool.close();
 * ```
 */
export class HttpClientPool {
  readonly #clients: Deno.HttpClient[];
  #next = 0;

  /**
   * `size` clients (1: none, requests use the runtime's shared client); `options` for each, e.g. a test's CA
   * certificate (a pool of 1 with options gets its own client too).
   */
  constructor(size: number, options?: Deno.CreateHttpClientOptions) {
    this.#clients = size > 1 || options
      ? Array.from({ length: Math.max(1, size) }, () => Deno.createHttpClient(options ?? {}))
      : [];
  }

  /** The client for the next request; undefined when the runtime's shared one is to be used. */
  next(): Deno.HttpClient | undefined {
    return this.#clients.length === 0 ? undefined : this.#clients[this.#next++ % this.#clients.length];
  }

  /** Closes every client's idle connections (at exit; requests still running keep theirs). */
  close(): void {
    for (const c of this.#clients) c.close();
  }
}
