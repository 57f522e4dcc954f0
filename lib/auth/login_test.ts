import assert from "node:assert/strict";
import { createLoginService } from "./login.ts";
import { hashPassword } from "./password.ts";
import { createSessions } from "./session.ts";
import { HttpError } from "../errors.ts";
import { createEventBus } from "../events.ts";

const SECRET = "test-jwt-secret-0123456789abcdef0123456789";

async function service() {
  return createLoginService({
    username: "admin",
    // Few iterations: the test is about counting, not hashing cost.
    passwordHash: await hashPassword("right", 1000),
    sessions: createSessions({ secret: SECRET, ttlSeconds: 60 }),
  });
}

/** The status each attempt ended with: 200 for a session, else the HttpError's status. */
async function outcome(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    if (e instanceof HttpError) return e.status;
    throw e;
  }
}

Deno.test("sign-ins sent in parallel are counted before the password check: only the limit gets through", async () => {
  const login = await service();
  const attempts = Array.from(
    { length: 20 },
    (_, i) => login.attempt("admin", i === 19 ? "right" : "bad", "10.0.0.1"),
  );
  const statuses = await Promise.all(attempts.map(outcome));
  const checked = statuses.filter((s) => s !== 429);
  assert.equal(checked.length, 5, `statuses: ${statuses.join(",")}`);
  assert.ok(checked.every((s) => s === 401));
  assert.equal(statuses[19], 429, "the right password, sent after the limit, is refused too");
});

Deno.test("a successful sign-in takes back its own tentative failure", async () => {
  const login = await service();
  for (let i = 0; i < 4; i++) assert.equal(await outcome(login.attempt("admin", "bad", "10.0.0.2")), 401);
  assert.equal(await outcome(login.attempt("admin", "right", "10.0.0.2")), 200);
  // The address starts afresh: four more failures still leave it unthrottled.
  for (let i = 0; i < 4; i++) assert.equal(await outcome(login.attempt("admin", "bad", "10.0.0.2")), 401);
  assert.equal(login.retryAfter("admin", "10.0.0.2"), 0);
});

Deno.test("IPv6 guesses from one /64 share one limit", async () => {
  const login = await service();
  for (let i = 1; i <= 5; i++) {
    assert.equal(await outcome(login.attempt("someone", "bad", `2001:db8:1:2::${i}`)), 401);
  }
  assert.equal(await outcome(login.attempt("someone", "bad", "2001:db8:1:2::99")), 429);
  assert.equal(
    await outcome(login.attempt("someone", "bad", "2001:db8:1:3::1")),
    401,
    "another /64 is another client",
  );
});

Deno.test("password checks run one at a time; a guess beyond the waiting line gets 503 and is not counted", async () => {
  let running = 0;
  let most = 0;
  const held: (() => void)[] = [];
  const login = createLoginService({
    username: "admin",
    passwordHash: "unused",
    sessions: createSessions({ secret: SECRET, ttlSeconds: 60 }),
    maxConcurrentChecks: 1,
    maxQueuedChecks: 2,
    verify: async () => {
      most = Math.max(most, ++running);
      await new Promise<void>((resolve) => held.push(resolve));
      running--;
      return false;
    },
  });
  // Guesses from three addresses: one is checked, two wait.
  const first = ["10.1.0.1", "10.1.0.2", "10.1.0.3"].map((a) => outcome(login.attempt("admin", "bad", a)));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(held.length, 1, "one check at a time");
  const refused = login.attempt("admin", "bad", "10.1.0.9");
  await assert.rejects(refused, (e: HttpError) => {
    assert.equal(e.status, 503);
    assert.equal(e.type, "overloaded_error");
    assert.equal(e.headers["retry-after"], "1");
    return true;
  });
  while (held.length > 0 || running > 0) {
    held.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  }
  assert.deepEqual(await Promise.all(first), [401, 401, 401]);
  assert.equal(most, 1);
  // The refused address was never checked, so it still has its five tries.
  const tries: number[] = [];
  for (let i = 0; i < 5; i++) {
    const attempt = outcome(login.attempt("someone", "bad", "10.1.0.9"));
    await new Promise((r) => setTimeout(r, 0));
    held.shift()?.();
    tries.push(await attempt);
  }
  assert.deepEqual(tries, [401, 401, 401, 401, 401]);
  assert.equal(await outcome(login.attempt("someone", "bad", "10.1.0.9")), 429);
});

