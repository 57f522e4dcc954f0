import assert from "node:assert/strict";
import { createEventBus, type EventBus } from "../events.ts";
import { createKeyGuessThrottle } from "./key_guesses.ts";

/** Two replicas whose buses carry what each publishes to the other a microtask later, as LISTEN/NOTIFY does. */
function twoReplicas(now: () => number) {
  const busA = createEventBus();
  const busB = createEventBus();
  busA.attachTransport((e) => queueMicrotask(() => busB.deliverRemote(structuredClone(e))));
  busB.attachTransport((e) => queueMicrotask(() => busA.deliverRemote(structuredClone(e))));
  return {
    a: createKeyGuessThrottle({ bus: busA, limitPerMinute: 30, now }),
    b: createKeyGuessThrottle({ bus: busB, limitPerMinute: 30, now }),
    busB,
  };
}

const delivered = () => new Promise((r) => setTimeout(r, 0));

Deno.test("failures on one replica pace the address on the other, and a turn taken on one is taken on both", async () => {
  let clock = 1_000_000;
  const { a, b } = twoReplicas(() => clock);
  for (let i = 0; i < 20; i++) a.fail("198.51.100.7");
  for (let i = 0; i < 10; i++) b.fail("198.51.100.7");
  await delivered();
  assert.equal(b.pace("198.51.100.7"), 0, "at the limit, one lookup goes ahead at the limit's pace");
  assert.equal(b.pace("198.51.100.7"), 2, "the next waits its turn (60 s / 30)");
  await delivered();
  assert.equal(a.pace("198.51.100.7"), 2, "B's turn was A's as well");
  assert.equal(a.pace("198.51.100.8"), 0, "other addresses are unaffected");
  clock += 2_000;
  assert.equal(a.pace("198.51.100.7"), 0, "the next turn comes on either replica");
  clock += 61_000;
  await delivered();
  assert.equal(b.pace("198.51.100.7"), 0);
  assert.equal(b.pace("198.51.100.7"), 0, "a minute without failures lifts the limit everywhere");
});

Deno.test("an IPv6 /64 is one address on every replica", async () => {
  const { a, b } = twoReplicas(() => 5_000);
  for (let i = 0; i < 30; i++) a.fail(`2001:db8:1:2::${i.toString(16)}`);
  await delivered();
  assert.equal(b.pace("2001:db8:1:2:ffff::1"), 0);
  assert.equal(b.pace("2001:db8:1:2:abcd::9"), 2);
  assert.equal(b.pace("2001:db8:1:3::1"), 0, "the next /64 is another address");
  assert.equal(b.pace("2001:db8:1:3::1"), 0);
});

Deno.test("a replica counts its own failures once, not again as they pass through its own bus", () => {
  const bus = createEventBus();
  const seen: unknown[] = [];
  bus.attachTransport((e) => seen.push(e));
  const guesses = createKeyGuessThrottle({ bus, limitPerMinute: 30, now: () => 0 });
  for (let i = 0; i < 15; i++) guesses.fail("203.0.113.4");
  assert.equal(seen.length, 15, "each failure is announced");
  assert.deepEqual(seen[0], { type: "key_guess", outcome: "failed", subject: "203.0.113.4" });
  assert.equal(guesses.pace("203.0.113.4"), 0);
  assert.equal(guesses.pace("203.0.113.4"), 0, "15 failures are not 30");
  assert.equal(seen.length, 15, "a lookup under the limit announces no turn");
});

Deno.test("malformed events from the channel are ignored; a turn taken elsewhere counts once the address is over", async () => {
  const bus: EventBus = createEventBus();
  const guesses = createKeyGuessThrottle({ bus, limitPerMinute: 1, now: () => 0 });
  const junk = [
    { type: "key_guess", outcome: "failed", subject: 42 },
    { type: "key_guess", outcome: "failed", subject: "" },
    { type: "key_guess", outcome: "failed", subject: "x".repeat(65) },
    { type: "key_guess", outcome: "failed" },
    { type: "key_guess", outcome: "forgotten", subject: "203.0.113.5" },
  ];
  for (const e of junk) bus.deliverRemote(e as never);
  await delivered();
  assert.equal(guesses.pace("203.0.113.5"), 0);
  assert.equal(guesses.pace("203.0.113.5"), 0, "nothing was counted against the address");
  // A turn taken elsewhere slows nothing while the address is under the limit here (its failures on the way)…
  bus.deliverRemote({ type: "key_guess", outcome: "paced", subject: "203.0.113.5" });
  assert.equal(guesses.pace("203.0.113.5"), 0);
  // …and counts once they arrive (limit 1: one turn a minute, and that one was taken).
  bus.deliverRemote({ type: "key_guess", outcome: "failed", subject: "203.0.113.5" });
  assert.equal(guesses.pace("203.0.113.5"), 60);
});

Deno.test("a flood spread over two replicas gets the limit's pace in all, with notifications arriving late", () => {
  let clock = 1_000_000;
  // LISTEN/NOTIFY carries each event 5 ms later; both replicas get a request from the address every millisecond.
  const inFlight: Array<{ at: number; to: EventBus; event: Parameters<EventBus["publish"]>[0] }> = [];
  const busA = createEventBus();
  const busB = createEventBus();
  busA.attachTransport((event) => inFlight.push({ at: clock + 5, to: busB, event: structuredClone(event) }));
  busB.attachTransport((event) => inFlight.push({ at: clock + 5, to: busA, event: structuredClone(event) }));
  const deliver = () => {
    for (const m of inFlight.filter((m) => m.at <= clock)) {
      inFlight.splice(inFlight.indexOf(m), 1);
      m.to.deliverRemote(m.event);
    }
  };
  const a = createKeyGuessThrottle({ bus: busA, limitPerMinute: 30, now: () => clock });
  const b = createKeyGuessThrottle({ bus: busB, limitPerMinute: 30, now: () => clock });
  for (let i = 0; i < 30; i++) a.fail("198.51.100.9");
  clock += 10;
  deliver();
  let lookups = 0;
  for (const end = clock + 60_000; clock < end; clock++) {
    for (const replica of [a, b]) {
      deliver();
      if (replica.pace("198.51.100.9") === 0) {
        lookups++;
        replica.fail("198.51.100.9");
      }
    }
  }
  // One turn every 2 s over both (30 a minute), give or take the turns two replicas take within one delay.
  assert.ok(lookups <= 35, `lookups let through in a minute: ${lookups}`);
  assert.ok(lookups >= 25, `and the address is slowed, not shut out: ${lookups}`);
});
