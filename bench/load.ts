/**
 * The benchmark's load generator, run as its own process by `bench/bench.ts`: a closed loop of `concurrency`
 * workers, each sending the next request as soon as its previous answer has been read to the end; or, with
 * `rate`, an open loop that starts a request every 1/rate s whether or not earlier ones have been answered.
 *
 * A closed loop slows down with the system under test, so its latency at a given concurrency hides part of the
 * slowdown in fewer requests sent (coordinated omission), and at a concurrency the machine cannot serve it
 * measures queueing. The open loop holds the arrival rate fixed and times every request from the moment it was
 * due, not from when it was sent: a target that falls behind pays for it in latency.
 *
 * It measures, per request: latency (send → last byte), time to first byte of the body, and for streams time to
 * the first token (the first `content_block_delta`). It writes JSON lines on stdout so the orchestrator can read
 * the proxy's CPU and memory at the right moments:
 *
 * - `{"type":"start"}` when the warm-up is over and the measurement window opens,
 * - `{"type":"progress","done":n}` every `progressEvery` measured requests (the 100k-requests RSS scenario),
 * - `{"type":"ready"}` in hold mode, once every stream has delivered its first token,
 * - `{"type":"end"}` when the window closes (before in-flight requests drain),
 * - `{"type":"result",…}` last.
 *
 * Only requests that finish inside the window count; the window ends after `durationS` seconds or after
 * `requests` requests. Hold mode opens `concurrency` streams once and waits for them all to end.
 *
 * ```sh
 * deno run -A bench/load.ts '{"url":"http://127.0.0.1:8000/ak/ak_…/v1/messages","bodyFile":"/tmp/body.json",
 *   "headers":{"x-api-key":"sk-ant-bench"},"stream":true,"concurrency":50,"warmupS":1,"durationS":5}'
 * ```
 */

/** What the orchestrator asks for. */
export interface LoadConfig {
  url: string;
  headers: Record<string, string>;
  bodyFile: string;
  stream: boolean;
  concurrency: number;
  /** Open loop: requests started per second (then `concurrency` is ignored). */
  rate?: number;
  /** Open loop: requests due while this many are in flight fail as "backlog" instead of piling up. */
  maxInFlight?: number;
  warmupS: number;
  durationS?: number;
  /** The window stays open past `durationS` until this many requests have finished (slow streams at c=1). */
  minRequests?: number;
  requests?: number;
  progressEvery?: number;
  hold?: boolean;
  /** `getconf CLK_TCK`, for reading /proc CPU times. */
  clockTicks?: number;
}

/** Percentiles in milliseconds. */
export interface Dist {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** The last line the load generator prints. */
export interface LoadResult {
  type: "result";
  completed: number;
  errors: number;
  errorSamples: string[];
  windowS: number;
  rps: number;
  latency: Dist;
  ttfb: Dist;
  ttft: Dist | null;
  /** Every request that got an answer, warm-up and drain included (to compare with the recorded usage rows). */
  total: number;
  /** Requests that ended after the window opened, drain included (the denominator of CPU per request). */
  sinceStart: number;
  /** This process's CPU during the window, in seconds and as a share of one core. */
  cpuS: number;
  cpuShare: number;
}

const TOKEN_MARK = "content_block_delta";
/** Open loop: how long requests due in the window may still take after it closes. */
const RATE_DRAIN_MS = 60_000;
const encoder = new TextEncoder();

/** Sorted-sample percentiles (nearest rank). */
export function dist(samples: number[]): Dist {
  if (samples.length === 0) return { n: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  const s = Float64Array.from(samples).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  let sum = 0;
  for (const v of s) sum += v;
  const r = (v: number) => Math.round(v * 100) / 100;
  return {
    n: s.length,
    p50: r(at(0.5)),
    p90: r(at(0.9)),
    p99: r(at(0.99)),
    max: r(s[s.length - 1]),
    mean: r(sum / s.length),
  };
}

/** CPU seconds (user + system) of a process, from /proc. */
export function cpuSeconds(pid: number | "self", ticks = 100): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

interface Sample {
  ok: boolean;
  error?: string;
  end: number;
  latency: number;
  ttfb: number;
  ttft: number;
}

function emit(line: Record<string, unknown>): void {
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(line) + "\n"));
}

