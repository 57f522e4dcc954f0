import assert from "node:assert/strict";
import { HttpError } from "../errors.ts";
import {
  BODY_READ_STEP_BYTES,
  chunkReader,
  FIRST_BODY_BYTES,
  FIRST_READ_BYTES,
  MAX_READ_BYTES,
  readBody,
} from "./body_reader.ts";
import { collectGarbage } from "../../tests/helpers/gc.ts";
import { within } from "../../tests/helpers/within.ts";

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

/** A server that sends one chunk, then nothing until its client leaves; `left` resolves when it does. */
function stallingServer() {
  let left!: () => void;
  const gone = new Promise<void>((r) => left = r);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    let sent = false;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(c) {
          if (!sent) c.enqueue(new TextEncoder().encode("first"));
          sent = true;
          // No more bytes until the client leaves (or the server closes, which ends the answer).
          return gone.then(() => {
            try {
              c.close();
            } catch { /* cancelled */ }
          });
        },
        cancel: () => left(),
      }, { highWaterMark: 0 }),
    );
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    gone,
    close: () => {
      left();
      return server.shutdown();
    },
  };
}

for (const kind of ["byob", "plain"] as const) {
  Deno.test(`given its signal, an abort fails a pending ${kind} read and ends the upstream, after a garbage collection too`, async () => {
    const upstream = stallingServer();
    try {
      const abort = new AbortController();
      // The Response itself is not kept: then only the reader's own link ends the body.
      const body = (await fetch(upstream.url, { signal: abort.signal })).body!;
      const reader = chunkReader(
        kind === "byob" ? body : body.pipeThrough(new TransformStream()),
        abort.signal,
      );
      assert.equal(new TextDecoder().decode((await reader.read()).value), "first");
      const pending = reader.read();
      collectGarbage();
      abort.abort(new Error("gave up"));
      await assert.rejects(within(2000, pending), /gave up/);
      await assert.rejects(within(2000, reader.read()), /gave up/);
      if (kind === "byob") await within(2000, upstream.gone);
    } finally {
      await upstream.close();
    }
  });
}

