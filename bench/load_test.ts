import assert from "node:assert/strict";
import { type LoadConfig, type LoadResult, run } from "./load.ts";

/** A local upstream that answers every request after `delayMs`. */
function slowServer(delayMs: number) {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer();
    await new Promise((r) => setTimeout(r, delayMs));
    return new Response("{}", { headers: { "content-type": "application/json" } });
  });
}

/** Runs the open loop at `server` (which it then shuts down) with a `{}` body and `cfg` over the defaults. */
async function openLoop(
  server: Deno.HttpServer<Deno.NetAddr>,
  cfg: Partial<LoadConfig>,
): Promise<LoadResult> {
  const bodyFile = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(bodyFile, "{}");
    return await run({
      url: `http://127.0.0.1:${server.addr.port}/v1/messages`,
      headers: {},
      bodyFile,
      stream: false,
      concurrency: 1,
      warmupS: 0,
      durationS: 1,
      ...cfg,
    });
  } finally {
    await server.shutdown();
    await Deno.remove(bodyFile);
  }
}

Deno.test("the open loop keeps starting requests at its rate while earlier ones wait for their answers", async () => {
  const server = slowServer(200);
  const result = await openLoop(server, { rate: 100 });
  // A closed loop of one would finish about 5 in a second of 200 ms answers; 100/s keeps about 20 in flight.
  assert(result.completed >= 50, `expected most of ~100 requests started in 1 s, got ${result.completed}`);
  assert(result.errors === 0, `errors: ${result.errorSamples.join("; ")}`);
  assert(result.latency.p50 >= 200, `each answer takes 200 ms, p50 was ${result.latency.p50} ms`);
});

Deno.test("the open loop fails requests due while too many are in flight, instead of piling them up", async () => {
  const server = slowServer(2_000);
  const result = await openLoop(server, { rate: 50, maxInFlight: 5, minRequests: 0 });
  assert(result.errors > 0, "requests due past the in-flight cap are counted as errors");
  assert(result.errorSamples.includes("backlog"), `error samples: ${result.errorSamples.join("; ")}`);
});

Deno.test("the open loop counts every request due in its window, however late it ends: a target behind pays in latency", async () => {
  // Answers one request at a time, 20 ms each: 50/s, half the rate offered, so the backlog grows.
  let queue = Promise.resolve();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    await req.arrayBuffer();
    const turn = queue.then(() => new Promise<void>((r) => setTimeout(r, 20)));
    queue = turn;
    await turn;
    return new Response("{}", { headers: { "content-type": "application/json" } });
  });
  const result = await openLoop(server, { rate: 100, minRequests: 0 });
  // About 100 due in the window; the last is answered about a second after it closes.
  assert(result.completed >= 95, `every request due in the window is counted, got ${result.completed}`);
  assert(result.errors === 0, `errors: ${result.errorSamples.join("; ")}`);
  // The k-th waits behind k others: about 10 k ms late, so the median about half a second.
  assert(result.latency.p50 >= 400, `the backlog shows in latency, p50 was ${result.latency.p50} ms`);
});
