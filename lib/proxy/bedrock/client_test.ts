import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import { createParser } from "eventsource-parser";
import {
  type FakeBedrock,
  type FakeBedrockOptions,
  startFakeBedrock,
} from "../../../tests/fakes/fake_bedrock.ts";
import {
  type BedrockCredentials,
  BedrockInvoker,
  type BedrockInvokeRequest,
  type BedrockInvokerOptions,
} from "./client.ts";
import { mapBedrockError } from "./errors.ts";
import { HttpClientPool } from "../../net/http_client_pool.ts";
import { makeCertificates } from "../../../bench/certificates.ts";
import { startCappedHttp2 } from "../../../tests/fakes/capped_http2.ts";
import { mapModel } from "./model_map.ts";
import { collectGarbage } from "../../../tests/helpers/gc.ts";
import { within } from "../../../tests/helpers/within.ts";
import { DEFAULT_BEDROCK_BETAS, toBedrockBody } from "./translate.ts";

const AKID = "AKIDCLIENTTEST000001";
const SECRET = "client/test/secret+key";
const API_KEY = "ABSKQmVkcm9ja0FQSUtleS10ZXN0";
const IAM: BedrockCredentials = { kind: "iam", accessKeyId: AKID, secretAccessKey: SECRET };
const MODEL_ID = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
const REQUESTED = "claude-sonnet-4-5";
const TRANSLATE = { allowedBetas: DEFAULT_BEDROCK_BETAS };

function body(extra: Record<string, unknown> = {}): Uint8Array {
  return toBedrockBody(
    { model: REQUESTED, max_tokens: 256, messages: [{ role: "user", content: "Hello" }], ...extra },
    [],
    TRANSLATE,
  );
}

/** Runs `fn` against a fresh fake and invoker, closing both afterwards. */
async function withFake(
  fn: (fake: FakeBedrock, invoker: BedrockInvoker) => Promise<void>,
  opts: FakeBedrockOptions = {},
  invokerOpts: Omit<BedrockInvokerOptions, "endpoint"> = {},
): Promise<void> {
  const fake = await startFakeBedrock({ iamCredentials: { [AKID]: SECRET }, apiKeys: [API_KEY], ...opts });
  const invoker = new BedrockInvoker({ endpoint: fake.url, ...invokerOpts });
  try {
    await fn(fake, invoker);
  } finally {
    invoker.close();
    await fake.close();
  }
}