Deno.test("a reader lets go of its signal once its body ends, fails or is cancelled, so a long-lived signal holds none", async () => {
  const controller = new AbortController();
  const signal = controller.signal;
  // Counts the listeners on this one signal (instance methods only: no global stub).
  const listening = new Set<unknown>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((type: string, fn: EventListener, opts?: AddEventListenerOptions) => {
    listening.add(fn);
    add(type, fn, opts);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((type: string, fn: EventListener) => {
    listening.delete(fn);
    remove(type, fn);
  }) as typeof signal.removeEventListener;

  for (let k = 0; k < 3; k++) {
    const reader = chunkReader(byteStream([new Uint8Array([1, 2, 3])]), signal);
    while (!(await reader.read()).done) { /* to its end */ }
  }
  const cancelled = chunkReader(byteStream([new Uint8Array([1])]), signal);
  await cancelled.read();
  await cancelled.cancel();
  const broken = chunkReader(
    new ReadableStream<Uint8Array>({ type: "bytes", pull: (c) => c.error(new Error("connection reset")) }),
    signal,
  );
  await assert.rejects(broken.read(), /connection reset/);
  assert.equal(listening.size, 0);

  const open = chunkReader(byteStream([new Uint8Array([1])]), signal);
  assert.equal(listening.size, 1, "a body still being read keeps its listener");
  controller.abort(new Error("gave up"));
  await assert.rejects(open.read(), /gave up/);
});

/**
 * A POST whose body is a byte stream of `chunks` (each made when pulled, so a test's own data is not what it
 * measures), announcing `declared` bytes; `gate` holds the last chunk back.
 */
function upload(chunks: Array<() => Uint8Array>, declared: number, gate?: Promise<void>): Request {
  let i = 0;
  const body = new ReadableStream({
    type: "bytes",
    async pull(c: ReadableByteStreamController) {
      if (i === chunks.length - 1 && gate) await gate;
      if (i < chunks.length) return c.enqueue(chunks[i++]());
      c.close();
      c.byobRequest?.respond(0); // the read that sees the end, answered as the runtime does
    },
  });
  return new Request("http://proxy.test/v1/messages", {
    method: "POST",
    body,
    headers: { "content-length": String(declared) },
  });
}

Deno.test("a body's memory follows the bytes that came, not the length it announces", async () => {
  const gate = Promise.withResolvers<void>();
  const size = 32 * 1024 * 1024;
  const before = Deno.memoryUsage().external;
  // Ten uploads announcing 32 MB each, 60 bytes sent so far: 320 MB if the announced length were allocated.
  const pending = Array.from(
    { length: 10 },
    () =>
      readBody(upload([() => new Uint8Array(60), () => new Uint8Array(size - 60)], size, gate.promise), {
        maxBytes: size,
      }),
  );
  await new Promise((r) => setTimeout(r, 50));
  const held = Deno.memoryUsage().external - before;
  assert.ok(held < 40 * 1024 * 1024, `${Math.round(held / 1024 / 1024)} MB held by ten slow uploads`);
  gate.resolve();
  const bodies = await Promise.all(pending);
  assert.ok(bodies.every((b) => b.length === size), "each read whole once its bytes came");
});

Deno.test("a body larger than the first buffer is read byte for byte as the buffer grows", async () => {
  const bytes = new Uint8Array(3 * FIRST_BODY_BYTES + 12_345);
  for (let at = 0; at < bytes.length; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536));
  const chunks: Array<() => Uint8Array> = [];
  for (let at = 0; at < bytes.length; at += 50_000) {
    const from = at;
    chunks.push(() => bytes.slice(from, from + 50_000));
  }
  const body = await readBody(upload(chunks, bytes.length), { maxBytes: 32 * 1024 * 1024 });
  assert.deepEqual(body, bytes);
});

Deno.test("a body is asked of the server in reads of at most BODY_READ_STEP_BYTES, and arrives byte for byte", async () => {
  // What Deno's server keeps per connection follows the size of these reads (see BODY_READ_STEP_BYTES).
  const bytes = new Uint8Array(70 * 1024 + 7).map((_, i) => (i * 31 + (i >> 8)) & 0xff);
  const asked: number[] = [];
  let sent = 0;
  const body = new ReadableStream({
    type: "bytes",
    pull(c: ReadableByteStreamController) {
      const view = c.byobRequest!.view!;
      asked.push(view.byteLength);
      if (sent === bytes.length) {
        c.close();
        return c.byobRequest!.respond(0);
      }
      const n = Math.min(view.byteLength, bytes.length - sent);
      new Uint8Array(view.buffer, view.byteOffset, n).set(bytes.subarray(sent, sent + n));
      sent += n;
      c.byobRequest!.respond(n);
    },
  });
  const request = new Request("http://proxy.test/v1/messages", {
    method: "POST",
    body,
    headers: { "content-length": String(bytes.length) },
  });
  assert.deepEqual(await readBody(request, { maxBytes: 32 * 1024 * 1024 }), bytes);
  assert.ok(asked.length >= 5, `${asked.length} reads`);
  assert.equal(Math.max(...asked), BODY_READ_STEP_BYTES);
});

Deno.test("a body that does not arrive whole within the deadline is refused with 408, announced or chunked", async () => {
  const never = new Promise<void>(() => {});
  const chunked = new Request("http://proxy.test/v1/messages", {
    method: "POST",
    body: new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new Uint8Array(10)),
      pull: () => never,
    }),
  });
  for (const req of [upload([() => new Uint8Array(60), () => new Uint8Array(40)], 100, never), chunked]) {
    const started = performance.now();
    const err = await readBody(req, { maxBytes: 1024, timeoutMs: 100 }).catch((e) => e);
    assert.ok(err instanceof HttpError, String(err));
    assert.deepEqual([err.status, err.type], [408, "timeout_error"]);
    assert.match(err.message, /not received within 0\.1 s \(PROXY_REQUEST_BODY_TIMEOUT_MS\)/);
    assert.ok(
      performance.now() - started < 10_000,
      "refused at the deadline (the client never gives up); bound loose for a loaded machine",
    );
  }
});

Deno.test("a body that arrives within the deadline is read whole, and the deadline does not outlive it", async () => {
  const gate = Promise.withResolvers<void>();
  setTimeout(() => gate.resolve(), 30);
  const body = await readBody(
    upload([() => new Uint8Array(60), () => new Uint8Array(40)], 100, gate.promise),
    {
      maxBytes: 1024,
      timeoutMs: 200,
    },
  );
  assert.equal(body.length, 100);
  // Deno's test sanitizer fails this test if the deadline's timer were left running.
});
