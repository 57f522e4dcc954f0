import assert from "node:assert/strict";
import { BufferPool } from "./buffer_pool.ts";

const MiB = 1024 * 1024;

function pool(maxBytes = 8 * MiB, maxBufferBytes = 2 * MiB): BufferPool {
  return new BufferPool({ maxBytes, maxBufferBytes });
}

Deno.test("acquire hands out power-of-two buffers of at least 16 KiB that fit the request", () => {
  const p = pool();
  assert.equal(p.acquire(0).byteLength, 16 * 1024);
  assert.equal(p.acquire(16 * 1024).byteLength, 16 * 1024);
  assert.equal(p.acquire(16 * 1024 + 1).byteLength, 32 * 1024);
  assert.equal(p.acquire(70_000).byteLength, 128 * 1024);
  assert.equal(p.acquire(3 * MiB).byteLength, 3 * MiB, "above maxBufferBytes: exactly the size asked");
});

Deno.test("a released buffer is reused, and every view of it reads as empty from then on", () => {
  const p = pool();
  const buffer = p.acquire(70_000);
  const view = new Uint8Array(buffer, 0, 70_000);
  view.fill(0x41);
  const alsoView = view.subarray(10, 20);
  p.adopt(buffer);
  p.release(view);
  assert.equal(view.length, 0, "the released view is detached");
  assert.equal(alsoView.length, 0, "so is every other view of that buffer");
  assert.equal(p.pooledBytes, 128 * 1024);
  const again = p.acquire(100_000);
  assert.equal(again.byteLength, 128 * 1024);
  assert.equal(new Uint8Array(again)[0], 0x41, "the same memory came back");
  assert.equal(p.pooledBytes, 0);
});

Deno.test("buffers the pool did not hand out, or that were not adopted, are left alone", () => {
  const p = pool();
  const foreign = new Uint8Array(64 * 1024).fill(1);
  p.release(foreign);
  assert.equal(foreign.length, 64 * 1024);
  const notAdopted = new Uint8Array(p.acquire(1000));
  p.release(notAdopted);
  assert.equal(notAdopted.length, 16 * 1024);
  assert.equal(p.pooledBytes, 0);
});

Deno.test("a buffer is taken back once; a second release of a stale view does nothing", () => {
  const p = pool();
  const buffer = p.acquire(1000);
  p.adopt(buffer);
  const view = new Uint8Array(buffer);
  p.release(view);
  p.release(view);
  assert.equal(p.pooledBytes, 16 * 1024);
});

Deno.test("the pool keeps at most maxBytes; the rest is detached and its memory freed at once", () => {
  const p = pool(256 * 1024);
  const views = Array.from({ length: 3 }, () => {
    const b = p.acquire(128 * 1024);
    p.adopt(b);
    return new Uint8Array(b);
  });
  p.release(views[0]);
  p.release(views[1]);
  const before = Deno.memoryUsage().external;
  p.release(views[2]); // over maxBytes: not kept
  const freed = before - Deno.memoryUsage().external;
  assert.equal(p.pooledBytes, 256 * 1024);
  assert.ok(views.every((v) => v.length === 0), "all three detached");
  assert.ok(freed >= 128 * 1024, `without waiting for a collection (${freed} bytes freed)`);
});

Deno.test("buffers above maxBufferBytes are never kept", () => {
  const p = pool(64 * MiB, 1 * MiB);
  const big = p.acquire(2 * MiB);
  p.adopt(big);
  const view = new Uint8Array(big);
  p.release(view);
  assert.equal(p.pooledBytes, 0);
  assert.equal(view.length, 2 * MiB, "not ours to detach");
});