/**
 * Two replicas' login services over buses that carry what each publishes to the other (a microtask later), as
 * LISTEN/NOTIFY does.
 */
async function twoReplicas(extra: Partial<Parameters<typeof createLoginService>[0]> = {}) {
  const busA = createEventBus();
  const busB = createEventBus();
  busA.attachTransport((e) => queueMicrotask(() => busB.deliverRemote(structuredClone(e))));
  busB.attachTransport((e) => queueMicrotask(() => busA.deliverRemote(structuredClone(e))));
  const passwordHash = await hashPassword("right", 1000);
  const replica = (bus: ReturnType<typeof createEventBus>) =>
    createLoginService({
      username: "admin",
      passwordHash,
      sessions: createSessions({ secret: SECRET, ttlSeconds: 60 }),
      bus,
      ...extra,
    });
  return { a: replica(busA), b: replica(busB), busB };
}

Deno.test("replicas share the limits: failures on one throttle the others, a success clears them everywhere", async () => {
  const { a, b, busB } = await twoReplicas();
  for (let i = 0; i < 4; i++) assert.equal(await outcome(a.attempt("admin", "bad", "10.0.0.10")), 401);
  assert.equal(await outcome(a.attempt("admin", "right", "10.0.0.10")), 200);
  // Cleared on B too: four more failures there leave the address unthrottled.
  for (let i = 0; i < 4; i++) assert.equal(await outcome(b.attempt("admin", "bad", "10.0.0.10")), 401);
  assert.equal(b.retryAfter("admin", "10.0.0.10"), 0);

  for (let i = 0; i < 3; i++) assert.equal(await outcome(a.attempt("root", "bad", "10.0.0.9")), 401);
  for (let i = 0; i < 2; i++) assert.equal(await outcome(b.attempt("root", "bad", "10.0.0.9")), 401);
  assert.ok(a.retryAfter("root", "10.0.0.9") > 0, "five failures over two replicas reach the limit on each");
  assert.ok(b.retryAfter("root", "10.0.0.9") > 0);
  assert.equal(await outcome(b.attempt("admin", "right", "10.0.0.9")), 429, "the right password waits too");

  // What arrives from elsewhere is checked: a malformed event counts nothing.
  busB.deliverRemote({ type: "sign_in_failed", subjects: ["rm -rf", 42 as unknown as string] });
  busB.deliverRemote({ type: "sign_in_failed", subjects: "ip:10.0.0.11" as unknown as string[] });
  assert.equal(b.retryAfter("admin", "10.0.0.11"), 0);
});

Deno.test("a burst spread over replicas gets the limit in all, not per replica: attempts are shared before the check", async () => {
  // A password check as slow as production's, so every attempt of the burst is in flight at once.
  const slowVerify = () => new Promise<boolean>((r) => setTimeout(() => r(false), 30));
  const { a, b } = await twoReplicas({ verify: slowVerify, maxQueuedChecks: 100 });
  const attempts: Promise<unknown>[] = [];
  for (let i = 0; i < 10; i++) {
    // Interleaved, each replica's attempt after the other's has had a turn to be heard.
    attempts.push(a.attempt("admin", "bad", "10.0.0.20"));
    await Promise.resolve();
    await Promise.resolve();
    attempts.push(b.attempt("admin", "bad", "10.0.0.20"));
    await Promise.resolve();
    await Promise.resolve();
  }
  const statuses = await Promise.all(attempts.map(outcome));
  assert.equal(statuses.filter((s) => s === 401).length, 5, `statuses: ${statuses.join(",")}`);
});
