/**
 * The proxy in a process of its own, for tests/leak_test.ts: it serves the real app (PGlite, usage recording on)
 * in front of the upstream named by `LEAK_PROBE_UPSTREAM`, and reports its own JS heap on demand.
 *
 * A process of its own so that the heap it reports holds the proxy and nothing of the test runner, the load
 * generator or the fake upstream. Run with `--v8-flags=--expose-gc`: the heap is read after full collections,
 * so what it reports is what the proxy keeps, not garbage that happens not to have been collected yet.
 *
 * Protocol: one line {@link PROBE_PREFIX} + JSON {@link ProbeReady} on stdout once it listens; then every line on
 * stdin asks for one such {@link ProbeHeap} line; end of stdin shuts it down.
 */
import { freshDb } from "./db.ts";
import { makeTestApp } from "./app.ts";

/** Marks the probe's own lines on stdout, apart from anything a dependency might print there. */
export const PROBE_PREFIX = "leak_probe ";

/** The probe's first line: where the proxy listens and the access key to call it with. */
export interface ProbeReady {
  port: number;
  key: string;
}

/** The probe's answer to a heap request. */
export interface ProbeHeap {
  heapUsed: number;
}

const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function reply(message: ProbeReady | ProbeHeap): void {
  Deno.stdout.writeSync(encoder.encode(PROBE_PREFIX + JSON.stringify(message) + "\n"));
}

/** Runs the probe until its stdin closes. */
export async function runLeakProbe(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("leak_probe: run with --v8-flags=--expose-gc");
  const upstream = Deno.env.get("LEAK_PROBE_UPSTREAM");
  if (!upstream) throw new Error("leak_probe: LEAK_PROBE_UPSTREAM is not set");

  const { db, cleanup } = await freshDb("pglite");
  const t = await makeTestApp(db, { PROXY_PLAN_API_URL: upstream });
  const h = await t.auth();
  const user = (await t.call("POST", "/api/users", { email: "leak@example.com" }, h)).body;
  const issued = (await t.call("POST", `/api/users/${user.id}/access-keys`, { name: "leak" }, h)).body;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, t.app.fetch);
  reply({ port: server.addr.port, key: issued.key });

  const requests = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter());
  for await (const _ of requests) {
    // The client has every answer, but the proxy records a stream's usage just after its last byte: let that
    // land, and write the queued rows, so a reading never counts a batch that happens to be waiting.
    await sleep(200);
    await t.services.recorder.flush();
    // The test app keeps every log line for assertions; here they would read as growth.
    t.logs.length = 0;
    // WeakRef targets survive until the current task ends and finalizers run in later ones: collect in
    // several tasks, so that what a finalizer releases is gone too and the reading settles.
    for (let i = 0; i < 3; i++) {
      await sleep(0);
      gc();
    }
    reply({ heapUsed: Deno.memoryUsage().heapUsed });
  }

  await server.shutdown();
  await t.services.recorder.close(2000);
  t.services.bedrock.close();
  await cleanup();
}

/** Splits decoded text into lines (without their newline); an unterminated last line is dropped. */
export function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const p of parts) controller.enqueue(p);
    },
  });
}

if (import.meta.main) await runLeakProbe();
