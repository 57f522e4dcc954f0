import assert from "node:assert/strict";
import { Sha256 } from "@aws-crypto/sha256-js";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { SignatureV4 } from "@smithy/signature-v4";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { startFakeBedrock } from "./fake_bedrock.ts";

const AKID = "AKIDFAKEEXAMPLE00001";
const SECRET = "fake/secret/key+0123456789";
const MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const BODY = {
  anthropic_version: "bedrock-2023-05-31",
  max_tokens: 16,
  messages: [{ role: "user", content: "hi" }],
};

/** Signs a request the way the AWS SDK does, with a plain fetch underneath. */
async function signedFetch(
  base: string,
  path: string,
  body: unknown,
  creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  tamper?: (init: { headers: Record<string, string>; body: string }) => void,
): Promise<Response> {
  const url = new URL(path, base);
  const text = JSON.stringify(body);
  const signer = new SignatureV4({
    credentials: creds,
    region: "us-east-1",
    service: "bedrock",
    sha256: Sha256,
  });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: {},
    headers: { host: url.host, "content-type": "application/json" },
    body: text,
  });
  const init = { headers: signed.headers as Record<string, string>, body: text };
  tamper?.(init);
  return await fetch(url, { method: "POST", headers: init.headers, body: init.body });
}

function modelPath(id: string, op: string): string {
  return `/model/${encodeURIComponent(id)}/${op}`;
}

/** Splits AWS event-stream bytes into decoded messages (each frame starts with its total length). */
function decodeFrames(bytes: Uint8Array) {
  const codec = new EventStreamCodec(toUtf8, fromUtf8);
  const frames = [];
  let offset = 0;
  while (offset < bytes.length) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + offset, 4).getUint32(0);
    frames.push(codec.decode(bytes.subarray(offset, offset + length)));
    offset += length;
  }
  return frames;
}

function chunkEvent(frame: ReturnType<EventStreamCodec["decode"]>): Record<string, unknown> {
  const payload = JSON.parse(toUtf8(frame.body));
  const bin = atob(payload.bytes);
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
}

Deno.test("fake Bedrock accepts a correctly SigV4-signed request and records it decoded", async () => {
  const fake = await startFakeBedrock({ iamCredentials: { [AKID]: SECRET } });
  try {
    const res = await signedFetch(fake.url, modelPath(MODEL, "invoke"), BODY, {
      accessKeyId: AKID,
      secretAccessKey: SECRET,
    });
    assert.equal(res.status, 200);
    const msg = await res.json();
    assert.equal(msg.type, "message");
    assert.equal(msg.model, "claude-sonnet-4-5-20250929");
    assert.deepEqual(Object.keys(msg.usage).sort(), [
      "cache_creation_input_tokens",
      "cache_read_input_tokens",
      "input_tokens",
      "output_tokens",
    ]);
    const rec = fake.requests[0];
    assert.equal(rec.modelId, MODEL);
    assert.equal(rec.path, "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke");
    assert.equal(rec.operation, "invoke");
    assert.deepEqual(rec.body, BODY);
    assert.equal(rec.auth, "sigv4");
    assert.equal(rec.accessKeyId, AKID);
    assert.equal(rec.region, "us-east-1");
  } finally {
    await fake.close();
  }
});

Deno.test("fake Bedrock verifies session tokens as part of the signature", async () => {
  const fake = await startFakeBedrock({ iamCredentials: { [AKID]: SECRET } });
  try {
    const creds = { accessKeyId: AKID, secretAccessKey: SECRET, sessionToken: "session-token-1" };
    const ok = await signedFetch(fake.url, modelPath(MODEL, "invoke"), BODY, creds);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const swapped = await signedFetch(fake.url, modelPath(MODEL, "invoke"), BODY, creds, (init) => {
      init.headers["x-amz-security-token"] = "session-token-2";
    });
    assert.equal(swapped.status, 403);
    await swapped.body?.cancel();
  } finally {
    await fake.close();
  }
});

Deno.test("fake Bedrock rejects a wrong secret, a tampered body and an unknown key like Bedrock does", async () => {
  const fake = await startFakeBedrock({ iamCredentials: { [AKID]: SECRET } });
  try {
    const wrong = await signedFetch(fake.url, modelPath(MODEL, "invoke"), BODY, {
      accessKeyId: AKID,
      secretAccessKey: "not-the-secret",
    });
    assert.equal(wrong.status, 403);
    assert.match(wrong.headers.get("x-amzn-errortype") ?? "", /^InvalidSignatureException:/);
    assert.match((await wrong.json()).message, /signature we calculated does not match/);

    const tampered = await signedFetch(
      fake.url,
      modelPath(MODEL, "invoke"),
      BODY,
      { accessKeyId: AKID, secretAccessKey: SECRET },
      (init) => init.body = init.body.replace('"hi"', '"bye"'),
    );
    assert.equal(tampered.status, 403);
    assert.match(tampered.headers.get("x-amzn-errortype") ?? "", /^InvalidSignatureException/);
    await tampered.body?.cancel();

    const unknown = await signedFetch(fake.url, modelPath(MODEL, "invoke"), BODY, {
      accessKeyId: "AKIDUNKNOWN",
      secretAccessKey: SECRET,
    });
    assert.equal(unknown.status, 403);
    assert.match(unknown.headers.get("x-amzn-errortype") ?? "", /^UnrecognizedClientException/);
    await unknown.body?.cancel();

    const none = await fetch(new URL(modelPath(MODEL, "invoke"), fake.url), {
      method: "POST",
      body: JSON.stringify(BODY),
    });
    assert.equal(none.status, 403);
    assert.match(none.headers.get("x-amzn-errortype") ?? "", /^MissingAuthenticationTokenException/);
    await none.body?.cancel();
    assert.deepEqual(fake.requests.map((r) => r.auth), ["rejected", "rejected", "rejected", "rejected"]);
  } finally {
    await fake.close();
  }
});

