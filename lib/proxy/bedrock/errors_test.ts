import assert from "node:assert/strict";
import { anthropicErrorBody, mapBedrockError, sseErrorEvent } from "./errors.ts";

function sdkError(name: string, message: string, status?: number): Error {
  const err = new Error(message) as Error & { $metadata?: { httpStatusCode?: number }; $fault?: string };
  err.name = name;
  if (status !== undefined) err.$metadata = { httpStatusCode: status };
  return err;
}

Deno.test("throttling and quota errors map to 429 rate_limit_error", () => {
  for (const name of ["ThrottlingException", "ServiceQuotaExceededException"]) {
    const m = mapBedrockError(sdkError(name, "Too many requests", 429));
    assert.equal(m.status, 429);
    assert.equal(m.type, "rate_limit_error");
    assert.match(m.message, /^Bedrock: /);
  }
});

Deno.test("each known Bedrock exception maps to its Anthropic status and type", () => {
  const cases: [string, number, string][] = [
    ["ValidationException", 400, "invalid_request_error"],
    ["AccessDeniedException", 403, "permission_error"],
    ["UnrecognizedClientException", 401, "authentication_error"],
    ["InvalidSignatureException", 401, "authentication_error"],
    ["ExpiredTokenException", 401, "authentication_error"],
    ["ResourceNotFoundException", 404, "not_found_error"],
    ["ModelTimeoutException", 504, "timeout_error"],
    ["ServiceUnavailableException", 529, "overloaded_error"],
    ["ModelNotReadyException", 529, "overloaded_error"],
    ["InternalServerException", 500, "api_error"],
    ["ModelStreamErrorException", 500, "api_error"],
  ];
  for (const [name, status, type] of cases) {
    const m = mapBedrockError(sdkError(name, "boom"));
    assert.deepEqual([m.status, m.type], [status, type], name);
  }
});

Deno.test("a model error that names the model's own status is mapped by that status", () => {
  const modelError = (name: string, originalStatusCode?: number) =>
    Object.assign(sdkError(name, "model failed"), { originalStatusCode });
  const cases: [string, number | undefined, number, string][] = [
    ["ModelStreamErrorException", 529, 529, "overloaded_error"],
    ["ModelStreamErrorException", 503, 529, "overloaded_error"],
    ["ModelStreamErrorException", 429, 429, "rate_limit_error"],
    ["ModelErrorException", 400, 400, "invalid_request_error"],
    ["ModelStreamErrorException", 500, 500, "api_error"],
    ["ModelStreamErrorException", undefined, 500, "api_error"],
  ];
  for (const [name, original, status, type] of cases) {
    const m = mapBedrockError(modelError(name, original));
    assert.deepEqual([m.status, m.type], [status, type], `${name} ${original}`);
  }
});

Deno.test("an unknown error name falls back to the HTTP status, then to 502 api_error", () => {
  assert.deepEqual(
    [
      mapBedrockError(sdkError("WeirdException", "x", 503)).status,
      mapBedrockError(sdkError("W", "x", 503)).type,
    ],
    [529, "overloaded_error"],
  );
  assert.equal(mapBedrockError(sdkError("WeirdException", "x", 418)).status, 502);
  const net = mapBedrockError(new TypeError("error sending request for url"));
  assert.deepEqual([net.status, net.type], [502, "api_error"]);
  assert.equal(mapBedrockError("what").status, 502);
  assert.equal(mapBedrockError(undefined).message, "Bedrock: unknown error");
});

Deno.test("the message names the Bedrock exception and never carries credentials", () => {
  const m = mapBedrockError(
    sdkError(
      "UnrecognizedClientException",
      "bad key AKIAIOSFODNN7EXAMPLE with Authorization: Bearer ABSKQmVkcm9ja0FQSUtleS1zZWNyZXQ= Signature=abcdef0123",
    ),
  );
  assert.match(m.message, /^Bedrock: UnrecognizedClientException: /);
  assert.doesNotMatch(m.message, /AKIAIOSFODNN7EXAMPLE/);
  assert.doesNotMatch(m.message, /ABSKQmVk/);
  assert.doesNotMatch(m.message, /abcdef0123/);
});

Deno.test("long messages are cut so an error body stays small", () => {
  const m = mapBedrockError(sdkError("ValidationException", "x".repeat(5000)));
  assert.ok(m.message.length < 600);
});

Deno.test("anthropicErrorBody and sseErrorEvent produce Anthropic's wire shapes", () => {
  assert.deepEqual(JSON.parse(anthropicErrorBody("rate_limit_error", "slow down")), {
    type: "error",
    error: { type: "rate_limit_error", message: "slow down" },
  });
  assert.equal(
    sseErrorEvent("overloaded_error", "Overloaded"),
    'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
  );
});

Deno.test("Bedrock out of reach is said plainly: which host, and why (DNS, refused), still a retryable 502", () => {
  const dns = new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (https://bedrock-runtime.us-east-1.amazonaws.com/model/x/invoke): " +
        "client error (Connect): dns error: failed to lookup address information: Name or service not known",
    ),
  });
  const mapped = mapBedrockError(dns);
  assert.deepEqual([mapped.status, mapped.type], [502, "api_error"]);
  assert.equal(
    mapped.message,
    "Bedrock: the proxy cannot reach bedrock-runtime.us-east-1.amazonaws.com: its name could not be resolved (DNS)",
  );
  const refused = mapBedrockError(
    new TypeError(
      "error sending request for url (http://127.0.0.1:9/model/x/invoke): tcp connect error: " +
        "Connection refused (os error 111)",
    ),
  );
  assert.equal(refused.message, "Bedrock: the proxy cannot reach 127.0.0.1: the connection was refused");
  // Anything else keeps its own words.
  assert.equal(
    mapBedrockError(new TypeError("error sending request for url")).message,
    "Bedrock: TypeError: error sending request for url",
  );
});

Deno.test("a Bedrock exception whose name holds a network word is not taken for a network failure", () => {
  const m = mapBedrockError(Object.assign(new Error("scripted"), { name: "ResourceNotFoundException" }));
  assert.equal(m.message, "Bedrock: ResourceNotFoundException: scripted");
});
