import assert from "node:assert/strict";
import { idleWatch } from "./idle_watch.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("an idle watch fires once the stream is silent for its time, with a TimeoutError naming who", async () => {
  const fired: Error[] = [];
  const w = idleWatch(60, (e) => fired.push(e), "Anthropic API");
  await sleep(150);
  assert.equal(fired.length, 1);
  assert.equal(fired[0].name, "TimeoutError");
  assert.match(fired[0].message, /^Anthropic API sent nothing for 60 ms$/);
  assert.equal(w.error, fired[0]);
});

Deno.test("touches keep an idle watch from firing; stop ends it", async () => {
  const fired: Error[] = [];
  const w = idleWatch(80, (e) => fired.push(e));
  for (let i = 0; i < 6; i++) {
    await sleep(30);
    w.touch();
  }
  assert.equal(fired.length, 0, "touched every 30 ms");
  w.stop();
  await sleep(150);
  assert.equal(fired.length, 0, "stopped");
  assert.equal(w.error, null);
});

Deno.test("an idle watch without a time never fires", async () => {
  const fired: Error[] = [];
  idleWatch(undefined, (e) => fired.push(e));
  await sleep(50);
  assert.equal(fired.length, 0);
});

Deno.test("a paused idle watch does not count the pause; resumed, it counts from then", async () => {
  const fired: Error[] = [];
  const w = idleWatch(60, (e) => fired.push(e));
  w.pause(); // the client is not reading: nothing is asked of the upstream
  await sleep(200);
  assert.equal(fired.length, 0, "paused for three times its time");
  w.resume();
  await sleep(30);
  assert.equal(fired.length, 0, "resumed 30 ms ago");
  await sleep(120);
  assert.equal(fired.length, 1, "silent for its time after resuming");
  w.stop();
});
