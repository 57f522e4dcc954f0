import assert from "node:assert/strict";
import { afterLastEvent } from "./sse_boundary.ts";

const at = (s: string) => afterLastEvent(new TextEncoder().encode(s));

Deno.test("a chunk that ends an event can go out whole", () => {
  assert.equal(at("event: ping\ndata: {}\n\n"), 22);
  assert.equal(at("event: ping\r\ndata: {}\r\n\r\n"), 25);
});

Deno.test("a chunk that ends mid-event is cut after its last complete event", () => {
  assert.equal(at('event: ping\ndata: {}\n\nevent: message_delta\ndata: {"ty'), 22);
  assert.equal(at("a\n\nb\r\n\r\nc"), 8);
});

Deno.test("a chunk without a complete event has nothing to send yet", () => {
  assert.equal(at(""), 0);
  assert.equal(at("\n"), 0);
  assert.equal(at("event: ping\ndata: {}\n"), 0);
  assert.equal(at('data: {"a":1}\r\n'), 0);
});

Deno.test("a stream whose lines end in CR alone is cut at its blank lines too", () => {
  assert.equal(at("event: ping\rdata: {}\r\r"), 22);
  assert.equal(at('event: ping\rdata: {}\r\revent: message_delta\rdata: {"ty'), 22);
  assert.equal(at("event: ping\rdata: {}\r"), 0);
});
