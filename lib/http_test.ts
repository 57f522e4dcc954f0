import assert from "node:assert/strict";
import { Hono } from "hono";
import { HttpError } from "./errors.ts";
import { hasDotSegment, illFormedText, readJsonBody, readWithin } from "./http.ts";

Deno.test("dot segments are found plain or percent-encoded; dots inside a segment are not segments", () => {
  for (
    const path of ["/v1/x/../messages", "/v1/x/%2e%2e/messages", "/v1/%2E./m", "/v1/./m", "/admin/..", "."]
  ) {
    assert.equal(hasDotSegment(path), true, path);
  }
  for (const path of ["/v1/messages", "/v1/messages.json", "/v1/.../x", "/v1/..x/y", "/a.b/c"]) {
    assert.equal(hasDotSegment(path), false, path);
  }
});

/** A request whose body sends `first` and then nothing more, as a client trickling it does. */
function stalled(first: string): Request {
  return new Request("http://api.test/api/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new TextEncoder().encode(first)),
      pull: () => new Promise(() => {}),
    }),
  });
}

Deno.test("a JSON body that does not arrive within the deadline is answered 408, before any authentication", async () => {
  const app = new Hono();
  app.post("/api/auth/login", async (c) => c.json(await readJsonBody(c, 1024, 100)));
  app.onError((e, c) =>
    c.json({ status: (e as HttpError).status, type: (e as HttpError).type }, (e as HttpError).status as 408)
  );
  const started = performance.now();
  const res = await app.request(stalled('{"username":'));
  assert.equal(res.status, 408);
  assert.deepEqual(await res.json(), { status: 408, type: "timeout_error" });
  assert.ok(performance.now() - started < 1000, "at the deadline, not when the client gives up");
  const ok = await app.request("http://api.test/api/auth/login", { method: "POST", body: '{"a":1}' });
  assert.deepEqual(await ok.json(), { a: 1 }, "a body sent whole is read");
});

Deno.test("readWithin names the setting that sets the limit, and passes other failures on as they are", async () => {
  const never = (signal: AbortSignal) =>
    new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
  const err = await readWithin(10, "PROXY_X_MS", never).catch((e) => e);
  assert.ok(err instanceof HttpError);
  assert.match(
    err.message,
    /^request body not received within 0\.01 s \(PROXY_X_MS\); send it whole sooner$/,
  );
  await assert.rejects(readWithin(1000, "", () => Promise.reject(new Error("reset"))), /^Error: reset$/);
});

Deno.test("text that cannot be stored as it came is found by its path: lone surrogates in values and keys", () => {
  assert.equal(illFormedText({ name: "ok", tags: ["a", "b\ud800"] }), "tags[1]");
  assert.equal(illFormedText({ nested: { ["k\udfff"]: 1 } }), "nested.k\udfff");
  assert.equal(illFormedText({ name: "emoji 😀 is a pair" }), null);
  let deep: unknown = "\ud800";
  for (let i = 0; i < 200_000; i++) deep = [deep];
  assert.equal(illFormedText(deep)?.length, 200_000 * 3, "200,000 deep without a stack overflow");
});

Deno.test("a JSON body with invalid UTF-8 or a lone surrogate is a 400 naming where, not stored replaced", async () => {
  const app = new Hono();
  app.post("/api/users", async (c) => c.json(await readJsonBody(c, 1024)));
  app.onError((e, c) => c.json({ message: e.message, field: (e as HttpError).field }, 400));
  const bytes = new Uint8Array([
    ...new TextEncoder().encode('{"name":"a'),
    0xff,
    ...new TextEncoder().encode('b"}'),
  ]);
  const invalid = await app.request("http://api.test/api/users", { method: "POST", body: bytes });
  assert.match((await invalid.json()).message, /not valid UTF-8/);
  const lone = await app.request("http://api.test/api/users", {
    method: "POST",
    body: '{"name":"after\\ud800"}',
  });
  assert.deepEqual(await lone.json(), {
    message:
      "name: holds an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape alone); expected well-formed text",
    field: "name",
  });
});
