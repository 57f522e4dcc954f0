/**
 * The proxy end to end: a real server in front of the fake Anthropic API, driven by the real `@anthropic-ai/sdk`
 * and by raw fetch, on both database backends.
 */
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { dbTest } from "./helpers/db.ts";
import { postMessages, startProxy, waitFor } from "./helpers/proxy.ts";
import { sql } from "../lib/db/sql.ts";
import { createHash } from "node:crypto";
import { within } from "./helpers/within.ts";
import type { Db } from "../lib/db/db.ts";

const MESSAGE = {
  model: "claude-sonnet-4-5-20250929",
  max_tokens: 256,
  messages: [{ role: "user" as const, content: "Hello" }],
};

async function usageRows(db: Db) {
  return await db.query<Record<string, unknown>>(sql`SELECT * FROM token_usages ORDER BY created_at, id`);
}

/** The usage rows, once `count` requests have been queued for recording and the recorder has flushed. */
async function recordedRows(p: Awaited<ReturnType<typeof startProxy>>, db: Db, count: number) {
  await waitFor(() => p.t.services.recorder.stats().queued === count, 3000, `${count} usage row(s) queued`);
  await p.t.services.recorder.flush();
  return await usageRows(db);
}

/** Waits until the upstream saw its call aborted; the one usage row must then record the client that left. */
async function clientLeftRow(
  p: Awaited<ReturnType<typeof startProxy>>,
  db: Db,
  withinMs: number,
  what: string,
) {
  let upstreamAborted = false;
  p.upstream.requests[0].aborted.then(() => (upstreamAborted = true));
  await waitFor(() => upstreamAborted, withinMs, what);
  const [row] = await recordedRows(p, db, 1);
  assert.equal(row.status_code, 499);
  assert.equal(row.error_type, "client_closed_request");
  return row;
}