async function one(
  cfg: LoadConfig,
  body: Uint8Array<ArrayBuffer>,
  onToken?: () => void,
  dueAt?: number,
): Promise<Sample> {
  // An open-loop request is timed from when it was due: a sender that fell behind must not hide the delay.
  const t0 = dueAt ?? performance.now();
  let ttfb = NaN;
  let ttft = NaN;
  try {
    const res = await fetch(cfg.url, { method: "POST", headers: cfg.headers, body });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let carry = "";
    let tail = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const t = performance.now();
      if (Number.isNaN(ttfb)) ttfb = t - t0;
      if (cfg.stream) {
        const text = decoder.decode(value, { stream: true });
        if (Number.isNaN(ttft)) {
          const window = carry + text;
          if (window.includes(TOKEN_MARK)) {
            ttft = t - t0;
            onToken?.();
          } else carry = window.slice(-TOKEN_MARK.length);
        }
        tail = (tail + text).slice(-64);
      }
    }
    const end = performance.now();
    if (res.status !== 200) {
      return { ok: false, error: `status ${res.status}`, end, latency: end - t0, ttfb, ttft };
    }
    if (cfg.stream && (Number.isNaN(ttft) || !tail.includes("message_stop"))) {
      return { ok: false, error: "stream incomplete", end, latency: end - t0, ttfb, ttft };
    }
    return { ok: true, end, latency: end - t0, ttfb, ttft };
  } catch (e) {
    const end = performance.now();
    return { ok: false, error: (e as Error).message.slice(0, 200), end, latency: end - t0, ttfb, ttft };
  }
}

