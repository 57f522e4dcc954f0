/**
 * The plan upstream client's connect probe: it may abort a request still waiting for its headers, never one that
 * has them, and it is off when fetch goes through an egress proxy.
 */
import assert from "node:assert/strict";
import { PlanClient } from "../lib/proxy/plan_client.ts";
import { HttpClientPool } from "../lib/net/http_client_pool.ts";
import { makeCertificates } from "../bench/certificates.ts";
import { startCappedHttp2 } from "./fakes/capped_http2.ts";
import { waitFor } from "./helpers/proxy.ts";

/** A fetch whose answer comes after `headersAfterMs`, then streams `chunks` 30 ms apart; aborts are honoured. */
function slowUpstream(headersAfterMs: number, chunks: number): typeof fetch {
  return (_input, init) =>
    new Promise<Response>((resolve, reject) => {
      const signal = init?.signal ?? undefined;
      const onAbort = () => reject(new DOMException("aborted", "AbortError"));
      signal?.addEventListener("abort", onAbort, { once: true });
      setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        let sent = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(c) {
            await new Promise((r) => setTimeout(r, 30));
            if (signal?.aborted) return c.error(new DOMException("aborted", "AbortError"));
            if (sent++ === chunks) return c.close();
            c.enqueue(new TextEncoder().encode(`chunk ${sent}\n`));
          },
        });
        resolve(new Response(body, { status: 200 }));
      }, headersAfterMs);
    });
}

const refusedAfter = (ms: number, calls: string[]) => (host: { hostname: string; port: number }) => {
  calls.push(`${host.hostname}:${host.port}`);
  return new Promise<{ close(): void }>((_, reject) => setTimeout(() => reject(new Error("refused")), ms));
};

function send(client: PlanClient, firstByteTimeoutMs?: number) {
  return client.send({
    method: "POST",
    pathAndQuery: "/v1/messages",
    headers: {},
    body: null,
    signal: new AbortController().signal,
    firstByteTimeoutMs,
  });
}

Deno.test("a probe that fails after the headers came does not cut the answer", async () => {
  const calls: string[] = [];
  const client = new PlanClient({
    baseUrl: "https://upstream.example:8443",
    connectTimeoutMs: 1000,
    firstByteTimeoutMs: 5000,
    fetch: slowUpstream(10, 8),
    connect: refusedAfter(80, calls),
  });
  const sent = await send(client);
  assert.ok(sent.ok);
  sent.firstByte.clear();
  const text = await sent.response.text(); // 8 chunks over ~270 ms, well past the probe's failure at 80 ms
  assert.equal(text.split("\n").filter(Boolean).length, 8);
  assert.deepEqual(calls, ["upstream.example:8443"], "the probe did run");
  assert.equal(sent.abortedFor, null);
});

Deno.test("a probe that fails while the headers are awaited aborts the request as unreachable", async () => {
  const client = new PlanClient({
    baseUrl: "https://upstream.example",
    connectTimeoutMs: 1000,
    firstByteTimeoutMs: 5000,
    fetch: slowUpstream(2000, 1),
    connect: refusedAfter(20, []),
  });
  const sent = await send(client);
  assert.equal(sent.ok, false);
  assert.equal(!sent.ok && sent.failure, "connect_error");
});

Deno.test("no probe runs when fetch goes through an egress proxy", async () => {
  const calls: string[] = [];
  const client = new PlanClient({
    baseUrl: "https://upstream.example",
    connectTimeoutMs: 1000,
    firstByteTimeoutMs: 5000,
    fetch: slowUpstream(10, 1),
    connect: refusedAfter(1, calls),
    probe: false,
  });
  const sent = await send(client);
  assert.ok(sent.ok);
  sent.firstByte.clear();
  await sent.response.text();
  assert.deepEqual(calls, []);
});

Deno.test("a first-byte timeout set for one request is the one its error message names", async () => {
  const client = new PlanClient({
    baseUrl: "https://upstream.example",
    connectTimeoutMs: 1000,
    firstByteTimeoutMs: 60_000,
    fetch: slowUpstream(5_000, 1),
    probe: false,
  });
  const sent = await send(client, 50);
  assert.equal(sent.ok, false);
  if (sent.ok) return;
  assert.equal(sent.failure, "first_byte_timeout");
  assert.equal(sent.message, "upstream sent nothing within 50 ms");
});

/** A capped HTTP/2 upstream and a PlanClient over `connections` connections to it. */
async function cappedSetup(connections: number) {
  const dir = await Deno.makeTempDir({ prefix: "plan-h2-" });
  const certs = await makeCertificates(dir);
  const upstream = await startCappedHttp2({ maxStreams: 2, cert: certs.cert, key: certs.key });
  const clients = new HttpClientPool(connections, { caCerts: [await Deno.readTextFile(certs.ca)] });
  const plan = new PlanClient({
    baseUrl: upstream.url,
    connectTimeoutMs: 5_000,
    firstByteTimeoutMs: 30_000,
    clients,
  });
  const answered: Response[] = [];
  const send = () =>
    plan.send({
      method: "POST",
      pathAndQuery: "/v1/messages",
      headers: { "content-type": "application/json" },
      body: new TextEncoder().encode("{}"),
      signal: new AbortController().signal,
    }).then((sent) => {
      assert.ok(sent.ok, sent.ok ? "" : sent.message);
      answered.push(sent.response);
      return sent.response;
    });
  const cleanup = async () => {
    await upstream.release().catch(() => {});
    for (const r of answered) await r.body?.cancel().catch(() => {});
    clients.close();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  };
  return { upstream, send, answered, cleanup };
}

Deno.test({
  name:
    "requests spread over several connections: an HTTP/2 stream cap per connection holds none of them back",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { upstream, send, answered, cleanup } = await cappedSetup(3);
  try {
    const all = Array.from({ length: 6 }, send);
    // Every answer's headers while all six are still held open: three connections of two streams each.
    await waitFor(() => answered.length === 6, 10_000, "all six answers' headers");
    assert.equal(await upstream.open(), 6);
    await upstream.release();
    for (const r of await Promise.all(all)) assert.match(await r.text(), /message_stop/);
  } finally {
    await cleanup();
  }
});

Deno.test({
  name:
    "over one connection the runtime queues requests past the server's stream cap (why there are several)",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const { upstream, send, answered, cleanup } = await cappedSetup(1);
  try {
    const all = Array.from({ length: 4 }, send);
    await waitFor(() => answered.length === 2, 10_000, "the first two answers' headers");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(answered.length, 2, "the other two wait for a stream to end");
    await upstream.release(); // the first two end; the waiting two get their streams and are held in turn
    await waitFor(() => answered.length === 4, 10_000, "the last two answers' headers");
    await upstream.release();
    await Promise.all(all);
  } finally {
    await cleanup();
  }
});
