/**
 * An HTTPS server speaking HTTP/2 that allows few streams per connection (`SETTINGS_MAX_CONCURRENT_STREAMS`),
 * as API edges do (100 to 256), and holds every answer open after its headers until released: a stand-in for
 * the Anthropic API with many long streams in flight.
 */
import http2 from "node:http2";

/** A running capped server. */
export interface CappedHttp2 {
  url: string;
  /** Streams that got their headers and are still held open. */
  readonly open: number;
  /** Ends every held stream with a final event. */
  release(): void;
  close(): Promise<void>;
}

/** Starts the server with the given certificate files (see `bench/certificates.ts`). */
export async function startCappedHttp2(
  o: { maxStreams: number; cert: string; key: string },
): Promise<CappedHttp2> {
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
    get open() {
      return held.size;
    },
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
