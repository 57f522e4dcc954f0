import assert from "node:assert/strict";
import { createLogger, redactFields, redactPath } from "./log.ts";

const KEY = "ak_Zq3x9V0mB7kLpQ2rS8tU1wY4zA6cE5gH3jK9nM0pR2s";

Deno.test("access keys in /ak/ paths are reduced to a prefix", () => {
  assert.equal(redactPath(`/ak/${KEY}/v1/messages?beta=true`), "/ak/ak_Zq3x…/v1/messages?beta=true");
  assert.equal(redactPath(`https://proxy/ak/${KEY}`), "https://proxy/ak/ak_Zq3x…");
  assert.equal(redactPath("/health"), "/health");
});

Deno.test("an access key outside /ak/ (a base URL without its /ak/ segment) is reduced to a prefix too", () => {
  assert.equal(redactPath(`/${KEY}/v1/messages`), "/ak_Zq3x…/v1/messages");
  assert.equal(redactPath(`/akX/${KEY}/v1/messages`), "/akX/ak_Zq3x…/v1/messages");
  assert.equal(redactFields({ path: `/${KEY}/v1/messages` }).path, "/ak_Zq3x…/v1/messages");
  assert.equal(redactPath("/v1/messages?ak_=1"), "/v1/messages?ak_=1", "not a key");
});

Deno.test("secret fields are replaced, nested and case-insensitively", () => {
  const out = redactFields({
    Authorization: "Bearer sk-ant-oat01-secret",
    headers: { "x-api-key": "sk-ant-api03-secret", "anthropic-version": "2023-06-01" },
    password: "hunter2",
    aws_secret_access_key: "wJalr",
    bedrock_api_key: "ABSK",
    url: `/ak/${KEY}/v1/models`,
    status: 401,
  });
  const text = JSON.stringify(out);
  for (const secret of ["sk-ant-oat01-secret", "sk-ant-api03-secret", "hunter2", "wJalr", "ABSK", KEY]) {
    assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
  }
  assert.equal((out.headers as Record<string, string>)["anthropic-version"], "2023-06-01");
  assert.equal(out.status, 401);
});

Deno.test("log lines are single JSON objects with level, message and redacted fields", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "info", sink: (l) => lines.push(l), now: () => new Date(0) });
  log.debug("hidden");
  log.child({ request_id: "r1" }).info("request", {
    path: `/ak/${KEY}/v1/messages`,
    headers: new Headers({ authorization: "Bearer x" }),
  });
  log.error("failed", { error: new Error(`bad key /ak/${KEY}`) });
  assert.equal(lines.length, 2);
  const first = JSON.parse(lines[0]);
  assert.deepEqual(first, {
    time: "1970-01-01T00:00:00.000Z",
    level: "info",
    msg: "request",
    request_id: "r1",
    path: "/ak/ak_Zq3x…/v1/messages",
    headers: { authorization: "[redacted]" },
  });
  assert.ok(!lines[1].includes(KEY));
});