/** Runs the load described by `cfg`; emits the lines listed in the module documentation. */
export async function run(cfg: LoadConfig): Promise<LoadResult> {
  const body = await Deno.readFile(cfg.bodyFile);
  const ticks = cfg.clockTicks ?? 100;
  const latency: number[] = [];
  const ttfb: number[] = [];
  const ttft: number[] = [];
  const errorSamples = new Set<string>();
  let errors = 0;
  let total = 0;
  let sinceStart = 0;
  let windowStart = Infinity;
  let windowEnd = Infinity;
  let measuring = false;
  let stopped = false;
  let durationOver = false;
  let cpuAtStart = 0;
  let cpuAtEnd = 0;
  let closeWindow!: () => void;
  const windowClosed = new Promise<void>((r) => (closeWindow = r));

  const open = () => {
    windowStart = performance.now();
    measuring = true;
    cpuAtStart = cpuSeconds("self", ticks);
    emit({ type: "start" });
  };
  const close = () => {
    if (!measuring) return;
    measuring = false;
    stopped = true;
    windowEnd = performance.now();
    cpuAtEnd = cpuSeconds("self", ticks);
    emit({ type: "end" });
    closeWindow();
  };
  /** Counts `s` among the answers, warm-up and drain included. */
  const answered = (s: Sample) => {
    total++;
    if (s.end >= windowStart) sinceStart++;
  };
  /** Counts `s` among the measured requests: an error (with a sample of its message), or its timings. */
  const measure = (s: Sample) => {
    if (!s.ok) {
      errors++;
      if (errorSamples.size < 5) errorSamples.add(s.error ?? "error");
      return;
    }
    latency.push(s.latency);
    ttfb.push(s.ttfb);
    if (cfg.stream) ttft.push(s.ttft);
  };
  const take = (s: Sample) => {
    answered(s);
    if (!measuring || s.end < windowStart) return;
    measure(s);
    if (!s.ok) return;
    if (cfg.progressEvery && latency.length % cfg.progressEvery === 0) {
      emit({ type: "progress", done: latency.length });
    }
    if (cfg.requests && latency.length >= cfg.requests) close();
    if (durationOver && latency.length >= (cfg.minRequests ?? 0)) close();
  };

  if (cfg.hold) {
    // Open every stream at once, say when all have a first token, wait for all to end.
    let tokens = 0;
    open();
    const all = Array.from({ length: cfg.concurrency }, () =>
      one(cfg, body, () => {
        if (++tokens === cfg.concurrency) emit({ type: "ready" });
      }).then(take));
    await Promise.all(all);
    close();
  } else if (cfg.rate) {
    // Judged by when each request was due, not when it ended: one due inside the window counts however late
    // it ends (a closed window would otherwise drop a falling-behind target's slowest answers), and one still
    // unanswered long after is an error.
    const periodMs = 1000 / cfg.rate;
    const cap = cfg.maxInFlight ?? 5_000;
    const t0 = performance.now();
    const inFlight = new Set<Promise<void>>();
    const due: Sample[] = [];
    let dueInWindow = 0;
    let sent = 0;
    const inWindow = (dueAt: number) => dueAt >= windowStart && dueAt < windowEnd;
    setTimeout(() => {
      open();
      if (cfg.durationS !== undefined) {
        setTimeout(() => {
          durationOver = true;
          if (dueInWindow >= (cfg.minRequests ?? 0)) close();
        }, cfg.durationS * 1000);
      }
    }, cfg.warmupS * 1000);
    while (!stopped) {
      // Every request due by now is started, so a late timer sends a burst rather than fewer requests.
      const dueNow = Math.floor((performance.now() - t0) / periodMs) + 1;
      for (; sent < dueNow && !stopped; sent++) {
        const dueAt = t0 + sent * periodMs;
        const counted = inWindow(dueAt);
        if (counted) dueInWindow++;
        if (inFlight.size >= cap) {
          const refused = {
            ok: false,
            error: "backlog",
            end: performance.now(),
            latency: NaN,
            ttfb: NaN,
            ttft: NaN,
          };
          if (counted) due.push(refused);
          continue;
        }
        const p = one(cfg, body, undefined, dueAt).then((s) => {
          answered(s);
          if (counted) due.push(s);
        });
        inFlight.add(p);
        p.finally(() => inFlight.delete(p));
      }
      if (durationOver && dueInWindow >= (cfg.minRequests ?? 0)) close();
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + sent * periodMs - performance.now())));
    }
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      Promise.all(inFlight).then(() => true),
      new Promise<false>((r) => drainTimer = setTimeout(() => r(false), RATE_DRAIN_MS)),
    ]);
    clearTimeout(drainTimer); // or the process would stay up for it
    for (const s of due) measure(s);
    if (!drained) {
      errors += dueInWindow - due.length;
      errorSamples.add(`${dueInWindow - due.length} unanswered ${RATE_DRAIN_MS / 1000} s after the window`);
    }
  } else {
    const worker = async () => {
      while (!stopped) {
        const s = await one(cfg, body);
        take(s);
        if (!s.ok && !measuring) await new Promise((r) => setTimeout(r, 10));
      }
    };
    const workers = Array.from({ length: cfg.concurrency }, worker);
    await new Promise((r) => setTimeout(r, cfg.warmupS * 1000));
    open();
    if (cfg.durationS !== undefined) {
      setTimeout(() => {
        durationOver = true;
        if (latency.length >= (cfg.minRequests ?? 0)) close();
      }, cfg.durationS * 1000);
    }
    await windowClosed;
    await Promise.all(workers);
  }

  const windowS = (windowEnd - windowStart) / 1000;
  const cpuS = cpuAtEnd - cpuAtStart;
  return {
    type: "result",
    completed: latency.length,
    errors,
    errorSamples: [...errorSamples],
    windowS,
    rps: latency.length / windowS,
    latency: dist(latency),
    ttfb: dist(ttfb),
    ttft: cfg.stream ? dist(ttft) : null,
    total,
    sinceStart,
    cpuS,
    cpuShare: cpuS / windowS,
  };
}

if (import.meta.main) {
  const result = await run(JSON.parse(Deno.args[0]) as LoadConfig);
  emit(result as unknown as Record<string, unknown>);
}