function request(extra: Partial<BedrockInvokeRequest> = {}): BedrockInvokeRequest {
  return {
    credentials: IAM,
    region: "us-east-1",
    modelId: MODEL_ID,
    body: body(),
    requestedModel: REQUESTED,
    ...extra,
  };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

/** What the client should see for what the fake sent: metrics removed, the requested model name restored. */
function expectedEvents(sent: Record<string, unknown>[], model = REQUESTED): Record<string, unknown>[] {
  return sent.map((e) => {
    const copy = structuredClone(e);
    delete copy["amazon-bedrock-invocationMetrics"];
    if (copy.type === "message_start") (copy.message as Record<string, unknown>).model = model;
    return copy;
  });
}

function parseSse(text: string): { event: string | undefined; data: Record<string, unknown> }[] {
  const out: { event: string | undefined; data: Record<string, unknown> }[] = [];
  const parser = createParser({ onEvent: (e) => out.push({ event: e.event, data: JSON.parse(e.data) }) });
  parser.feed(text);
  return out;
}

async function waitFor(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("invoke with IAM credentials is SigV4-verified by Bedrock and answers as the requested model", async () => {
  await withFake(async (fake, invoker) => {
    const out = await invoker.invoke(request());
    assert.equal(out.body.type, "message");
    assert.equal(out.body.model, REQUESTED);
    assert.deepEqual(out.body.content, [{ type: "text", text: "Hello from the fake Bedrock!" }]);
    assert.deepEqual(out.usage, {
      inputTokens: 25,
      outputTokens: 12,
      cacheReadInputTokens: 0,
      cacheCreationInputTokens: 0,
      cacheCreation1hInputTokens: 0,
    });
    const rec = fake.requests[0];
    assert.equal(rec.auth, "sigv4");
    assert.equal(rec.accessKeyId, AKID);
    assert.equal(rec.region, "us-east-1");
    assert.equal(rec.operation, "invoke");
    assert.deepEqual(rec.body, JSON.parse(new TextDecoder().decode(body())));
  });
});

Deno.test("invoke reports cache read and write tokens from the message usage", async () => {
  await withFake(async (_fake, invoker) => {
    const out = await invoker.invoke(request());
    assert.deepEqual(out.usage, {
      inputTokens: 5,
      outputTokens: 9,
      cacheReadInputTokens: 1000,
      cacheCreationInputTokens: 200,
      cacheCreation1hInputTokens: 0,
    });
  }, {
    reply: {
      usage: {
        input_tokens: 5,
        output_tokens: 9,
        cache_read_input_tokens: 1000,
        cache_creation_input_tokens: 200,
      },
    },
  });
});

Deno.test("IAM session tokens are sent and covered by the signature", async () => {
  await withFake(async (fake, invoker) => {
    await invoker.invoke(
      request({ credentials: { ...IAM, sessionToken: "FwoGZXIvYXdzEXAMPLE" } as BedrockCredentials }),
    );
    assert.equal(fake.requests[0].auth, "sigv4");
    assert.equal(fake.requests[0].headers["x-amz-security-token"], "FwoGZXIvYXdzEXAMPLE");
  });
});

Deno.test("a wrong secret key is answered as 401 authentication_error", async () => {
  await withFake(async (fake, invoker) => {
    const err = await rejection(
      invoker.invoke(
        request({ credentials: { kind: "iam", accessKeyId: AKID, secretAccessKey: "wrong-secret" } }),
      ),
    );
    const mapped = mapBedrockError(err);
    assert.equal(mapped.status, 401);
    assert.equal(mapped.type, "authentication_error");
    assert.match(mapped.message, /^Bedrock: InvalidSignatureException/);
    assert.doesNotMatch(mapped.message, /wrong-secret/);
    assert.equal(fake.requests[0].auth, "rejected");
    const unknown = mapBedrockError(
      await rejection(invoker.invoke(request({ credentials: { ...IAM, accessKeyId: "AKIDNOBODY" } }))),
    );
    assert.deepEqual([unknown.status, unknown.type], [401, "authentication_error"]);
  });
});

Deno.test("a Bedrock API key is sent as a bearer token instead of a SigV4 signature", async () => {
  await withFake(async (fake, invoker) => {
    const out = await invoker.invoke(request({ credentials: { kind: "api_key", apiKey: API_KEY } }));
    assert.equal(out.body.model, REQUESTED);
    const rec = fake.requests[0];
    assert.equal(rec.auth, "bearer");
    assert.equal(rec.headers.authorization, `Bearer ${API_KEY}`);
    const stream = await invoker.invokeStream(request({ credentials: { kind: "api_key", apiKey: API_KEY } }));
    await new Response(stream.events).text();
    assert.equal(fake.requests[1].auth, "bearer");
    const bad = mapBedrockError(
      await rejection(invoker.invoke(request({ credentials: { kind: "api_key", apiKey: "ABSKwrong" } }))),
    );
    assert.deepEqual([bad.status, bad.type], [401, "authentication_error"]);
  });
});

Deno.test("default credentials use the process's own AWS credential chain", async () => {
  await withFake(async (fake) => {
    // A child process, so the AWS_* variables the chain reads never touch this (possibly shared) test process.
    const script = `
      import { BedrockInvoker } from ${JSON.stringify(new URL("./client.ts", import.meta.url).href)};
      const invoker = new BedrockInvoker({ endpoint: Deno.env.get("FAKE_BEDROCK_URL") });
      const out = await invoker.invoke({
        credentials: { kind: "default" },
        region: "us-east-1",
        modelId: ${JSON.stringify(MODEL_ID)},
        body: new TextEncoder().encode(${JSON.stringify(new TextDecoder().decode(body()))}),
      });
      invoker.close();
      console.log(out.body.type);
    `;
    const child = await new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      cwd: new URL("../../../", import.meta.url),
      env: {
        FAKE_BEDROCK_URL: fake.url,
        AWS_ACCESS_KEY_ID: AKID,
        AWS_SECRET_ACCESS_KEY: SECRET,
        AWS_EC2_METADATA_DISABLED: "true",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(child.stderr);
    assert.equal(child.code, 0, stderr);
    assert.equal(new TextDecoder().decode(child.stdout).trim(), "message");
    assert.equal(fake.requests[0].auth, "sigv4");
    assert.equal(fake.requests[0].accessKeyId, AKID);
  });
});

Deno.test("the streamed SSE is exactly the event sequence Bedrock sent, metrics removed, model restored", async () => {
  await withFake(async (fake, invoker) => {
    const stream = await invoker.invokeStream(request());
    const text = await new Response(stream.events).text();
    const expected = expectedEvents(fake.requests[0].sentEvents);
    assert.deepEqual(expected.map((e) => e.type), [
      "message_start",
      "content_block_start",
      "ping",
      "content_block_delta",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    // Byte for byte what Anthropic would send: `event: <type>\ndata: <compact json>\n\n` per event.
    assert.equal(text, expected.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join(""));
    const parsed = parseSse(text);
    assert.deepEqual(parsed.map((p) => p.event), expected.map((e) => e.type));
    assert.deepEqual(parsed.map((p) => p.data), expected);
    assert.ok(parsed.every((p) => !("amazon-bedrock-invocationMetrics" in p.data)));
    assert.equal((parsed[0].data.message as Record<string, unknown>).model, REQUESTED);
    assert.equal(fake.requests[0].operation, "invoke-with-response-stream");
  });
});

Deno.test("stream usage counts input, output, cache read and cache write tokens", async () => {
  await withFake(async (fake, invoker) => {
    const stream = await invoker.invokeStream(request());
    await new Response(stream.events).text();
    const usage = await stream.usage;
    const start = fake.requests[0].sentEvents[0].message as Record<string, unknown>;
    assert.deepEqual(usage, {
      inputTokens: 30,
      outputTokens: 77,
      cacheReadInputTokens: 4000,
      cacheCreationInputTokens: 1500,
      cacheCreation1hInputTokens: 0,
      stopReason: "end_turn",
      messageId: start.id,
    });
  }, {
    reply: {
      usage: {
        input_tokens: 30,
        output_tokens: 77,
        cache_read_input_tokens: 4000,
        cache_creation_input_tokens: 1500,
      },
    },
  });
});

Deno.test("a count no API sends (1e300 here, in the events and the metrics) is ignored, never priced", async () => {
  await withFake(async (_fake, invoker) => {
    const stream = await invoker.invokeStream(request());
    await new Response(stream.events).text();
    const usage = await stream.usage;
    assert.deepEqual(
      [usage.inputTokens, usage.outputTokens, usage.cacheReadInputTokens, usage.cacheCreationInputTokens],
      [30, 77, 4000, 0],
    );
  }, {
    reply: {
      usage: {
        input_tokens: 30,
        output_tokens: 77,
        cache_read_input_tokens: 4000,
        cache_creation_input_tokens: 1e300,
      },
    },
  });
});

Deno.test("stream usage takes counters the events never reported from Bedrock's invocation metrics", async () => {
  await withFake(async (_fake, invoker) => {
    const stream = await invoker.invokeStream(request());
    await new Response(stream.events).text();
    const usage = await stream.usage;
    assert.equal(usage.inputTokens, 11);
    assert.equal(usage.outputTokens, 22);
    assert.equal(usage.cacheReadInputTokens, 33);
    assert.equal(usage.cacheCreationInputTokens, 44);
  }, {
    reply: {
      eventUsage: "minimal",
      usage: {
        input_tokens: 11,
        output_tokens: 22,
        cache_read_input_tokens: 33,
        cache_creation_input_tokens: 44,
      },
    },
  });
});

Deno.test("tool_use replies stream their input_json_delta events through unchanged", async () => {
  await withFake(async (fake, invoker) => {
    const stream = await invoker.invokeStream(request());
    const parsed = parseSse(await new Response(stream.events).text());
    assert.deepEqual(parsed.map((p) => p.data), expectedEvents(fake.requests[0].sentEvents));
    assert.equal((await stream.usage).stopReason, "tool_use");
    const nonStream = await invoker.invoke(request());
    assert.deepEqual((nonStream.body.content as unknown[])[1], {
      type: "tool_use",
      id: "toolu_01",
      name: "Bash",
      input: { command: "ls -la", description: "list" },
    });
  }, {
    reply: { toolUse: { id: "toolu_01", name: "Bash", input: { command: "ls -la", description: "list" } } },
  });
});

Deno.test("a mid-stream exception ends the SSE with an Anthropic error event and sets usage.error", async () => {
  await withFake(async (fake, invoker) => {
    fake.script({
      kind: "stream_exception",
      afterEvents: 4,
      exceptionType: "throttlingException",
      message: "Too fast",
    });
    const stream = await invoker.invokeStream(request());
    const parsed = parseSse(await new Response(stream.events).text());
    assert.deepEqual(parsed.slice(0, 4).map((p) => p.data), expectedEvents(fake.requests[0].sentEvents));
    const last = parsed.at(-1)!;
    assert.equal(parsed.length, 5);
    assert.equal(last.event, "error");
    assert.deepEqual(Object.keys(last.data), ["type", "error"]);
    assert.equal(last.data.type, "error");
    const error = last.data.error as { type: string; message: string };
    assert.equal(error.type, "rate_limit_error");
    assert.match(error.message, /^Bedrock: .*Too fast/);
    const usage = await stream.usage;
    assert.deepEqual(usage.error, error);
    assert.equal(usage.inputTokens, 25);
  });
});

Deno.test("other in-stream exceptions map to their Anthropic error types", async () => {
  await withFake(async (fake, invoker) => {
    const cases: [string, string][] = [
      ["modelStreamErrorException", "api_error"],
      ["internalServerException", "api_error"],
      ["serviceUnavailableException", "overloaded_error"],
      ["modelTimeoutException", "timeout_error"],
    ];
    for (const [exceptionType, type] of cases) {
      fake.script({ kind: "stream_exception", afterEvents: 2, exceptionType });
      const stream = await invoker.invokeStream(request());
      const parsed = parseSse(await new Response(stream.events).text());
      assert.equal((parsed.at(-1)!.data.error as { type: string }).type, type, exceptionType);
      assert.equal((await stream.usage).error?.type, type);
    }
  });
});

Deno.test("an exception before the first event rejects invokeStream so the caller can answer an HTTP error", async () => {
  await withFake(async (fake, invoker) => {
    fake.script({ kind: "stream_exception", afterEvents: 0, exceptionType: "throttlingException" });
    const mapped = mapBedrockError(await rejection(invoker.invokeStream(request())));
    assert.deepEqual([mapped.status, mapped.type], [429, "rate_limit_error"]);
  });
});

Deno.test("Bedrock throttling is answered as 429 rate_limit_error, streaming or not", async () => {
  await withFake(async (fake, invoker) => {
    fake.script({ kind: "error", status: 429, errorType: "ThrottlingException", times: 2 });
    for (const call of [() => invoker.invoke(request()), () => invoker.invokeStream(request())]) {
      const mapped = mapBedrockError(await rejection(call()));
      assert.equal(mapped.status, 429);
      assert.equal(mapped.type, "rate_limit_error");
      assert.match(mapped.message, /^Bedrock: ThrottlingException: Too many requests/);
    }
    // One attempt per call: the proxy's clients do their own retrying.
    assert.equal(fake.requests.length, 2);
  });
});

Deno.test("Bedrock validation, access and server errors map to 400, 403 and 5xx", async () => {
  await withFake(async (fake, invoker) => {
    const cases: [number, string, number, string][] = [
      [400, "ValidationException", 400, "invalid_request_error"],
      [403, "AccessDeniedException", 403, "permission_error"],
      [404, "ResourceNotFoundException", 404, "not_found_error"],
      [500, "InternalServerException", 500, "api_error"],
      [503, "ServiceUnavailableException", 529, "overloaded_error"],
    ];
    for (const [status, errorType, wantStatus, wantType] of cases) {
      fake.script({ kind: "error", status, errorType, message: `scripted ${errorType}` });
      const mapped = mapBedrockError(await rejection(invoker.invokeStream(request())));
      assert.deepEqual([mapped.status, mapped.type], [wantStatus, wantType], errorType);
      assert.match(mapped.message, new RegExp(`scripted ${errorType}`));
    }
  });
});

Deno.test("a real ValidationException from Bedrock (extraneous key) maps to 400", async () => {
  await withFake(async (_fake, invoker) => {
    const raw = new TextEncoder().encode(
      JSON.stringify({ anthropic_version: "bedrock-2023-05-31", stream: true }),
    );
    const mapped = mapBedrockError(await rejection(invoker.invoke(request({ body: raw }))));
    assert.deepEqual([mapped.status, mapped.type], [400, "invalid_request_error"]);
    assert.match(mapped.message, /extraneous key \[stream\]/);
  });
});

Deno.test("cancelling the events stream aborts the Bedrock call", async () => {
  await withFake(async (fake, invoker) => {
    const stream = await invoker.invokeStream(request());
    const reader = stream.events.getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    await waitFor(() => fake.requests[0].aborted, "the fake to see the connection close");
    assert.ok(fake.requests[0].sentEvents.length < 9, "Bedrock stopped before the end");
    const usage = await stream.usage;
    assert.equal(usage.cancelled, true);
    assert.equal(usage.error, undefined);
    assert.equal(usage.inputTokens, 25);
  }, { reply: { eventDelayMs: 40 } });
});

Deno.test("aborting the caller's signal aborts the Bedrock call", async () => {
  await withFake(async (fake, invoker) => {
    const controller = new AbortController();
    const stream = await invoker.invokeStream(request({ signal: controller.signal }));
    const reader = stream.events.getReader();
    await reader.read();
    controller.abort();
    await waitFor(() => fake.requests[0].aborted, "the fake to see the connection close");
    const rest = [];
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      rest.push(new TextDecoder().decode(value));
    }
    assert.ok(!rest.join("").includes("event: error"), "no error event for a caller that went away");
    const usage = await stream.usage;
    assert.equal(usage.cancelled, true);
    assert.equal(usage.error, undefined);
  }, { reply: { eventDelayMs: 40 } });
});

Deno.test("a caller's timeout signal ends the stream with a timeout_error event", async () => {
  await withFake(async (fake, invoker) => {
    const stream = await invoker.invokeStream(request({ signal: AbortSignal.timeout(120) }));
    const parsed = parseSse(await new Response(stream.events).text());
    const last = parsed.at(-1)!;
    assert.equal(last.event, "error");
    assert.equal((last.data.error as { type: string }).type, "timeout_error");
    assert.equal((await stream.usage).error?.type, "timeout_error");
    await waitFor(() => fake.requests[0].aborted, "the fake to see the connection close");
  }, { reply: { eventDelayMs: 40 } });
});

Deno.test("a caller's timeout before Bedrock answers rejects as 504 timeout_error", async () => {
  await withFake(async (_fake, invoker) => {
    for (const call of [invoker.invoke.bind(invoker), invoker.invokeStream.bind(invoker)]) {
      const err = await rejection(call(request({ signal: AbortSignal.timeout(60) })));
      const mapped = mapBedrockError(err);
      assert.deepEqual([mapped.status, mapped.type], [504, "timeout_error"]);
    }
  }, { reply: { responseDelayMs: 300 } });
});

Deno.test("model ids with ':' and ARNs with '/' arrive intact at Bedrock", async () => {
  await withFake(async (fake, invoker) => {
    const ids = [
      "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
      "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
    ];
    for (const modelId of ids) await invoker.invoke(request({ modelId }));
    assert.deepEqual(fake.requests.map((r) => r.modelId), ids);
    assert.ok(fake.requests.every((r) => r.auth === "sigv4"));
  });
});

Deno.test("one SDK client is reused per credentials and region, others get their own", async () => {
  const invoker = new BedrockInvoker({ endpoint: "http://127.0.0.1:9" });
  try {
    const a = await invoker.clientFor(IAM, "us-east-1");
    assert.equal(await invoker.clientFor({ ...IAM } as BedrockCredentials, "us-east-1"), a);
    assert.notEqual(await invoker.clientFor(IAM, "eu-west-1"), a);
    assert.notEqual(
      await invoker.clientFor({ ...IAM, secretAccessKey: "other" } as BedrockCredentials, "us-east-1"),
      a,
    );
    assert.notEqual(
      await invoker.clientFor({ ...IAM, sessionToken: "t" } as BedrockCredentials, "us-east-1"),
      a,
    );
    const k = await invoker.clientFor({ kind: "api_key", apiKey: API_KEY }, "us-east-1");
    assert.equal(await invoker.clientFor({ kind: "api_key", apiKey: API_KEY }, "us-east-1"), k);
    assert.notEqual(await invoker.clientFor({ kind: "api_key", apiKey: "ABSKother" }, "us-east-1"), k);
    assert.equal(invoker.clientCount, 6);
  } finally {
    invoker.close();
  }
});

Deno.test("the client cache is bounded and drops the least recently used client", async () => {
  const invoker = new BedrockInvoker({ endpoint: "http://127.0.0.1:9", maxClients: 2 });
  try {
    const a = await invoker.clientFor({ kind: "api_key", apiKey: "a" }, "us-east-1");
    const b = await invoker.clientFor({ kind: "api_key", apiKey: "b" }, "us-east-1");
    assert.equal(await invoker.clientFor({ kind: "api_key", apiKey: "a" }, "us-east-1"), a); // a is now the newest
    await invoker.clientFor({ kind: "api_key", apiKey: "c" }, "us-east-1"); // evicts b
    assert.equal(invoker.clientCount, 2);
    assert.equal(await invoker.clientFor({ kind: "api_key", apiKey: "a" }, "us-east-1"), a);
    assert.notEqual(await invoker.clientFor({ kind: "api_key", apiKey: "b" }, "us-east-1"), b);
  } finally {
    invoker.close();
  }
});

/** A model name the Anthropic SDK does not print a deprecation warning for. */
const SDK_MODEL = "claude-haiku-4-5";

/** A minimal stand-in for the proxy route: Anthropic Messages in, Bedrock answer out. */
function startMiniProxy(invoker: BedrockInvoker): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const anthropicBody = await req.json() as Record<string, unknown>;
    const requested = String(anthropicBody.model);
    const betas = req.headers.get("anthropic-beta");
    const bedrockReq: BedrockInvokeRequest = {
      credentials: IAM,
      region: "us-east-1",
      modelId: mapModel(requested, { overrides: {}, defaultModel: MODEL_ID }).modelId,
      body: toBedrockBody(anthropicBody, betas ? [betas] : [], TRANSLATE),
      requestedModel: requested,
    };
    if (anthropicBody.stream) {
      const stream = await invoker.invokeStream(bedrockReq);
      return new Response(stream.events, { headers: { "content-type": "text/event-stream" } });
    }
    return Response.json((await invoker.invoke(bedrockReq)).body);
  });
}

Deno.test("the Anthropic SDK consumes the translated stream and builds the same final message", async () => {
  await withFake(async (fake, invoker) => {
    const proxy = startMiniProxy(invoker);
    try {
      const client = new Anthropic({
        baseURL: `http://127.0.0.1:${proxy.addr.port}`,
        apiKey: "sk-ant-test",
        maxRetries: 0,
      });
      const stream = client.messages.stream({
        model: SDK_MODEL,
        max_tokens: 256,
        messages: [{ role: "user", content: "List files" }],
      }, { headers: { "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14" } });
      const seen: unknown[] = [];
      // Cloned on arrival: the SDK accumulates the final message into the message_start event's object.
      for await (const event of stream) seen.push(structuredClone(event));
      const final = await stream.finalMessage();

      const sent = fake.requests[0];
      assert.deepEqual((sent.body as Record<string, unknown>).anthropic_beta, [
        "interleaved-thinking-2025-05-14",
      ]);
      // The SDK's MessageStream consumes `ping` itself and yields every other event.
      assert.deepEqual(seen, expectedEvents(sent.sentEvents, SDK_MODEL).filter((e) => e.type !== "ping"));
      assert.equal(final.model, SDK_MODEL);
      assert.equal(sent.modelId, "global.anthropic.claude-haiku-4-5-20251001-v1:0");
      assert.equal(final.stop_reason, "tool_use");
      assert.deepEqual(final.content, [
        { type: "text", text: "Let me look." },
        { type: "tool_use", id: "toolu_9", name: "Bash", input: { command: "ls" } },
      ]);
      assert.equal(final.usage.input_tokens, 40);
      assert.equal(final.usage.output_tokens, 15);
      assert.equal(final.usage.cache_read_input_tokens, 300);
      assert.equal(final.usage.cache_creation_input_tokens, 20);

      const created = await client.messages.create({
        model: SDK_MODEL,
        max_tokens: 256,
        messages: [{ role: "user", content: "List files" }],
      });
      assert.equal(created.model, SDK_MODEL);
      assert.deepEqual(created.content, final.content);
      assert.deepEqual(created.usage, final.usage);
    } finally {
      await proxy.shutdown();
    }
  }, {
    reply: {
      text: ["Let me ", "look."],
      toolUse: { id: "toolu_9", name: "Bash", input: { command: "ls" } },
      usage: {
        input_tokens: 40,
        output_tokens: 15,
        cache_read_input_tokens: 300,
        cache_creation_input_tokens: 20,
      },
    },
  });
});

Deno.test("the Anthropic SDK surfaces a mid-stream Bedrock failure as an Anthropic API error", async () => {
  await withFake(async (fake, invoker) => {
    const proxy = startMiniProxy(invoker);
    try {
      fake.script({ kind: "stream_exception", afterEvents: 3, exceptionType: "serviceUnavailableException" });
      const client = new Anthropic({
        baseURL: `http://127.0.0.1:${proxy.addr.port}`,
        apiKey: "sk-ant-test",
        maxRetries: 0,
      });
      const stream = client.messages.stream({
        model: SDK_MODEL,
        max_tokens: 64,
        messages: [{ role: "user", content: "x" }],
      });
      const err = await rejection(stream.finalMessage()) as { error?: { error?: { type?: string } } };
      assert.ok(err instanceof Anthropic.APIError, String(err));
      assert.equal(err.error?.error?.type, "overloaded_error");
    } finally {
      await proxy.shutdown();
    }
  });
});

Deno.test("a Bedrock stream silent for the idle timeout ends: before its first event it rejects, later with an error event", async () => {
  // Silent before the first event: the call rejects with a timeout, which maps to 504.
  await withFake(
    async (_fake, invoker) => {
      const started = performance.now();
      const err = await rejection(invoker.invokeStream(request()));
      assert.ok(performance.now() - started < 2_000);
      assert.deepEqual([mapBedrockError(err).status, mapBedrockError(err).type], [504, "timeout_error"]);
    },
    { reply: { stallAfterEvents: 0 } },
    { streamIdleTimeoutMs: 150 },
  );
  // Silent after two events: the client's stream ends with a timeout_error event and the usage says so.
  await withFake(
    async (fake, invoker) => {
      const stream = await invoker.invokeStream(request());
      const text = await new Response(stream.events).text();
      assert.match(text, /^event: message_start/);
      assert.match(text, /event: error\ndata: \{"type":"error","error":\{"type":"timeout_error"/);
      const usage = await stream.usage;
      assert.equal(usage.error?.type, "timeout_error");
      assert.equal(fake.requests[0].sentEvents.length, 2);
    },
    { reply: { stallAfterEvents: 2 } },
    { streamIdleTimeoutMs: 150 },
  );
});

Deno.test("a slow but steady Bedrock stream is not cut by the idle timeout", async () => {
  await withFake(
    async (_fake, invoker) => {
      const started = performance.now();
      const stream = await invoker.invokeStream(request());
      const text = await new Response(stream.events).text();
      assert.match(text, /event: message_stop/);
      assert.doesNotMatch(text, /event: error/);
      assert.ok(performance.now() - started > 300, "the whole stream outlasts the idle timeout");
    },
    { reply: { eventDelayMs: 60 } },
    // Five gaps' worth: the window before the first event also covers signing and connecting, which a loaded
    // machine (or a collection under way) can stretch; 150 ms failed that way once the abort always took effect.
    { streamIdleTimeoutMs: 300 },
  );
});

Deno.test("a client that stops reading a Bedrock stream for longer than the idle timeout still gets it whole", async () => {
  await withFake(
    async (_fake, invoker) => {
      const stream = await invoker.invokeStream(request());
      const reader = stream.events.getReader();
      const decoder = new TextDecoder();
      let text = decoder.decode((await reader.read()).value);
      // The client reads nothing for five timeouts while Bedrock has the rest ready: no silence of Bedrock's.
      await new Promise((r) => setTimeout(r, 750));
      for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value);
      assert.match(text, /event: message_stop/);
      assert.doesNotMatch(text, /event: error/);
      assert.equal((await stream.usage).error, undefined);
    },
    {},
    { streamIdleTimeoutMs: 150 },
  );
});

Deno.test("Bedrock's one-hour cache writes are counted apart, streamed and not, so they are priced as such", async () => {
  const usage = {
    input_tokens: 10,
    output_tokens: 3,
    cache_read_input_tokens: 0,
    cache_creation_input_tokens: 20,
    cache_creation: { ephemeral_5m_input_tokens: 5, ephemeral_1h_input_tokens: 15 },
  };
  await withFake(async (_fake, invoker) => {
    const whole = await invoker.invoke(request());
    assert.deepEqual([whole.usage.cacheCreationInputTokens, whole.usage.cacheCreation1hInputTokens], [
      20,
      15,
    ]);
    const stream = await invoker.invokeStream(request());
    await new Response(stream.events).text();
    const streamed = await stream.usage;
    assert.deepEqual([streamed.cacheCreationInputTokens, streamed.cacheCreation1hInputTokens], [20, 15]);
  }, { reply: { usage } });
});

Deno.test("interrupt() ends a stream for a shutdown: the shutdown error event, then the end", async () => {
  await withFake(async (fake, invoker) => {
    fake.script({
      kind: "reply",
      reply: { text: Array.from({ length: 40 }, () => "word "), eventDelayMs: 50 },
    });
    // No signal at all: the interruption cannot come through one.
    const stream = await invoker.invokeStream({ ...request(), signal: undefined });
    const reader = stream.events.getReader();
    await reader.read();
    stream.interrupt();
    let text = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.doesNotMatch(text, /event: message_stop/);
    assert.match(text, /event: error\ndata: .*shutting down/);
    assert.equal((await stream.usage).cancelled, true);
  });
});

// Deno's fetch links a request's signal to its response body only weakly, and the SDK keeps no hold on the
// response: once garbage was collected, an abort reached neither, and the stream ran on to its end (a flaky CI
// failure of the shutdown test in tests/fallback_test.ts).
Deno.test("after a garbage collection, interrupt(), the idle timeout and the caller's abort still end a stream", async () => {
  await withFake(
    async (fake, invoker) => {
      const slow = {
        kind: "reply" as const,
        reply: { text: Array.from({ length: 40 }, () => "word "), eventDelayMs: 50 },
      };

      fake.script(slow);
      const interrupted = await invoker.invokeStream({ ...request(), signal: undefined });
      collectGarbage();
      interrupted.interrupt();
      const text = await within(1500, new Response(interrupted.events).text(), "the stream");
      assert.doesNotMatch(text, /event: message_stop/);
      assert.match(text, /event: error\ndata: .*shutting down/);

      fake.script({ kind: "reply", reply: { stallAfterEvents: 2 } });
      const stalled = await invoker.invokeStream(request());
      collectGarbage();
      const cut = await within(3000, new Response(stalled.events).text(), "the stream");
      assert.match(cut, /event: error\ndata: .*Bedrock sent nothing for/);

      // Only the caller's signal can end this one: no idle timeout, and nobody cancels the events.
      const patient = new BedrockInvoker({ endpoint: fake.url });
      try {
        fake.script(slow);
        const caller = new AbortController();
        const left = await patient.invokeStream(request({ signal: caller.signal }));
        collectGarbage();
        caller.abort();
        await within(1500, new Response(left.events).text(), "the stream");
        assert.equal((await left.usage).cancelled, true);
        await waitFor(() => fake.requests.at(-1)!.aborted, "Bedrock to see the call abandoned", 1500);
        assert.ok(fake.requests.at(-1)!.sentEvents.length < 20, "the call ended long before its last event");
      } finally {
        patient.close();
      }
    },
    {},
    { streamIdleTimeoutMs: 300 },
  );
});

Deno.test({
  name:
    "Bedrock calls are spread over the pool's connections: an HTTP/2 stream cap per connection holds none back",
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "bedrock-h2-" });
  const certs = await makeCertificates(dir);
  // Answers every call with held-open headers: enough to see each call reach the server.
  const upstream = await startCappedHttp2({ maxStreams: 2, cert: certs.cert, key: certs.key });
  const httpClients = new HttpClientPool(3, { caCerts: [await Deno.readTextFile(certs.ca)] });
  const invoker = new BedrockInvoker({ endpoint: upstream.url, httpClients });
  const abort = new AbortController();
  try {
    const calls = Array.from({ length: 6 }, () => invoker.invokeStream(request({ signal: abort.signal })));
    const deadline = Date.now() + 20_000;
    while (await upstream.open() < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await upstream.open(), 6, "all six calls have a stream at once: three connections of two");
    abort.abort();
    // Bounded: a call still queued behind the cap (when the assertion above failed) may never settle.
    await Promise.race([Promise.allSettled(calls), new Promise((r) => setTimeout(r, 5_000))]);
  } finally {
    invoker.close();
    httpClients.close();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stream cut short before its final count reports output estimated from the text it relayed", async () => {
  await withFake(async (fake, invoker) => {
    fake.script({
      kind: "stream_exception",
      afterEvents: 6,
      exceptionType: "internalServerException",
      message: "x",
    });
    const stream = await invoker.invokeStream(request());
    const parsed = parseSse(await new Response(stream.events).text());
    const texts = parsed.map((p) => (p.data.delta as { text?: string } | undefined)?.text ?? "").join("");
    assert.ok(texts.length > 8, `relayed text: ${JSON.stringify(texts)}`);
    const usage = await stream.usage;
    assert.equal(usage.outputTokens, Math.ceil(texts.length / 4));
    assert.equal(usage.outputEstimated, true);
  });
  // A whole stream keeps Bedrock's own count.
  await withFake(async (_fake, invoker) => {
    const stream = await invoker.invokeStream(request());
    await new Response(stream.events).arrayBuffer();
    const usage = await stream.usage;
    assert.equal(usage.outputEstimated, undefined);
  });
});

Deno.test("a caller that stops reading after message_stop has the whole answer: its usage is not cancelled", async () => {
  await withFake(async (fake, invoker) => {
    const stream = await invoker.invokeStream(request());
    const reader = stream.events.getReader();
    let text = "";
    while (!text.includes("event: message_stop")) {
      const { done, value } = await reader.read();
      assert.ok(!done, "message_stop comes before the end of the body");
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    await waitFor(() => fake.requests[0].aborted, "the fake to see the connection close");
    const usage = await stream.usage;
    assert.equal(usage.cancelled, undefined);
    assert.equal(usage.outputEstimated, undefined);
    assert.equal(usage.stopReason, "end_turn");
  }, { reply: { stallAfterEvents: 9 } });
});
