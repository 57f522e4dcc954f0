import assert from "node:assert/strict";
import { FAKE_BEDROCK_API_KEY } from "./fakes.ts";

/** Starts `deno task fakes` with `args`; resolves once it has printed its settings. */
async function fakes(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      new URL("./fakes.ts", import.meta.url).pathname,
      ...args,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("Ctrl-C stops both fakes.")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`fakes ended before printing its settings: ${text}`);
    text += value;
  }
  reader.releaseLock();
  const anthropic = /fake Anthropic API: (\S+)/.exec(text)![1];
  const bedrock = /fake Bedrock: +(\S+)/.exec(text)![1];
  return { child, text, anthropic, bedrock };
}

const MESSAGE = JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 10, messages: [] });

Deno.test("deno task fakes serves both fakes and prints how to start the proxy against them; SIGTERM stops it", async () => {
  const f = await fakes([]);
  try {
    assert.ok(f.text.includes(`PROXY_PLAN_API_URL=${f.anthropic} PROXY_BEDROCK_ENDPOINT=${f.bedrock}`));
    assert.ok(f.text.includes(`"bedrock_api_key":"${FAKE_BEDROCK_API_KEY}"`));
    const res = await fetch(`${f.anthropic}/v1/messages`, {
      method: "POST",
      headers: {
        "x-api-key": "sk-ant-fake",
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
      },
      body: MESSAGE,
    });
    assert.equal(res.status, 200);
    assert.equal((await res.json()).type, "message");
  } finally {
    f.child.kill("SIGTERM");
    assert.equal((await f.child.status).code, 0);
  }
});

Deno.test("deno task fakes --overloaded answers every request 529, so each falls back", async () => {
  const f = await fakes(["--overloaded"]);
  try {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${f.anthropic}/v1/messages`, {
        method: "POST",
        headers: { "x-api-key": "sk-ant-fake", "content-type": "application/json" },
        body: MESSAGE,
      });
      assert.equal(res.status, 529);
      assert.equal((await res.json()).error.type, "overloaded_error");
    }
  } finally {
    f.child.kill("SIGTERM");
    await f.child.status;
  }
});
