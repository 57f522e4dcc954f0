/**
 * A response body that its request's signal really ends.
 *
 * Deno's fetch ties a response body to the request's signal through a signal it holds only weakly once the
 * response has come: after a garbage collection, aborting the signal leaves a body that is already streaming
 * running to its end (measured with Deno 2.9; see denoland/deno#29075 for the same weakness in
 * `AbortSignal.any`). Code that keeps the `Response` reachable keeps the link; a library that keeps only the body
 * (the AWS SDK's fetch handler) loses it, and with it every timeout and cancellation made through the signal.
 *
 * @example
 * ```ts
 * const response = await fetch(url, { signal });
 * const body = abortableBody(response.body!, signal); // errors with signal.reason once it aborts
 * ```
 */

/**
 * `body` passed through as it comes; once `signal` aborts, a read pending or to come fails with its reason and
 * `body` is cancelled, which closes the upstream stream.
 */
export function abortableBody(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  // Holds `signal` itself as long as this stream is read: it is what the caller's signal links to weakly.
  const onAbort = () => {
    try {
      controller.error(signal.reason);
    } catch { /* already closed or errored */ }
    reader.cancel(signal.reason).catch(() => {});
  };
  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    },
    async pull(c) {
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read();
      } catch (e) {
        signal.removeEventListener("abort", onAbort);
        throw e;
      }
      if (signal.aborted) return; // errored by onAbort meanwhile: this read came back empty from the cancel
      if (read.done) {
        signal.removeEventListener("abort", onAbort);
        c.close();
      } else c.enqueue(read.value);
    },
    cancel(reason) {
      signal.removeEventListener("abort", onAbort);
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * `fetch`, with the response's body made {@link abortableBody} by the request's signal: for a library that keeps
 * only the body of the response (the AWS SDK's `customFetch`).
 */
export async function fetchWithAbortableBody(
  input: RequestInfo | URL,
  init?: RequestInit,
): Promise<Response> {
  const response = await fetch(input, init);
  const signal = init?.signal ?? (input instanceof Request ? input.signal : null);
  if (!response.body || !signal) return response;
  return new Response(abortableBody(response.body, signal), {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
