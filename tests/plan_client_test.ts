/**
 * The plan upstream client's connect probe: it may abort a request still waiting for its headers, never one that
 * has them, and it is off when fetch goes through an egress proxy.
 */
import assert from "node:assert/strict";
import { PlanClient } from "../lib/proxy/plan_client.ts";

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