dbTest("the Anthropic SDK streams and not through the proxy, bearer and x-api-key styles", async (db) => {
  const p = await startProxy(db);
  try {
    const bearer = new Anthropic({ baseURL: p.baseUrl, apiKey: "sk-ant-api03-client-key" });
    const reply = await bearer.messages.create(MESSAGE);
    assert.equal(reply.content[0].type, "text");
    assert.equal(reply.usage.input_tokens, 1200);

    const xApiKey = new Anthropic({
      baseURL: p.baseUrl,
      apiKey: null,
      authToken: null,
      defaultHeaders: { "x-api-key": "sk-ant-api03-other-key" },
    });
    const stream = xApiKey.messages.stream(MESSAGE);
    const events: string[] = [];
    for await (const e of stream) events.push(e.type);
    const final = await stream.finalMessage();
    assert.deepEqual(events.filter((e, i) => events.indexOf(e) === i), [
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    assert.equal(final.usage.output_tokens, 85);
    assert.equal(final.usage.cache_read_input_tokens, 30000);

    const [first, second] = p.upstream.requests;
    assert.equal(first.headers.get("authorization"), "Bearer sk-ant-api03-client-key");
    assert.equal(first.headers.get("x-api-key"), null);
    assert.equal(second.headers.get("x-api-key"), "sk-ant-api03-other-key");
    assert.equal(second.headers.get("authorization"), null);
    assert.equal(
      first.headers.get("anthropic-version"),
      "2026-10-21",
      "the client's API version passes unchanged",
    );
    assert.equal(first.headers.get("accept-encoding"), "identity");
    assert.equal(first.pathAndQuery, "/v1/messages");
  } finally {
    await p.close();
  }
});

dbTest("a 1 MB body arrives byte-identical, with ?beta=true and every beta header", async (db) => {
  const p = await startProxy(db);
  try {
    // Odd spacing and key order and a unicode escape: any re-serialisation would change the bytes.
    const filler = "x".repeat(1024 * 1024);
    const raw = `{ "stream":false,"model" : "claude-sonnet-4-5-20250929", "max_tokens":16,` +
      `"messages":[{"role":"user","content":"\\u00e9 ${filler}"}], "metadata": {"user_id":"u"}, "unknown_field": [1,2.50] }`;
    const res = await fetch(`${p.baseUrl}/v1/messages?beta=true`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-api-key": "sk-ant-test",
        "anthropic-version": "2023-06-01",
        "anthropic-beta":
          "claude-code-20250219,interleaved-thinking-2025-05-14, fine-grained-tool-streaming-2025-05-14",
        "x-app": "cli",
        "user-agent": "claude-cli/2.0.0 (external, cli)",
      },
      body: raw,
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    const got = p.upstream.requests[0];
    assert.equal(got.pathAndQuery, "/v1/messages?beta=true");
    assert.deepEqual(got.body, new TextEncoder().encode(raw));
    assert.equal(
      got.headers.get("anthropic-beta"),
      "claude-code-20250219,interleaved-thinking-2025-05-14, fine-grained-tool-streaming-2025-05-14",
    );
    assert.equal(got.headers.get("anthropic-version"), "2023-06-01");
    assert.equal(got.headers.get("x-app"), "cli");
    assert.equal(got.headers.get("user-agent"), "claude-cli/2.0.0 (external, cli)");
    assert.equal(
      got.headers.get("host"),
      new URL(p.upstream.url).host,
      "host is the upstream's, not the proxy's",
    );
  } finally {
    await p.close();
  }
});

dbTest(
  "upstream errors and their headers reach the client unchanged when the key has no Bedrock credentials",
  async (db) => {
    const p = await startProxy(db);
    try {
      const cases: Array<{ status: number; type: string; headers: Record<string, string> }> = [
        { status: 400, type: "invalid_request_error", headers: {} },
        { status: 401, type: "authentication_error", headers: {} },
        {
          status: 429,
          type: "rate_limit_error",
          headers: { "retry-after": "17", "anthropic-ratelimit-requests-remaining": "0" },
        },
        { status: 500, type: "api_error", headers: {} },
        { status: 529, type: "overloaded_error", headers: { "x-should-retry": "true" } },
      ];
      for (const c of cases) {
        p.upstream.script({
          kind: "error",
          status: c.status,
          type: c.type,
          message: `fake ${c.type}`,
          headers: c.headers,
        });
        const res = await fetch(`${p.baseUrl}/v1/messages`, {
          method: "POST",
          headers: { "x-api-key": "sk-ant-test", "content-type": "application/json" },
          body: JSON.stringify(MESSAGE),
        });
        assert.equal(res.status, c.status);
        assert.deepEqual(await res.json(), {
          type: "error",
          error: { type: c.type, message: `fake ${c.type}` },
        });
        for (const [k, v] of Object.entries(c.headers)) assert.equal(res.headers.get(k), v, k);
        assert.match(res.headers.get("request-id") ?? "", /^req_fake_/);
        assert.equal(res.headers.get("x-proxy-provider"), "anthropic");
        assert.ok(res.headers.get("x-proxy-request-id"));
      }
      const rows = await recordedRows(p, db, cases.length);
      assert.deepEqual(rows.map((r) => [r.status_code, r.error_type]), cases.map((c) => [c.status, c.type]));
    } finally {
      await p.close();
    }
  },
);

dbTest("a gzip upstream body reaches the client decoded, without a stale content-encoding", async (db) => {
  const p = await startProxy(db);
  try {
    p.upstream.script({ kind: "gzip" });
    const res = await postMessages(p.baseUrl, MESSAGE);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-encoding"), null);
    const body = await res.json();
    assert.equal(body.usage.output_tokens, 85);
  } finally {
    await p.close();
  }
});

dbTest(
  "a stream in an encoding the proxy cannot decode goes through byte for byte, nothing added",
  async (db) => {
    const p = await startProxy(db);
    try {
      // Compressed bytes have no event boundaries the proxy could find: it must neither hold them back waiting
      // for one nor append an error event to them.
      const bytes = crypto.getRandomValues(new Uint8Array(4096)).map((b) => (b === 10 ? 11 : b));
      p.upstream.script({ kind: "opaque_stream", encoding: "x-opaque", bytes });
      const res = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(res.headers.get("content-encoding"), "x-opaque");
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), bytes);

      // gzip the proxy can decode: the client gets the events, and their usage is read.
      const sse = [
        `event: message_start\ndata: {"type":"message_start","message":{"id":"msg_gz","model":"claude-sonnet-4-5",` +
        `"usage":{"input_tokens":7,"output_tokens":1}}}\n\n`,
        `event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},` +
        `"usage":{"output_tokens":3}}\n\n`,
        `event: message_stop\ndata: {"type":"message_stop"}\n\n`,
      ].join("");
      const gz = new Uint8Array(
        await new Response(new Blob([sse]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
      );
      p.upstream.script({ kind: "opaque_stream", encoding: "gzip", bytes: gz });
      const decoded = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
      assert.equal(decoded.headers.get("content-encoding"), null);
      assert.equal(await decoded.text(), sse);
      const row = (await recordedRows(p, db, 2)).find((r) => r.message_id === "msg_gz")!;
      assert.equal(row.input_tokens, 7);
      assert.equal(row.output_tokens, 3);
      assert.equal(row.error_type, null);
    } finally {
      await p.close();
    }
  },
);

dbTest("a client that disconnects mid-stream cancels the upstream call and is recorded", async (db) => {
  const p = await startProxy(db, { upstream: { eventDelayMs: 50, deltas: 100 } });
  try {
    const controller = new AbortController();
    const res = await postMessages(p.baseUrl, { ...MESSAGE, stream: true }, { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => {});
    const row = await clientLeftRow(p, db, 3000, "upstream abort");
    assert.equal(row.input_tokens, 1200, "usage seen before the disconnect is kept");
  } finally {
    await p.close();
  }
});

dbTest(
  "a stream cut short records output estimated from the text relayed, marked as such; a whole one, the count",
  async (db) => {
    const p = await startProxy(db, { upstream: { eventDelayMs: 20, deltas: 100 } });
    try {
      const controller = new AbortController();
      const res = await postMessages(p.baseUrl, { ...MESSAGE, stream: true }, { signal: controller.signal });
      const reader = res.body!.getReader();
      let received = "";
      while ((received.match(/"text_delta"/g) ?? []).length < 20) {
        received += new TextDecoder().decode((await reader.read()).value);
      }
      controller.abort();
      await reader.read().catch(() => {});
      const row = await clientLeftRow(p, db, 3000, "upstream abort");
      const texts = [...received.matchAll(/"text":"([^"]*)"/g)].map((m) => m[1]).join("");
      assert.ok(texts.length >= 20 * 40, `${texts.length} characters of text seen by the client`);
      // At least what the client saw, at 4 characters a token; at most all 100 deltas.
      assert.ok(
        (row.output_tokens as number) >= Math.ceil(texts.length / 4) &&
          (row.output_tokens as number) <= Math.ceil(100 * 60 / 4),
        `estimated ${row.output_tokens} for ${texts.length} characters seen`,
      );
      assert.equal(row.output_estimated, true);
      assert.ok(Number(row.cost_usd) > 0);

      const whole = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
      await whole.text();
      const rows = await recordedRows(p, db, 1); // one more since the flush above
      assert.equal(rows.length, 2);
      const complete = rows.find((r) => r.status_code === 200)!;
      assert.deepEqual([complete.output_tokens, complete.output_estimated], [85, false], "the final count");
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "a client that disconnects while a non-streaming answer is pending cancels the upstream call",
  async (db) => {
    const p = await startProxy(db);
    try {
      p.upstream.script({ kind: "hang" });
      const controller = new AbortController();
      const pending = postMessages(p.baseUrl, MESSAGE, { signal: controller.signal }).catch(() => null);
      await waitFor(() => p.upstream.requests.length === 1, 3000, "upstream request");
      controller.abort();
      await pending;
      await clientLeftRow(p, db, 3000, "upstream abort");
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "a client that leaves before the answer's headers, having sent a Claude Code-sized body, cancels the upstream call",
  async (db) => {
    // Deno's server does not abort the request's signal for such a client when the body is over a few hundred
    // bytes; the proxy notices from the socket's state (lib/net/peer_watch.ts).
    const p = await startProxy(db);
    try {
      p.upstream.script({ kind: "hang" });
      const body = JSON.stringify({ ...MESSAGE, system: "x".repeat(70_000) });
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(p.origin).port) });
      const head = `POST ${new URL(p.baseUrl).pathname}/v1/messages HTTP/1.1\r\nhost: proxy\r\n` +
        `x-api-key: k\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
      const bytes = new TextEncoder().encode(head + body);
      for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
      await waitFor(() => p.upstream.requests.length === 1, 3000, "upstream request");
      const metric = async (name: string) =>
        Number(
          new RegExp(`^${name} (\\d+)$`, "m").exec(await (await fetch(`${p.origin}/metrics`)).text())?.[1],
        );
      assert.deepEqual(
        [
          await metric("proxy_client_socket_watch_active"),
          await metric("proxy_clients_left_before_answer_total"),
        ],
        [1, 0],
      );
      conn.close();
      await clientLeftRow(p, db, 4000, "upstream abort");
      assert.equal(await metric("proxy_clients_left_before_answer_total"), 1);
    } finally {
      await p.upstream.close(); // first: should the proxy still await it, its shutdown would wait for ever
      await p.close();
    }
  },
);

dbTest(
  "an upstream that dies mid-stream ends the client's stream with an error event, recorded as an error",
  async (db) => {
    const p = await startProxy(db);
    try {
      p.upstream.script({ kind: "die_mid_stream", afterEvents: 4 });
      const res = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /^event: message_start\n/);
      assert.match(
        text,
        /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"[^"]*mid-stream/,
      );
      const [row] = await recordedRows(p, db, 1);
      assert.equal(row.error_type, "stream_interrupted");
      assert.equal(row.status_code, 200);
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "a request after the drain deadline gets a retryable 503 and never reaches the upstream",
  async (db) => {
    const p = await startProxy(db, { upstream: { eventDelayMs: 50, deltas: 100 } });
    try {
      // Its stream would outlive the process: the client is told to retry (on another replica).
      p.t.services.proxy.interruptStreams();
      const res = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
      assert.equal(res.status, 503);
      assert.notEqual(res.headers.get("x-should-retry"), "false");
      const body = await res.json();
      assert.equal(body.error.type, "api_error");
      assert.match(body.error.message, /shutting down; retry the request/);
      assert.equal(p.upstream.requests.length, 0);
      const [row] = await recordedRows(p, db, 1);
      assert.equal(row.status_code, 503);
      assert.equal(p.t.services.metrics.streamsOpen, 0);
    } finally {
      await p.close();
    }
  },
);

/** The SSE events of `text`, each parsed; throws on an event whose data is not JSON. */
function sseEvents(text: string): Array<{ event: string; data: Record<string, unknown> }> {
  return text.split("\n\n").filter((block) => block.trim() !== "").map((block) => {
    const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
    const data = /^data: (.*)$/m.exec(block)?.[1] ?? "";
    return { event, data: JSON.parse(data) };
  });
}

dbTest(
  "a stream that ends in the upstream's error event after some text records output estimated from that text",
  async (db) => {
    // Anthropic ends an answer it cannot finish (overloaded mid-answer) with an error event and no final
    // message_delta: the tokens generated until then are billed all the same.
    const p = await startProxy(db, { upstream: { deltas: 40 } });
    try {
      p.upstream.script({
        kind: "error_event",
        type: "overloaded_error",
        message: "Overloaded",
        afterEvents: 30,
      });
      const res = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /event: error\ndata: .*overloaded_error/);
      const seen = [...text.matchAll(/"text":"([^"]*)"/g)].map((m) => m[1]).join("").length;
      const [row] = await recordedRows(p, db, 1);
      assert.deepEqual([row.status_code, row.error_type, row.output_estimated], [
        200,
        "overloaded_error",
        true,
      ]);
      assert.ok(
        (row.output_tokens as number) >= Math.ceil(seen / 4),
        `${row.output_tokens} for ${seen} characters`,
      );
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "an upstream cut mid-event or ending without message_stop: whole events, then a clean error event",
  async (db) => {
    const p = await startProxy(db);
    try {
      for (
        const [step, message] of [
          [{ kind: "die_mid_event", afterEvents: 4 }, /connection lost mid-stream/],
          [{ kind: "end_early", afterEvents: 4 }, /ended before message_stop/],
        ] as const
      ) {
        p.upstream.script(step);
        const res = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
        assert.equal(res.status, 200);
        const events = sseEvents(await res.text()); // throws if half an event leaked out
        assert.deepEqual(events.map((e) => e.event), [
          "message_start",
          "content_block_start",
          "ping",
          "content_block_delta",
          "error",
        ]);
        const error = events.at(-1)!.data as { error: { type: string; message: string } };
        assert.equal(error.error.type, "api_error");
        assert.match(error.error.message, message);

        // The SDK reports it as the API error it is, not as unparsable JSON.
        p.upstream.script(step);
        const client = new Anthropic({ baseURL: p.baseUrl, apiKey: "k", maxRetries: 0 });
        await assert.rejects(client.messages.stream(MESSAGE).finalMessage(), (e: Error) => {
          assert.match(e.message, message);
          return true;
        });
      }
      const rows = await recordedRows(p, db, 4);
      assert.deepEqual(rows.map((r) => [r.status_code, r.error_type]), [
        [200, "stream_interrupted"],
        [200, "stream_interrupted"],
        [200, "stream_interrupted"],
        [200, "stream_interrupted"],
      ]);
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "a non-streaming answer cut off mid-body gives the client a clean 502, recorded as interrupted (length declared or not)",
  async (db) => {
    const p = await startProxy(db);
    try {
      p.upstream.script({ kind: "die_mid_stream", afterEvents: 0, declared: true });
      const declared = await postMessages(p.baseUrl, MESSAGE);
      assert.equal(declared.status, 502, "read whole by the runtime: the cut is seen too");
      assert.match((await declared.json()).error.message, /connection lost before the answer was complete/);
      await recordedRows(p, db, 1);
      p.t.logs.length = 0;
      await db.exec("DELETE FROM token_usages");

      p.upstream.script({ kind: "die_mid_stream", afterEvents: 0 });
      const res = await postMessages(p.baseUrl, MESSAGE);
      assert.equal(res.status, 502);
      const body = await res.json();
      assert.equal(body.type, "error");
      assert.equal(body.error.type, "api_error");
      assert.match(body.error.message, /connection lost before the answer was complete/);
      const [row] = await recordedRows(p, db, 1);
      assert.equal(row.status_code, 502);
      assert.equal(row.error_type, "stream_interrupted");
      // One log line, the request's own (with its tokens and error); the access log adds none.
      const logged = p.t.logs.map((l) => JSON.parse(l)).filter((l) =>
        l.msg === "request" || (l.msg === "http" && l.path.startsWith("/ak/"))
      );
      assert.deepEqual(logged.map((l) => [l.msg, l.status]), [["request", 502]]);
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "a non-streaming answer that keeps coming is not cut by the silence timeout, however long it takes in all",
  async (db) => {
    const p = await startProxy(db, { env: { PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: "400" } });
    try {
      // Five pieces 250 ms apart: never silent for 400 ms, 1 s in all.
      p.upstream.script({ kind: "slow", eventDelayMs: 250, pieces: 5, declared: true });
      const res = await postMessages(p.baseUrl, MESSAGE);
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.equal(JSON.parse(text).type, "message");
    } finally {
      await p.close();
    }
  },
);

/** A client leaves while a slow non-streaming answer (its length `declared` or not) is arriving. */
async function leaveDuringSlowAnswer(db: Db, declared: boolean) {
  const p = await startProxy(db);
  try {
    p.upstream.script({ kind: "slow", eventDelayMs: 2000, declared });
    const controller = new AbortController();
    const pending = postMessages(p.baseUrl, MESSAGE, { signal: controller.signal }).catch(() => null);
    await waitFor(() => p.upstream.requests.length === 1, 3000, "upstream request");
    await new Promise((r) => setTimeout(r, 100)); // the first half is on its way
    controller.abort();
    await pending;
    await clientLeftRow(p, db, 1500, "upstream abort before the slow half was sent");
  } finally {
    await p.close();
  }
}

dbTest(
  "a client that leaves while a non-streaming answer is arriving cancels the upstream, recorded as 499",
  (db) => leaveDuringSlowAnswer(db, false),
);

dbTest(
  "a client that leaves while a non-streaming answer of declared length is read whole cancels it too",
  (db) => leaveDuringSlowAnswer(db, true),
);

dbTest(
  "a non-streaming answer larger than the usage tap's limit (16 MB) still reaches the client whole",
  async (db) => {
    const p = await startProxy(db);
    try {
      const bytes = 17 * 1024 * 1024;
      p.upstream.script({ kind: "big_text", bytes });
      const res = await postMessages(p.baseUrl, MESSAGE);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.content[0].text.length, bytes);
      assert.equal(body.usage.output_tokens, 85, "the upstream's usage is passed on untouched");
      const [row] = await recordedRows(p, db, 1);
      assert.equal(row.status_code, 200);
      assert.equal(row.error_type, null);
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "bodies of one size class, sent one after another and at once, each arrive upstream exactly as sent",
  async (db) => {
    // Request-body memory is reused between requests: no body may carry another's bytes, or lose its own.
    const p = await startProxy(db);
    try {
      const body = (letter: string, length: number) =>
        `{"model":"claude-sonnet-4-5-20250929","max_tokens":16,"stream":false,` +
        `"messages":[{"role":"user","content":"${letter.repeat(length)}"}]}`;
      const send = (raw: string) =>
        fetch(`${p.baseUrl}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-api-key": "sk-ant-test" },
          body: raw,
        }).then(async (r) => {
          assert.equal(r.status, 200);
          await r.body?.cancel();
        });
      const sent = [body("a", 90_000), body("b", 70_000), body("c", 100_000)];
      for (const raw of sent) await send(raw);
      const together = ["d", "e", "f", "g", "h", "i"].map((l, i) => body(l, 70_000 + i * 5_000));
      await Promise.all(together.map(send));
      const received = p.upstream.requests.map((r) => new TextDecoder().decode(r.body));
      assert.deepEqual(received.slice(0, 3), sent);
      assert.deepEqual(received.slice(3).sort(), [...together].sort());
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "the recorded cost includes fast mode, US-only inference and web searches, as usage reports them",
  async (db) => {
    const p = await startProxy(db, {
      upstream: {
        usage: {
          input_tokens: 1000,
          output_tokens: 2000,
          cache_read_input_tokens: 0,
          cache_creation_input_tokens: 0,
          speed: "fast",
          inference_geo: "us",
          server_tool_use: { web_search_requests: 4 },
        },
      },
    });
    try {
      const client = new Anthropic({ baseURL: p.baseUrl, apiKey: "k" });
      await client.messages.create({ ...MESSAGE, model: "claude-opus-4-6" });
      await (await client.messages.stream({ ...MESSAGE, model: "claude-opus-4-6" })).finalMessage();
      const rows = await recordedRows(p, db, 2);
      // Opus 4.6: (1000 × $5 + 2000 × $25) per million = $0.055; fast 6×, US 1.1×: $0.363; 4 searches $0.04.
      assert.deepEqual(rows.map((r) => Number(r.cost_usd)), [0.403, 0.403]);
      // Kept beside the cost, so it can be explained: in the rows and in the API's list of requests.
      for (const r of rows) {
        assert.deepEqual([r.speed, r.inference_geo, r.web_search_requests], ["fast", "us", 4]);
      }
      const listed = await p.t.call("GET", "/api/usage/requests", undefined, await p.t.auth());
      assert.deepEqual(
        listed.body.items.map((
          r: Record<string, unknown>,
        ) => [r.speed, r.inference_geo, r.web_search_requests]),
        [["fast", "us", 4], ["fast", "us", 4]],
      );
    } finally {
      await p.close();
    }
  },
);

dbTest("usage rows and aggregates are exact, cache tokens included", async (db) => {
  const p = await startProxy(db, {
    upstream: {
      usage: {
        input_tokens: 11,
        output_tokens: 22,
        cache_read_input_tokens: 33,
        cache_creation_input_tokens: 44,
        cache_creation: { ephemeral_5m_input_tokens: 40, ephemeral_1h_input_tokens: 4 },
      },
    },
  });
  try {
    const client = new Anthropic({ baseURL: p.baseUrl, apiKey: "k" });
    for (let i = 0; i < 3; i++) await client.messages.create(MESSAGE);
    for (let i = 0; i < 2; i++) await (await client.messages.stream(MESSAGE)).finalMessage();
    const rows = await recordedRows(p, db, 5);
    assert.equal(rows.length, 5);
    for (const r of rows) {
      assert.deepEqual(
        [
          r.input_tokens,
          r.output_tokens,
          r.cache_read_input_tokens,
          r.cache_creation_input_tokens,
          r.provider,
          r.is_fallback,
        ],
        [11, 22, 33, 44, "anthropic", false],
      );
      assert.equal(r.access_key_id, p.keyId);
      assert.equal(r.user_id, p.userId);
      assert.equal(r.model, "claude-sonnet-4-5-20250929");
      assert.equal(r.model_served, "claude-sonnet-4-5-20250929");
      assert.equal(r.status_code, 200);
      assert.equal(r.stop_reason, "end_turn");
      assert.match(String(r.message_id), /^msg_fake_/);
      assert.ok((r.latency_ms as number) >= 0 && (r.time_to_first_byte_ms as number) >= 0);
      // Sonnet 4.5: $3 in, $15 out, $0.30 cache read, $3.75 (5 minutes) or $6 (1 hour) cache write per million.
      const expected = (11 * 3 + 22 * 15 + 33 * 0.3 + 40 * 3.75 + 4 * 6) / 1e6;
      assert.ok(Math.abs((r.cost_usd as number) - expected) < 1e-6, `cost ${r.cost_usd} vs ${expected}`);
    }
    assert.deepEqual(rows.map((r) => r.stream), [false, false, false, true, true]);
    const aggs = await db.query<Record<string, number | string>>(sql`
      SELECT granularity, request_count, total_input_tokens, total_output_tokens, total_cache_read_tokens,
        total_cache_creation_tokens FROM usage_aggregates ORDER BY granularity`);
    assert.deepEqual(aggs.map((a) => Object.values(a)), [["day", 5, 55, 110, 165, 220], [
      "hour",
      5,
      55,
      110,
      165,
      220,
    ]]);
    const [key] = await db.query<{ last_used_at: Date | null }>(
      sql`SELECT last_used_at FROM access_keys WHERE id = ${p.keyId}`,
    );
    assert.ok(key.last_used_at instanceof Date);
  } finally {
    await p.close();
  }
});

dbTest("access key and input errors answer in Anthropic's error shape", async (db) => {
  const p = await startProxy(db);
  /** Claude Code would retry a 401 ten times (and wait out a 429) before showing a refusal no retry changes. */
  const final = (res: Response) => assert.equal(res.headers.get("x-should-retry"), "false", `${res.status}`);
  try {
    const post = (url: string, body: string, headers: Record<string, string> = { "x-api-key": "k" }) =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    const unknown = await post(`${p.origin}/ak/ak_${"A".repeat(43)}/v1/messages`, JSON.stringify(MESSAGE));
    assert.equal(unknown.status, 401);
    final(unknown);
    assert.equal((await unknown.json()).error.type, "authentication_error");
    const garbage = await post(`${p.origin}/ak/not-a-key/v1/messages`, JSON.stringify(MESSAGE));
    assert.equal(garbage.status, 401);
    final(garbage);
    await garbage.body?.cancel();

    const malformed = await post(`${p.baseUrl}/v1/messages`, "{not json");
    assert.equal(malformed.status, 400);
    assert.equal(malformed.headers.get("x-should-retry"), null, "the SDKs never retry a 400 anyway");
    assert.deepEqual((await malformed.json()).error.type, "invalid_request_error");

    const noCreds = await post(`${p.baseUrl}/v1/messages`, JSON.stringify(MESSAGE), {});
    assert.equal(noCreds.status, 401);
    final(noCreds);
    assert.match((await noCreds.json()).error.message, /no Anthropic credentials/);

    const h = await p.t.auth();
    await p.t.call("PATCH", `/api/users/${p.userId}`, { is_active: false }, h);
    const inactive = await post(`${p.baseUrl}/v1/messages`, JSON.stringify(MESSAGE));
    assert.equal(inactive.status, 403);
    final(inactive);
    assert.deepEqual(await inactive.json(), {
      type: "error",
      error: { type: "permission_error", message: "the user of this access key is deactivated or deleted" },
    });
    await p.t.call("PATCH", `/api/users/${p.userId}`, { is_active: true }, h);
    const second = (await p.t.call("POST", `/api/users/${p.userId}/access-keys`, { name: "second" }, h)).body;
    const rotated = await p.t.call("POST", `/api/access-keys/${second.id}/rotate`, { grace_seconds: 0 }, h);
    assert.equal(rotated.status, 201);
    const expired = await post(`${p.origin}/ak/${second.key}/v1/messages`, JSON.stringify(MESSAGE));
    assert.equal(expired.status, 401);
    final(expired);
    assert.equal((await expired.json()).error.message, "access key expired after rotation; use the new key");
    await p.t.call("DELETE", `/api/access-keys/${p.keyId}`, undefined, h);
    const revoked = await post(`${p.baseUrl}/v1/messages`, JSON.stringify(MESSAGE));
    assert.equal(revoked.status, 401);
    final(revoked);
    await revoked.body?.cancel();
    // Deleting a user revokes their keys too; the holder is told it is the user, not only that the key died.
    const leaver = (await p.t.call("POST", "/api/users", { email: "leaver@example.com", name: "L" }, h)).body;
    const leaverKey = (await p.t.call("POST", `/api/users/${leaver.id}/access-keys`, { name: "k" }, h)).body;
    assert.equal((await p.t.call("DELETE", `/api/users/${leaver.id}`, undefined, h)).status, 204);
    const deleted = await post(`${p.origin}/ak/${leaverKey.key}/v1/messages`, JSON.stringify(MESSAGE));
    assert.equal(deleted.status, 403);
    final(deleted);
    assert.deepEqual((await deleted.json()).error, {
      type: "permission_error",
      message: "the user of this access key is deactivated or deleted",
    });
    assert.equal(p.upstream.requests.length, 0, "nothing reached the upstream");
    // The access key never appears in the logs; only its prefix does.
    assert.ok(!p.t.logs.join("\n").includes(p.key));
  } finally {
    await p.close();
  }
});

dbTest(
  "a percent-encoded access key works and never reaches upstream; a malformed escape is a 401",
  async (db) => {
    const p = await startProxy(db);
    try {
      const encoded = `%${p.key.charCodeAt(0).toString(16)}${p.key.slice(1)}`;
      const res = await fetch(`${p.origin}/ak/${encoded}/v1/models?limit=1`, {
        headers: { "x-api-key": "k" },
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      assert.equal(p.upstream.requests.at(-1)?.pathAndQuery, "/v1/models?limit=1");
      const bad = await fetch(`${p.origin}/ak/%E0%A4%A/v1/models`, { headers: { "x-api-key": "k" } });
      assert.equal(bad.status, 401);
      assert.equal((await bad.json()).error.type, "authentication_error");
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "a client's x-request-id never keys the usage row: two requests sending the same one get two rows",
  async (db) => {
    const p = await startProxy(db);
    try {
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await postMessages(p.baseUrl, MESSAGE, { headers: { "x-request-id": "same-id" } });
        assert.equal(res.status, 200);
        await res.body?.cancel();
        ids.push(res.headers.get("x-proxy-request-id")!);
      }
      assert.notEqual(ids[0], ids[1]);
      const rows = await recordedRows(p, db, 2);
      assert.deepEqual(rows.map((r) => r.request_id).sort(), [...ids].sort());
      assert.ok(p.t.logs.some((l) => l.includes('"client_request_id":"same-id"')), "kept for correlation");
      const lines = p.t.logs.map((l) => JSON.parse(l));
      assert.equal(lines.filter((l) => l.msg === "request").length, 2, "one line per answered request");
      assert.deepEqual(
        lines.filter((l) => l.msg === "http" && l.path.startsWith("/ak/")),
        [],
        "and no second, access-log line (the setup's API calls have theirs)",
      );
    } finally {
      await p.close();
    }
  },
);

dbTest("a body over PROXY_MAX_BODY_BYTES is refused with 413", async (db) => {
  const p = await startProxy(db, { env: { PROXY_MAX_BODY_BYTES: "4096" } });
  try {
    const res = await postMessages(p.baseUrl, {
      ...MESSAGE,
      messages: [{ role: "user", content: "y".repeat(10_000) }],
    });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.type, "request_too_large");

    // Announced too large with `expect: 100-continue`: refused before any of it is sent. (Deno answers the
    // expectation with 100 Continue itself, whatever the handler does; the 413 follows at once.)
    // (Other paths stream their bodies on unread, so the upstream's own limit is theirs: see the upload test.)
    for (const path of ["/v1/messages", "/v1/messages/count_tokens"]) {
      const url = new URL(`${p.baseUrl}${path}`);
      const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
      try {
        await conn.write(new TextEncoder().encode(
          `POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\nx-api-key: k\r\n` +
            "content-type: application/json\r\ncontent-length: 100000\r\nexpect: 100-continue\r\n\r\n",
        ));
        let answer = "";
        const buf = new Uint8Array(4096);
        while (!/\r\n\r\n\{/.test(answer)) {
          const n = await within(3000, conn.read(buf), `the answer to ${path} with no body sent`);
          if (n === null) break;
          answer += new TextDecoder().decode(buf.subarray(0, n));
        }
        assert.match(answer, /HTTP\/1\.1 413 [^]*request_too_large/, path);
      } finally {
        conn.close();
      }
    }
  } finally {
    await p.close();
  }
});

dbTest("messages refused before any provider saw them are recorded too, with their status", async (db) => {
  const p = await startProxy(db, { env: { PROXY_MAX_BODY_BYTES: "4096" } });
  try {
    const tooLarge = await postMessages(p.baseUrl, {
      ...MESSAGE,
      messages: [{ role: "user", content: "y".repeat(10_000) }],
    });
    assert.equal(tooLarge.status, 413);
    await tooLarge.body?.cancel();
    const malformed = await postMessages(p.baseUrl, "{not json");
    assert.equal(malformed.status, 400);
    await malformed.body?.cancel();
    const noCredentials = await fetch(`${p.baseUrl}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...MESSAGE, stream: true }),
    });
    assert.equal(noCredentials.status, 401);
    await noCredentials.body?.cancel();
    const rows = await recordedRows(p, db, 3);
    assert.deepEqual(
      rows.map((r) => [r.status_code, r.error_type, r.model, r.stream, r.provider, r.access_key_id]),
      [
        [413, "request_too_large", null, false, "anthropic", p.keyId],
        [400, "invalid_request_error", null, false, "anthropic", p.keyId],
        [401, "authentication_error", MESSAGE.model, true, "anthropic", p.keyId],
      ],
    );
    assert.equal(p.upstream.requests.length, 0);
    const usage = await p.t.call("GET", "/api/usage/requests?limit=10", undefined, await p.t.auth());
    assert.equal(usage.body.total, 3, "listed with the rest");
  } finally {
    await p.close();
  }
});

dbTest("count_tokens, models and the base-URL probes pass through", async (db) => {
  const p = await startProxy(db, { env: { PROXY_PLAN_API_KEY: "sk-ant-server-default" } });
  try {
    const client = new Anthropic({ baseURL: p.baseUrl, apiKey: "k" });
    const counted = await client.messages.countTokens(MESSAGE);
    assert.equal(counted.input_tokens, 42);
    const models = await fetch(`${p.baseUrl}/v1/models?limit=5`, { headers: { "x-api-key": "k" } });
    assert.equal(models.status, 200);
    assert.equal((await models.json()).data[0].id, "claude-sonnet-4-5-20250929");
    assert.equal(p.upstream.requests[1].pathAndQuery, "/v1/models?limit=5");
    // Without client credentials the configured plan key is used.
    const withDefault = await fetch(`${p.baseUrl}/v1/models`);
    assert.equal(withDefault.status, 200);
    await withDefault.body?.cancel();
    assert.equal(p.upstream.requests[2].headers.get("x-api-key"), "sk-ant-server-default");
    // Paths the proxy does not account for never spend the organisation's key.
    const batches = await fetch(`${p.baseUrl}/v1/messages/batches`, { method: "POST", body: "{}" });
    assert.equal(batches.status, 401);
    assert.match((await batches.json()).error.message, /only for messages, count_tokens and models/);
    assert.equal(p.upstream.requests.length, 3, "nothing reached the upstream");
    const head = await fetch(`${p.origin}/`, { method: "HEAD" });
    assert.equal(head.status, 200);
    // Claude Code's own probes of its base URL (the access-key path), as set with or without a trailing slash.
    for (const path of ["", "/", "/api/hello"]) {
      for (const method of ["HEAD", "GET"]) {
        const probe = await fetch(`${p.baseUrl}${path}`, { method });
        assert.equal(probe.status, 200, `${method} <base>${path}`);
        await probe.body?.cancel();
      }
    }
    const get = await fetch(`${p.origin}/`);
    assert.equal(get.status, 200);
    await get.body?.cancel();
  } finally {
    await p.close();
  }
});

dbTest(
  "with the database stopped, cached keys are still served and every usage row lands once afterwards",
  async (db, ctx) => {
    const p = await startProxy(db);
    try {
      const client = new Anthropic({ baseURL: p.baseUrl, apiKey: "k", maxRetries: 0 });
      await client.messages.create(MESSAGE); // caches the key
      await waitFor(() => p.t.services.recorder.stats().queued === 1, 2000, "first row");
      await p.t.services.recorder.flush();

      // Take the database away: PGlite closed in place; PostgreSQL connections terminated and refused.
      const outage = await simulateOutage(db, ctx.url);
      for (let i = 0; i < 10; i++) await client.messages.create(MESSAGE);
      await (await client.messages.stream(MESSAGE)).finalMessage();
      const ready = await fetch(`${p.origin}/ready`);
      assert.equal(ready.status, 503);
      await ready.body?.cancel();
      await waitFor(() => p.t.services.recorder.stats().queued === 11, 3000, "queued rows");
      await p.t.services.recorder.flush();
      assert.ok(p.t.services.recorder.stats().flushErrors > 0);

      await outage.restore();
      await waitFor(
        async () => {
          await p.t.services.recorder.flush();
          return p.t.services.recorder.stats().queued === 0;
        },
        40_000,
        "rows flushed after recovery",
      );
      const rows = await usageRows(outage.db);
      assert.equal(rows.length, 12);
      assert.equal(new Set(rows.map((r) => r.request_id)).size, 12);
    } finally {
      await p.close();
    }
  },
);

/**
 * Makes `db` fail as if the server were down, then brings it back. On PostgreSQL the test database is renamed
 * away (new connections fail) and its sessions are terminated; on PGlite, queries are refused in place.
 */
async function simulateOutage(db: Db, url: string): Promise<{ db: Db; restore(): Promise<void> }> {
  if (db.kind === "pglite") {
    const target = db as Db & { query: Db["query"]; begin: Db["begin"]; ping: Db["ping"] };
    const saved = { query: target.query, begin: target.begin, ping: target.ping };
    const refuse = () => Promise.reject(new Error("connection refused"));
    Object.assign(target, { query: refuse, begin: refuse, ping: refuse });
    return {
      db,
      restore() {
        Object.assign(target, saved);
        return Promise.resolve();
      },
    };
  }
  const { openPostgres } = await import("../lib/db/postgres.ts");
  const name = new URL(url).pathname.slice(1);
  const adminUrl = Deno.env.get("PROXY_TEST_DATABASE_URL")!;
  const admin = openPostgres({ url: adminUrl, max: 1 });
  await admin.exec(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
  await admin.query(sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name}`);
  return {
    db,
    async restore() {
      await admin.exec(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.close();
    },
  };
}

/** POSTs `body` to `target` exactly as written (no URL normalisation), over HTTP/1.1; one request per connection. */
async function rawPost(origin: URL, target: string, body: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: origin.hostname, port: Number(origin.port) });
  const bytes = new TextEncoder().encode(body);
  await conn.write(new TextEncoder().encode(
    `POST ${target} HTTP/1.1\r\nhost: ${origin.host}\r\ncontent-type: application/json\r\n` +
      `content-length: ${bytes.length}\r\nconnection: close\r\n\r\n`,
  ));
  await conn.write(bytes);
  const text = await new Response(conn.readable).text();
  const [head, ...rest] = text.split("\r\n\r\n");
  return { status: Number(head.split(" ")[1]), body: rest.join("\r\n\r\n") };
}

/** An upstream answering every request with `answer(path)`; records the paths it saw. */
function rawUpstream(answer: (path: string, req: Request) => Response | Promise<Response>) {
  const seen: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    const url = new URL(req.url);
    seen.push(req.method + " " + url.pathname + url.search);
    return await answer(url.pathname, req);
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

dbTest(
  "messages and count_tokens with a trailing slash are handled as themselves, so they are accounted",
  async (db) => {
    const p = await startProxy(db);
    try {
      const res = await fetch(`${p.baseUrl}/v1/messages/?beta=true`, {
        method: "POST",
        headers: { "x-api-key": "k", "content-type": "application/json" },
        body: JSON.stringify(MESSAGE),
      });
      await res.body?.cancel();
      assert.equal(p.upstream.requests.at(-1)?.pathAndQuery, "/v1/messages/?beta=true", "sent on as it came");
      const [row] = await recordedRows(p, db, 1);
      assert.deepEqual(
        [row.status_code, row.model],
        [res.status, MESSAGE.model],
        "a row, whatever the answer",
      );

      const count = await fetch(`${p.baseUrl}/v1/messages/count_tokens/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(MESSAGE),
      });
      assert.equal(
        count.status,
        401,
        "count_tokens' own refusal: no credentials (the org key is not set here)",
      );
      assert.match((await count.json()).error.message, /no Anthropic credentials/);
    } finally {
      await p.close();
    }
  },
);

dbTest(
  "a browser's CORS preflight goes upstream without credentials, and its answer comes back",
  async (db) => {
    const credentials: Array<string | null> = [];
    const up = rawUpstream((_, req) => {
      credentials.push(req.headers.get("x-api-key") ?? req.headers.get("authorization"));
      return new Response(null, {
        status: 204,
        headers: {
          "access-control-allow-origin": "https://app.example",
          "access-control-allow-headers":
            "x-api-key, anthropic-version, anthropic-dangerous-direct-browser-access",
        },
      });
    });
    const p = await startProxy(db, {
      env: { PROXY_PLAN_API_URL: up.url, PROXY_PLAN_API_KEY: "sk-ant-org-key" },
    });
    try {
      const res = await fetch(`${p.baseUrl}/v1/messages`, {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "x-api-key, anthropic-version",
        },
      });
      assert.equal(res.status, 204);
      assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example");
      assert.deepEqual(up.seen, ["OPTIONS /v1/messages"]);
      assert.deepEqual(credentials, [null], "the organisation's key is not added");
      // Still behind the access key, and never with the organisation's key.
      const unknown = await fetch(`${p.origin}/ak/ak_unknown/v1/messages`, { method: "OPTIONS" });
      assert.equal(unknown.status, 401);
      await unknown.body?.cancel();
      assert.equal(up.seen.length, 1);
    } finally {
      await p.close();
      await up.close();
    }
  },
);

dbTest(
  "a passed-through answer whose body stalls after its headers is cut after the first-byte timeout of silence",
  async (db) => {
    const stop = Promise.withResolvers<void>();
    const up = rawUpstream((path) => {
      if (path.endsWith("/quick")) return Response.json({ ok: true });
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (!sent) {
            sent = true;
            return c.enqueue(new TextEncoder().encode('{"id":"file_1","type":"file"'));
          }
          await stop.promise; // then nothing, until the test ends
          c.close();
        },
      });
      return new Response(body, { headers: { "content-type": "application/json", "content-length": "200" } });
    });
    const p = await startProxy(db, {
      env: { PROXY_PLAN_API_URL: up.url, PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: "300" },
    });
    try {
      const started = Date.now();
      const res = await fetch(`${p.baseUrl}/v1/files/file_1`, { headers: { "x-api-key": "k" } });
      assert.equal(res.status, 200);
      await assert.rejects(within(3000, res.text(), "the stalled body"), /error reading a body|connection/i);
      const waited = Date.now() - started;
      assert.ok(waited >= 250 && waited < 3000, `${waited} ms, silence allowed 300`);

      // A whole answer still passes as it came.
      const quick = await fetch(`${p.baseUrl}/v1/files/quick`, { headers: { "x-api-key": "k" } });
      assert.deepEqual(await quick.json(), { ok: true });
    } finally {
      stop.resolve();
      await p.close();
      await up.close();
    }
  },
);

dbTest(
  "a path the proxy and its upstream could read apart (dot or empty segments, backslashes, encoded letters) is refused",
  async (db) => {
    const up = rawUpstream(() => Response.json({ ok: true }));
    const p = await startProxy(db, {
      env: { PROXY_PLAN_API_URL: up.url, PROXY_PLAN_API_KEY: "sk-ant-org-key" },
    });
    try {
      // Over a raw connection: fetch itself would resolve the segments before sending, as any URL parser does.
      const origin = new URL(p.baseUrl);
      for (
        const tail of [
          "/v1/x/../messages",
          "/v1/x/%2e%2e/messages",
          "/v1/x/%2E./messages",
          "/v1/./messages",
          // A URL parser reads a backslash as a slash: these too would arrive upstream as /v1/messages.
          "/v1/x\\..\\messages",
          "/v1/x/%2e%2e\\messages",
          "/v1/x\\..\\messages?beta=true",
          // Servers that merge slashes read this as /v1/messages.
          "/v1//messages",
        ]
      ) {
        const { status, body } = await rawPost(origin, `${origin.pathname}${tail}`, JSON.stringify(MESSAGE));
        assert.equal(status, 400, `${tail}: ${body}`);
        const error = JSON.parse(body).error;
        assert.equal(error.type, "invalid_request_error");
        assert.match(error.message, /\. or \.\. segments, backslashes or empty segments/);
      }
      // An upstream that decodes letters before routing would read these as /v1/messages.
      for (const tail of ["/v1/%6Dessages", "/v1/messages%2Fcount_tokens%5F", "/v1/x/%2E%2E%5Cmessages"]) {
        const { status, body } = await rawPost(origin, `${origin.pathname}${tail}`, JSON.stringify(MESSAGE));
        assert.equal(status, 400, `${tail}: ${body}`);
        assert.equal(JSON.parse(body).error.type, "invalid_request_error");
      }
      // Path parameters, which some servers strip before routing.
      for (const tail of ["/v1/messages;x", "/v1/messages;x/count_tokens"]) {
        const { status, body } = await rawPost(origin, `${origin.pathname}${tail}`, JSON.stringify(MESSAGE));
        assert.equal(status, 400, `${tail}: ${body}`);
        assert.match(JSON.parse(body).error.message, /path has a ;/);
      }
      // A path that only looks like a handler's (another method, an encoded slash) never carries the
      // organisation's key: without the client's own credentials it is refused here.
      for (const tail of ["/v1/models/..%2Fmessages", "/v1/models/..%5Cmessages", "/v1/models"]) {
        const { status, body } = await rawPost(origin, `${origin.pathname}${tail}`, JSON.stringify(MESSAGE));
        assert.equal(status, 401, `${tail}: ${body}`);
        assert.match(JSON.parse(body).error.message, /no Anthropic credentials/);
      }
      const encodedModel = await fetch(`${p.baseUrl}/v1/models/..%2Fmessages`);
      assert.equal(encodedModel.status, 400, "no model id holds a slash");
      assert.match((await encodedModel.json()).error.message, /model id holds \/ or \\/);
      // Characters a URL parser only percent-encodes change no segment: not refused for the path.
      for (const tail of ["/v1/files/a{b}", "/v1/files/caf\u00e9"]) {
        const { status, body } = await rawPost(origin, `${origin.pathname}${tail}`, "{}");
        assert.equal(status, 401, `${tail}: ${body}`);
      }
      const encodedSlash = await fetch(`${p.baseUrl}/v1/files/a%2Fb`, {
        method: "POST",
        headers: { "x-api-key": "sk-ant-client" },
        body: "{}",
      });
      assert.equal(encodedSlash.status, 200, "reserved characters may be encoded (an id holding a slash)");
      await encodedSlash.body?.cancel();
      assert.deepEqual(up.seen, ["POST /v1/files/a%2Fb"], "nothing else reached the upstream");
    } finally {
      await p.close();
      await up.close();
    }
  },
);

dbTest(
  "pass-through keeps the upstream's encoding, server-timing and a HEAD's length; a 204 on messages stays bodiless",
  async (db) => {
    const gz = new Uint8Array(
      await new Response(
        new Blob(['{"input_tokens":42}']).stream().pipeThrough(new CompressionStream("gzip")),
      )
        .arrayBuffer(),
    );
    const up = rawUpstream((path) =>
      path.startsWith("/v1/files/")
        ? new Response("x".repeat(1234), { headers: { "content-type": "application/octet-stream" } })
        : path.endsWith("/count_tokens")
        ? new Response(gz, { headers: { "content-type": "application/json", "content-encoding": "gzip" } })
        : new Response(null, {
          status: 204,
          headers: { "server-timing": "edge;dur=12", "request-id": "req_204" },
        })
    );
    const p = await startProxy(db, { env: { PROXY_PLAN_API_URL: up.url } });
    try {
      const count = await fetch(`${p.baseUrl}/v1/messages/count_tokens`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "sk-ant-client" },
        body: JSON.stringify(MESSAGE),
      });
      assert.equal(count.status, 200);
      // fetch decodes it for us: that it can means the header came with the compressed bytes.
      assert.deepEqual(await count.json(), { input_tokens: 42 });

      const empty = await fetch(`${p.baseUrl}/v1/messages`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": "sk-ant-client" },
        body: JSON.stringify(MESSAGE),
      });
      assert.equal(empty.status, 204);
      assert.equal(await empty.text(), "");
      assert.equal(empty.headers.get("request-id"), "req_204");
      const timing = empty.headers.get("server-timing") ?? "";
      assert.match(timing, /edge;dur=12/, "the upstream's entry is kept");
      assert.match(timing, /proxy;dur=/);

      // A HEAD asks for the length of what a GET would bring: the upstream's, not the empty body's.
      const file = `${p.baseUrl}/v1/files/file_1/content`;
      const head = await fetch(file, { method: "HEAD", headers: { "x-api-key": "sk-ant-client" } });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-length"), "1234");
      const get = await fetch(file, { headers: { "x-api-key": "sk-ant-client" } });
      assert.equal(get.headers.get("content-length"), "1234", "a download keeps its size, not chunked");
      assert.equal((await get.bytes()).length, 1234);
      assert.deepEqual(up.seen.slice(-2), ["HEAD /v1/files/file_1/content", "GET /v1/files/file_1/content"]);
    } finally {
      await p.close();
      await up.close();
    }
  },
);

dbTest(
  "a key in a base URL that lost its /ak/ segment is neither echoed nor logged whole, and the 404 says why",
  async (db) => {
    const p = await startProxy(db);
    try {
      const origin = new URL(p.baseUrl).origin;
      const res = await postMessages(`${origin}/${p.key}`, MESSAGE);
      assert.equal(res.status, 404);
      const text = await res.text();
      assert.ok(!text.includes(p.key), text);
      assert.match(text, /https:\/\/<proxy>\/ak\/<access key>/);
      await waitFor(() => p.t.logs.some((l) => l.includes("/v1/messages")), 2000, "the request's log line");
      assert.ok(!p.t.logs.some((l) => l.includes(p.key)), "no log line holds the whole key");
    } finally {
      await p.close();
    }
  },
);

dbTest("a client that leaves mid-upload is recorded as 499, not as the proxy's error", async (db) => {
  const p = await startProxy(db);
  try {
    const url = new URL(`${p.baseUrl}/v1/messages`);
    const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
    const head = `POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\nx-api-key: k\r\n` +
      "content-type: application/json\r\ncontent-length: 1000\r\n\r\n";
    await conn.write(new TextEncoder().encode(head + '{"model":"claude-sonnet-4-5","messages":['));
    await new Promise((r) => setTimeout(r, 100));
    conn.close();
    const [row] = await recordedRows(p, db, 1);
    assert.deepEqual([row.status_code, row.error_type], [499, "client_closed_request"]);
    assert.equal(p.upstream.requests.length, 0);
    assert.ok(!p.t.logs.some((l) => l.includes('"unhandled error"')), "no error line for a client leaving");

    // The same on count_tokens and a passed-through path: their log line says 499, not a 500 of the proxy's.
    for (const path of ["/v1/messages/count_tokens", "/v1/files"]) {
      const side = new URL(`${p.baseUrl}${path}`);
      const c = await Deno.connect({ hostname: side.hostname, port: Number(side.port) });
      await c.write(new TextEncoder().encode(
        `POST ${side.pathname} HTTP/1.1\r\nhost: ${side.host}\r\nx-api-key: k\r\n` +
          'content-type: application/json\r\ncontent-length: 1000\r\n\r\n{"model":"claude',
      ));
      await new Promise((r) => setTimeout(r, 100));
      c.close();
      const line = () =>
        p.t.logs.find((l) => l.includes(side.pathname.split("/").pop()!) && l.includes('"status":'));
      await waitFor(() => line() !== undefined, 3000, `the log line of ${path}`);
      assert.match(line()!, /"status":499/, path);
    }
    assert.equal(p.upstream.requests.length, 0);
    assert.ok(!p.t.logs.some((l) => l.includes('"unhandled error"')), "no error line for a client leaving");
  } finally {
    await p.close();
  }
});

dbTest(
  "a client that stops reading a fast stream for longer than the idle timeout still gets it whole",
  async (db) => {
    const enc = new TextEncoder();
    const event = (name: string, data: unknown) =>
      enc.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    const text = "x".repeat(64 * 1024);
    const up = rawUpstream(() => {
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          // 40 MB as fast as the proxy takes it: past every socket buffer, so the proxy's reads wait on the client.
          if (sent === 0) {
            c.enqueue(event("message_start", {
              type: "message_start",
              message: {
                id: "msg_big",
                model: "claude-sonnet-4-5",
                usage: { input_tokens: 5, output_tokens: 1 },
              },
            }));
          } else if (sent <= 640) {
            c.enqueue(event("content_block_delta", {
              type: "content_block_delta",
              index: 0,
              delta: { type: "text_delta", text },
            }));
          } else {
            c.enqueue(
              event("message_delta", { type: "message_delta", delta: {}, usage: { output_tokens: 12345 } }),
            );
            c.enqueue(event("message_stop", { type: "message_stop" }));
            c.close();
          }
          sent++;
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    });
    const p = await startProxy(db, {
      env: { PROXY_PLAN_API_URL: up.url, PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: "300" },
    });
    try {
      const res = await postMessages(p.baseUrl, { ...MESSAGE, stream: true });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      await reader.read();
      await new Promise((r) => setTimeout(r, 1500)); // five idle timeouts without reading
      let tail = "";
      let bytes = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.length;
        tail = (tail + new TextDecoder().decode(value.subarray(-200))).slice(-400);
      }
      assert.ok(bytes > 40_000_000, `${bytes} bytes`);
      assert.match(tail, /event: message_stop/);
      assert.doesNotMatch(tail, /event: error/);
      const [row] = await recordedRows(p, db, 1);
      assert.deepEqual([row.status_code, row.error_type, row.output_tokens], [200, null, 12345]);
    } finally {
      await p.close();
      await up.close();
    }
  },
);

/** An upstream that reads each request body as it comes and answers its length and SHA-256. */
function hashingUpstream() {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const hash = createHash("sha256");
    let bytes = 0;
    for await (const chunk of req.body ?? []) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    return Response.json({ bytes, sha256: hash.digest("hex") });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

/** `chunks` pseudo-random chunks of `size` bytes, `gapMs` apart, and their SHA-256 as they were made. */
function upload(chunks: number, size: number, gapMs = 0) {
  const hash = createHash("sha256");
  let i = 0;
  let seed = 7;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (i++ === chunks) {
        c.close();
        return;
      }
      if (gapMs > 0 && i > 1) await new Promise((r) => setTimeout(r, gapMs));
      const chunk = new Uint8Array(size);
      for (let j = 0; j < size; j += 4) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        chunk[j] = seed & 0xff;
        chunk[j + 1] = (seed >>> 8) & 0xff;
      }
      hash.update(chunk);
      c.enqueue(chunk);
    },
  });
  return { body, sha256: () => hash.digest("hex") };
}

dbTest(
  "an upload on another path streams to the upstream whole, past PROXY_MAX_BODY_BYTES, and its time is not the upstream's",
  async (db) => {
    const up = hashingUpstream();
    const p = await startProxy(db, {
      env: {
        PROXY_PLAN_API_URL: up.url,
        PROXY_MAX_BODY_BYTES: "1048576",
        PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: "300",
      },
    });
    try {
      // 40 MiB, forty times the largest body the proxy reads: the Files API takes 500 MB.
      const big = upload(640, 64 * 1024);
      const res = await fetch(`${p.baseUrl}/v1/files`, {
        method: "POST",
        headers: { "x-api-key": "k", "content-type": "application/octet-stream" },
        body: big.body,
      });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { bytes: 640 * 64 * 1024, sha256: big.sha256() }, "byte for byte");

      // Sent over a second, with a first-byte timeout of 300 ms: the timeout starts once the upload is in.
      const slow = upload(10, 1024, 100);
      const trickled = await fetch(`${p.baseUrl}/v1/files`, {
        method: "POST",
        headers: { "x-api-key": "k" },
        body: slow.body,
      });
      assert.equal(trickled.status, 200);
      assert.deepEqual(await trickled.json(), { bytes: 10 * 1024, sha256: slow.sha256() });
    } finally {
      await p.close();
      await up.close();
    }
  },
);

dbTest("an upload slower than PROXY_REQUEST_BODY_TIMEOUT_MS is cut with 408 timeout_error", async (db) => {
  const up = hashingUpstream();
  const p = await startProxy(db, {
    env: { PROXY_PLAN_API_URL: up.url, PROXY_REQUEST_BODY_TIMEOUT_MS: "500" },
  });
  try {
    const res = await fetch(`${p.baseUrl}/v1/files`, {
      method: "POST",
      headers: { "x-api-key": "k" },
      body: upload(20, 1024, 100).body, // 2 s
    }).catch((e) => e as Error);
    // An upstream error (its connection failing) would be a 502: the client's slowness is named as such.
    assert.ok(res instanceof Response, `an answer, not ${res}`);
    assert.equal(res.status, 408);
    assert.match((await res.json()).error.message, /PROXY_REQUEST_BODY_TIMEOUT_MS/);
  } finally {
    await p.close();
    await up.close();
  }
});

dbTest(
  "an upload to an upstream that stops reading it ends at PROXY_REQUEST_BODY_TIMEOUT_MS, not never",
  async (db) => {
    // Reads the request head, then nothing: its window fills and the proxy is asked for no more of the body.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    (async () => {
      for await (const c of listener) {
        held.push(c);
        await c.read(new Uint8Array(4096)).catch(() => null);
      }
    })().catch(() => {});
    const p = await startProxy(db, {
      env: {
        PROXY_PLAN_API_URL: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
        PROXY_REQUEST_BODY_TIMEOUT_MS: "1000",
      },
    });
    try {
      const started = performance.now();
      const res = await within(
        15_000,
        fetch(`${p.baseUrl}/v1/files`, {
          method: "POST",
          headers: { "x-api-key": "k" },
          body: upload(2_000, 64 * 1024).body, // 128 MiB, offered as fast as it is taken
        }),
        "the proxy's answer",
      );
      assert.equal(res.status, 408);
      assert.match((await res.json()).error.message, /PROXY_REQUEST_BODY_TIMEOUT_MS/);
      assert.ok(performance.now() - started < 10_000);
    } finally {
      await p.close();
      listener.close();
      for (const c of held) c.close();
    }
  },
);
