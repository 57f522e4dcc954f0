/**
 * An HTTPS server speaking HTTP/2 that allows few streams per connection (`SETTINGS_MAX_CONCURRENT_STREAMS`),
 * as API edges do (100 to 256), and holds every answer open after its headers until released: a stand-in for
 * the Anthropic API with many long streams in flight.
 *
 * It runs in a process of its own. The runtime's `node:http2` server has aborted a whole test run at teardown (an
 * assertion in nghttp2's GOAWAY handling: `find_stream_on_goaway_func`, once in CI among thousands of runs); in
 * a child, such a crash ends only the fake, after the test has its answers. The test talks to it over stdio.
 */
import http2 from "node:http2";

/** A running capped server. */
export interface CappedHttp2 {
  url: string;
  /** How many streams got their headers and are still held open. */
  open(): Promise<number>;
  /** Ends every held stream with a final event; resolves once they are ended. */
  release(): Promise<void>;
  close(): Promise<void>;
}

/** Starts the server, in a child process, with the given certificate files (see `bench/certificates.ts`). */
export async function startCappedHttp2(
  o: { maxStreams: number; cert: string; key: string },
): Promise<CappedHttp2> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", new URL(import.meta.url).pathname, JSON.stringify(o)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    for (;;) {
      const at = buffered.indexOf("\n");
      if (at >= 0) {
        const line = buffered.slice(0, at);
        buffered = buffered.slice(at + 1);
        return line;
      }
      const { done, value } = await lines.read();
      if (done) throw new Error("the capped HTTP/2 fake ended");
      buffered += value;
    }
  };
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  // One question at a time: answers come back in order.
  let turn: Promise<unknown> = Promise.resolve();
  const ask = (command: string): Promise<string> => {
    const answer = turn.then(async () => {
      await writer.write(encoder.encode(`${command}\n`));
      return await nextLine();
    });
    turn = answer.catch(() => {});
    return answer;
  };
  const url = (await nextLine()).replace(/^url /, "");
  return {
    url,
    open: async () => Number((await ask("open")).replace(/^open /, "")),
    release: async () => void await ask("release"),
    close: async () => {
      await ask("close").catch(() => {});
      await writer.close().catch(() => {});
      // Its exit status is not the test's concern (see the module documentation); a hang is bounded.
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await child.status;
      clearTimeout(timer);
      await lines.cancel().catch(() => {});
    },
  };
}

/** The server itself, in this process; what the child runs. */
async function serve(o: { maxStreams: number; cert: string; key: string }) {
  const held = new Set<http2.ServerHttp2Stream>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer({
    cert: await Deno.readTextFile(o.cert),
    key: await Deno.readTextFile(o.key),
    settings: { maxConcurrentStreams: o.maxStreams },
  });
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", (stream) => {
    stream.respond({ ":status": 200, "content-type": "text/event-stream" });
    stream.write("event: ping\ndata: {}\n\n");
    held.add(stream);
    stream.on("close", () => held.delete(stream));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as { port: number };
  return {
    url: `https://127.0.0.1:${port}`,
    open: () => held.size,
    release() {
      for (const s of held) {
        held.delete(s);
        s.end("event: message_stop\ndata: {}\n\n");
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of held) s.close();
        // server.close waits for every connection to end, and a client may keep one open: end them here.
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}

if (import.meta.main) {
  const server = await serve(JSON.parse(Deno.args[0]));
  const out = (line: string) => Deno.stdout.write(new TextEncoder().encode(`${line}\n`));
  await out(`url ${server.url}`);
  const commands = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let pending = "";
  for await (const chunk of commands) {
    pending += chunk;
    let at: number;
    while ((at = pending.indexOf("\n")) >= 0) {
      const command = pending.slice(0, at);
      pending = pending.slice(at + 1);
      if (command === "open") await out(`open ${server.open()}`);
      else if (command === "release") {
        server.release();
        await out("released");
      } else if (command === "close") {
        await server.close();
        await out("closed");
        Deno.exit(0);
      }
    }
  }
  await server.close();
}
