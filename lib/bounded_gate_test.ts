import assert from "node:assert/strict";
import { BoundedGate } from "./bounded_gate.ts";

Deno.test("a gate admits up to its concurrency, queues up to its bound, and refuses the rest at once", async () => {
  const gate = new BoundedGate({ concurrency: 2, queue: 1 });
  const a = await gate.enter();
  const b = await gate.enter();
  assert.ok(a && b);
  let queuedGot: (() => void) | null = null;
  const queued = gate.enter().then((r) => (queuedGot = r));
  assert.equal(await gate.enter(), null, "the waiting line is full");
  assert.deepEqual(gate.load, { active: 2, waiting: 1 });
  await Promise.resolve();
  assert.equal(queuedGot, null, "still waiting while both places are held");
  a();
  await queued;
  assert.ok(queuedGot, "the waiter got the freed place");
  assert.deepEqual(gate.load, { active: 2, waiting: 0 });
});

Deno.test("a freed place goes to the first waiter, not to a newcomer", async () => {
  const gate = new BoundedGate({ concurrency: 1, queue: 2 });
  const first = (await gate.enter())!;
  const order: string[] = [];
  const wait = (name: string) =>
    gate.enter().then((r) => {
      order.push(name);
      return r!;
    });
  const w1 = wait("w1");
  const w2 = wait("w2");
  first();
  const newcomer = wait("newcomer");
  (await w1)();
  (await w2)();
  (await newcomer)();
  assert.deepEqual(order, ["w1", "w2", "newcomer"]);
  assert.deepEqual(gate.load, { active: 0, waiting: 0 });
});

Deno.test("releasing twice frees one place only", async () => {
  const gate = new BoundedGate({ concurrency: 1, queue: 0 });
  const r = (await gate.enter())!;
  r();
  r();
  assert.deepEqual(gate.load, { active: 0, waiting: 0 });
  assert.ok(await gate.enter());
  assert.equal(await gate.enter(), null, "still one place");
});

Deno.test("a gate refuses a concurrency below 1", () => {
  assert.throws(() => new BoundedGate({ concurrency: 0, queue: 1 }), /concurrency ≥ 1/);
});
