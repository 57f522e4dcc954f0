/**
 * A watchdog over a stream's silences, for upstreams that accept a call and then hang. `touch()` on every chunk
 * only stamps the time, so the hot path pays no timer per chunk; the one timer is re-armed for the time left
 * when it fires, and calls `onIdle` with a `TimeoutError` once `ms` pass without a chunk. Without `ms` it never
 * fires.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const idle = idleWatch(300_000, (e) => controller.abort(e), "Anthropic API");
 * // for each chunk read: idle.touch();
 * // when the stream ends: idle.stop();
 * ```
 */
export interface IdleWatch {
  /** The timeout, once it fired. */
  readonly error: Error | null;
  touch(): void;
  /**
   * Stops counting until `resume()`: for the time nothing is asked of the upstream (a relay waiting for its
   * client to read on), which is no silence of the upstream's.
   */
  pause(): void;
  /** Counts again, from now. */
  resume(): void;
  stop(): void;
}

/** See {@link IdleWatch}. */
export function idleWatch(ms: number | undefined, onIdle: (e: Error) => void, who = "upstream"): IdleWatch {
  let last = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let error: Error | null = null;
  let paused = false;
  const w: IdleWatch = {
    get error() {
      return error;
    },
    touch() {
      last = performance.now();
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      last = performance.now();
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
    },
  };
  if (ms === undefined) return w;
  const check = () => {
    if (paused) {
      timer = setTimeout(check, ms);
      return;
    }
    const left = last + ms - performance.now();
    if (left > 0) {
      timer = setTimeout(check, left);
      return;
    }
    timer = undefined;
    error = new DOMException(`${who} sent nothing for ${ms} ms`, "TimeoutError");
    onIdle(error);
  };
  timer = setTimeout(check, ms);
  return w;
}
