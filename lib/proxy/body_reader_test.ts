import assert from "node:assert/strict";
import { chunkReader, FIRST_READ_BYTES, MAX_READ_BYTES } from "./body_reader.ts";

/** A byte stream (as fetch bodies are) that hands out `chunks` one per pull. */
function byteStream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  const queue = [...chunks];
  return new ReadableStream({
    type: "bytes",
    pull(c) {
      const next = queue.shift();
      // enqueue transfers the buffer: hand over a copy so the caller keeps its bytes to compare.
      if (next) return c.enqueue(next.slice());
      c.close();
      // A BYOB read waiting when the stream closes is answered by responding with no bytes (as the runtime does).
      c.byobRequest?.respond(0);
    },
  });
}

async function readAll(body: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const reader = chunkReader(body);
  const out: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return out;
    out.push(value);
  }
}

Deno.test("a large body is read byte for byte, through a buffer that doubles while reads fill it", async () => {
  const body = crypto.getRandomValues(new Uint8Array(60_000));
  const big = new Uint8Array(300_000);
  for (let i = 0; i < 5; i++) big.set(body, i * 60_000);
  const chunks = await readAll(byteStream([big]));
  const joined = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) joined.set(c, (at += c.length) - c.length);
  assert.equal(joined.length, big.length);
  assert.ok(joined.every((b, i) => b === big[i]), "the bytes arrive unchanged");
  assert.deepEqual(
    chunks.slice(0, 6).map((c) => c.length),
    [FIRST_READ_BYTES, 8192, 16384, 32768, MAX_READ_BYTES, MAX_READ_BYTES],
  );
});

Deno.test("small events keep the small buffer, and chunks handed out stay intact after later reads", async () => {
  const events = Array.from(
    { length: 50 },
    (_, i) => new TextEncoder().encode(`event: ping\ndata: ${i}\n\n`),
  );
  const chunks = await readAll(byteStream(events));
  assert.equal(chunks.length, 50);
  chunks.forEach((c, i) => assert.equal(new TextDecoder().decode(c), `event: ping\ndata: ${i}\n\n`));
});

Deno.test("a stream that is not a byte stream is read with its own reader", async () => {
  const plain = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new Uint8Array([1, 2, 3]));
      c.close();
    },
  });
  assert.deepEqual(await readAll(plain), [new Uint8Array([1, 2, 3])]);
});
