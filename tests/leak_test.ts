/**
 * Regression test for a per-request memory leak in the proxy's hot path.
 *
 * An earlier change built each request's upstream abort signal with
 * `AbortSignal.any([req.signal, processWideShutdownSignal])`. Deno keeps every signal made that way alive for as
 * long as the long-lived one lives, so each request leaked about 10 KB (RSS 457 → 1,417 MB over 100,000
 * requests), and only a manual benchmark showed it. `untilShutdown()` in lib/proxy/proxy.ts now uses a
 * per-request AbortController; this test keeps it that way, and catches any other per-request retention too.
 *
 * It measures the JS heap after full garbage collections, not RSS (which the allocator returns to the system
 * when it pleases) and not time, in a process that holds only the proxy (tests/helpers/leak_probe.ts): heap
 * growth over thousands of requests, after a warm-up, is then what the proxy keeps per request.
 */
import assert from "node:assert/strict";
import { startFakeAnthropic } from "./fakes/fake_anthropic.ts";
import { postMessages } from "./helpers/proxy.ts";
import { lineSplitter, PROBE_PREFIX, type ProbeHeap, type ProbeReady } from "./helpers/leak_probe.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PROBE = new URL("./helpers/leak_probe.ts", import.meta.url).pathname;

/** Enough for the JIT, the pools and the caches of the hot path to reach about their steady size. */
const WARMUP_REQUESTS = 800;
const MEASURED_REQUESTS = 2_500;
const CONCURRENCY = 16;
/**
 * Allowed heap growth over the measured requests. The AbortSignal.any leak kept about 3 KB of heap per request
 * (its 10 KB of RSS include native memory); a leak-free proxy grows by 40-120 bytes per request here, nearly all
 * optimised code the JIT is still adding, which levels off. 1 KB per request sits well clear of both.
 */
const MAX_GROWTH_BYTES = MEASURED_REQUESTS * 1024;

const MESSAGE = {
  model: "claude-sonnet-4-5-20250929",
  max_tokens: 256,
  messages: [{ role: "user", content: "Hello" }],
};

Deno.test("the proxy keeps no heap per request over thousands of plain and streamed requests", async () => {
  const upstream = await startFakeAnthropic({ record: false });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", PROBE],
    cwd: ROOT,
    env: { LEAK_PROBE_UPSTREAM: upstream.url },
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const replies = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter()).getReader();
  const stdin = child.stdin.getWriter();
  const next = async <T>(): Promise<T> => {
    for (;;) {
      const { value, done } = await replies.read();
      if (done) throw new Error("leak probe exited early (its stderr is above)");
      if (value.startsWith(PROBE_PREFIX)) return JSON.parse(value.slice(PROBE_PREFIX.length)) as T;
    }
  };
  const heapUsed = async (): Promise<number> => {
    await stdin.write(new TextEncoder().encode("heap\n"));
    return (await next<ProbeHeap>()).heapUsed;
  };

  try {
    const { port, key } = await next<ProbeReady>();
    const baseUrl = `http://127.0.0.1:${port}/ak/${key}`;
    let failures = 0;
    const drive = async (count: number) => {
      let issued = 0;
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (issued < count) {
          // Alternate: the streamed path holds its own state (SSE tap, live stream set) beside the plain one.
          const stream = issued++ % 2 === 1;
          const res = await postMessages(baseUrl, { ...MESSAGE, stream });
          const body = await res.text();
          // An error answer would skip most of the hot path and read as "no leak".
          if (res.status !== 200 || (stream && !body.includes("message_stop"))) failures++;
        }
      }));
    };

    await drive(WARMUP_REQUESTS);
    const before = await heapUsed();
    await drive(MEASURED_REQUESTS);
    const after = await heapUsed();
    const growth = after - before;
    const kb = (n: number) => `${(n / 1024).toFixed(0)} KB`;
    const perRequest = (growth / MEASURED_REQUESTS).toFixed(0);
    const figures = `heap ${kb(before)} → ${kb(after)} over ${MEASURED_REQUESTS} requests ` +
      `(${growth >= 0 ? "+" : ""}${kb(growth)}, ${perRequest} bytes per request)`;
    // Printed on success too: the margin under the limit is worth seeing before it runs out.
    console.log(`leak test: ${figures}`);
    assert.equal(failures, 0, `${failures} requests were not answered 200 (a complete stream for streams)`);
    const limit = `limit +${kb(MAX_GROWTH_BYTES)}`;
    assert.ok(
      growth < MAX_GROWTH_BYTES,
      `the proxy keeps memory per request: ${figures}, ${limit}. Look for per-request objects held by ` +
        `something long-lived, e.g. AbortSignal.any with the process-wide shutdown signal (see untilShutdown ` +
        `in lib/proxy/proxy.ts)`,
    );
  } finally {
    await stdin.close().catch(() => {});
    await child.status;
    await replies.cancel().catch(() => {});
    await upstream.close();
  }
});