Deno.test("fake Bedrock accepts known API keys as bearer tokens and rejects others", async () => {
  const fake = await startFakeBedrock({ apiKeys: ["ABSKgoodkey"] });
  try {
    const call = (key: string) =>
      fetch(new URL(modelPath(MODEL, "invoke"), fake.url), {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify(BODY),
      });
    const ok = await call("ABSKgoodkey");
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const bad = await call("ABSKbadkey");
    assert.equal(bad.status, 403);
    assert.match(bad.headers.get("x-amzn-errortype") ?? "", /^UnrecognizedClientException/);
    await bad.body?.cancel();
    assert.deepEqual(fake.requests.map((r) => r.auth), ["bearer", "rejected"]);
  } finally {
    await fake.close();
  }
});

Deno.test("fake Bedrock streams Anthropic events in event-stream chunk frames, metrics on message_stop", async () => {
  const fake = await startFakeBedrock({
    apiKeys: ["k"],
    reply: {
      text: ["Hel", "lo"],
      usage: {
        input_tokens: 7,
        output_tokens: 3,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 50,
      },
    },
  });
  try {
    const res = await fetch(new URL(modelPath(MODEL, "invoke-with-response-stream"), fake.url), {
      method: "POST",
      headers: { authorization: "Bearer k" },
      body: JSON.stringify(BODY),
    });
    assert.equal(res.headers.get("content-type"), "application/vnd.amazon.eventstream");
    const frames = decodeFrames(new Uint8Array(await res.arrayBuffer()));
    for (const f of frames) {
      assert.equal(f.headers[":event-type"].value, "chunk");
      assert.equal(f.headers[":message-type"].value, "event");
      assert.equal(f.headers[":content-type"].value, "application/json");
    }
    const events = frames.map(chunkEvent);
    assert.deepEqual(events.map((e) => e.type), [
      "message_start",
      "content_block_start",
      "ping",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    assert.deepEqual(events.at(-1)!["amazon-bedrock-invocationMetrics"], {
      inputTokenCount: 7,
      outputTokenCount: 3,
      invocationLatency: 321,
      firstByteLatency: 123,
      cacheReadInputTokenCount: 100,
      cacheWriteInputTokenCount: 50,
    });
    assert.deepEqual(fake.requests[0].sentEvents, events);
  } finally {
    await fake.close();
  }
});

Deno.test("fake Bedrock answers scripted HTTP errors in Bedrock's error shape, N times", async () => {
  const fake = await startFakeBedrock({ apiKeys: ["k"] });
  fake.script({ kind: "error", status: 429, errorType: "ThrottlingException", times: 2 }, {
    kind: "error",
    status: 400,
    errorType: "ValidationException",
    message: "bad input",
  });
  try {
    const call = () =>
      fetch(new URL(modelPath(MODEL, "invoke"), fake.url), {
        method: "POST",
        headers: { authorization: "Bearer k" },
        body: JSON.stringify(BODY),
      });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const res = await call();
      statuses.push(res.status);
      if (i === 0) {
        assert.match(res.headers.get("x-amzn-errortype") ?? "", /^ThrottlingException:/);
        assert.deepEqual(await res.json(), {
          message: "Too many requests, please wait before trying again.",
        });
      } else if (i === 2) {
        assert.deepEqual(await res.json(), { message: "bad input" });
      } else {
        await res.body?.cancel();
      }
    }
    assert.deepEqual(statuses, [429, 429, 400, 200]);
  } finally {
    await fake.close();
  }
});

Deno.test("fake Bedrock can break a stream with an exception frame", async () => {
  const fake = await startFakeBedrock({ apiKeys: ["k"] });
  fake.script({
    kind: "stream_exception",
    afterEvents: 3,
    exceptionType: "throttlingException",
    message: "slow",
  });
  try {
    const res = await fetch(new URL(modelPath(MODEL, "invoke-with-response-stream"), fake.url), {
      method: "POST",
      headers: { authorization: "Bearer k" },
      body: JSON.stringify(BODY),
    });
    const frames = decodeFrames(new Uint8Array(await res.arrayBuffer()));
    assert.equal(frames.length, 4);
    const last = frames[3];
    assert.equal(last.headers[":message-type"].value, "exception");
    assert.equal(last.headers[":exception-type"].value, "throttlingException");
    assert.deepEqual(JSON.parse(toUtf8(last.body)), { message: "slow" });
  } finally {
    await fake.close();
  }
});

Deno.test("fake Bedrock rejects Anthropic-only fields like model and stream", async () => {
  const fake = await startFakeBedrock({ apiKeys: ["k"] });
  try {
    const res = await fetch(new URL(modelPath(MODEL, "invoke"), fake.url), {
      method: "POST",
      headers: { authorization: "Bearer k" },
      body: JSON.stringify({ ...BODY, stream: true }),
    });
    assert.equal(res.status, 400);
    assert.match(res.headers.get("x-amzn-errortype") ?? "", /^ValidationException/);
    assert.match((await res.json()).message, /extraneous key \[stream\]/);
  } finally {
    await fake.close();
  }
});
