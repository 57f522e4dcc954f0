/**
 * The real Claude Code CLI (`claude -p`, npm `@anthropic-ai/claude-code`) through the proxy, as a developer runs
 * it: `ANTHROPIC_BASE_URL=<proxy>/ak/<key>` and their own Anthropic credentials, against the fake Anthropic API
 * and the fake Bedrock. Runs when `PROXY_TEST_CLAUDE_CODE` names the `claude` binary (`.ci/run` installs a pinned
 * version); otherwise these tests are reported as ignored.
 */
import assert from "node:assert/strict";
import { freshDb } from "./helpers/db.ts";
import { startProxy, waitFor } from "./helpers/proxy.ts";
import type { ProxyFixture } from "./helpers/proxy.ts";
import { startFakeBedrock } from "./fakes/fake_bedrock.ts";
import type { FakeBedrock } from "./fakes/fake_bedrock.ts";
import { sql } from "../lib/db/sql.ts";
import type { Db } from "../lib/db/db.ts";

const CLAUDE = Deno.env.get("PROXY_TEST_CLAUDE_CODE") ?? "";
const IAM = { id: "AKIAFAKEBEDROCK00001", secret: "fake/bedrock/secret/key/0123456789abcdef" };

/** What `claude -p … --output-format json` prints last, in the fields these tests read. */
interface ClaudeResult {
  is_error: boolean;
  result: string;
  api_error_status: number | null;
  usage: {
    input_tokens: number;
    output_tokens: number;
    cache_read_input_tokens: number;
    cache_creation_input_tokens: number;
  };
}

/** `claude -p prompt` in `home` (an empty project and home), with only the given environment. */
function claudeCommand(
  home: string,
  env: Record<string, string>,
  prompt: string,
  extra: { args?: string[]; signal?: AbortSignal; output: "piped" | "null" },
): Deno.Command {
  return new Deno.Command(CLAUDE, {
    args: ["-p", prompt, "--output-format", "json", ...(extra.args ?? [])],
    cwd: home,
    clearEnv: true,
    env: {
      HOME: home,
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      DISABLE_TELEMETRY: "1",
      DISABLE_AUTOUPDATER: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      ...env,
    },
    stdout: extra.output,
    stderr: extra.output,
    signal: extra.signal,
  });
}

/** Runs `claude -p prompt` in an empty project and home, with only the given environment; bounded in time. */
async function claude(
  env: Record<string, string>,
  prompt = "say hi",
  timeoutMs = 60_000,
  extraArgs: string[] = [],
) {
  const home = await Deno.makeTempDir({ prefix: "claude-home-" });
  const started = Date.now();
  try {
    const out = await claudeCommand(home, env, prompt, {
      args: extraArgs,
      signal: AbortSignal.timeout(timeoutMs),
      output: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const last = stdout.trim().split("\n").at(-1) ?? "";
    let result: ClaudeResult;
    try {
      result = JSON.parse(last);
    } catch {
      throw new Error(
        `claude printed no JSON result (exit ${out.code}):\n${stdout}\n${
          new TextDecoder().decode(out.stderr)
        }`,
      );
    }
    return { code: out.code, result, ms: Date.now() - started };
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

interface Fixture {
  db: Db;
  p: ProxyFixture;
  bedrock: FakeBedrock;
  close(): Promise<void>;
}

async function setUp(): Promise<Fixture> {
  const { db, cleanup } = await freshDb("pglite");
  const bedrock = await startFakeBedrock({
    iamCredentials: { [IAM.id]: IAM.secret },
    reply: {
      text: ["Hello ", "from ", "Bedrock."],
      usage: {
        input_tokens: 40,
        output_tokens: 7,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 20,
      },
    },
  });
  const p = await startProxy(db, {
    env: { PROXY_BEDROCK_ENDPOINT: bedrock.url, PROXY_BEDROCK_REGION: "us-east-1" },
    upstream: { deltas: 5 },
  });
  const h = await p.t.auth();
  const put = await p.t.call("PUT", `/api/access-keys/${p.keyId}/bedrock-key`, {
    aws_access_key_id: IAM.id,
    aws_secret_access_key: IAM.secret,
  }, h);
  assert.equal(put.status, 200, JSON.stringify(put.body));
  return {
    db,
    p,
    bedrock,
    async close() {
      await p.close();
      await bedrock.close();
      await cleanup();
    },
  };
}

/** The one usage row of the only request, once the recorder has it. */
async function onlyRow(f: Fixture) {
  await waitFor(() => f.p.t.services.recorder.stats().queued >= 1, 5000, "a usage row queued");
  await f.p.t.services.recorder.flush();
  const rows = await f.db.query<Record<string, unknown>>(sql`SELECT * FROM token_usages`);
  assert.equal(rows.length, 1, JSON.stringify(rows));
  return rows[0];
}

function assertSameUsage(row: Record<string, unknown>, usage: ClaudeResult["usage"]) {
  assert.deepEqual(
    {
      input: Number(row.input_tokens),
      output: Number(row.output_tokens),
      cacheRead: Number(row.cache_read_input_tokens),
      cacheWrite: Number(row.cache_creation_input_tokens),
    },
    {
      input: usage.input_tokens,
      output: usage.output_tokens,
      cacheRead: usage.cache_read_input_tokens,
      cacheWrite: usage.cache_creation_input_tokens,
    },
    "the proxy recorded the tokens Claude Code reports",
  );
}

const test = (name: string, fn: (f: Fixture) => Promise<void>) =>
  Deno.test({ name, ignore: CLAUDE === "", sanitizeResources: false, sanitizeOps: false }, async () => {
    const f = await setUp();
    try {
      await fn(f);
    } finally {
      await f.close();
    }
  });

test("Claude Code answers through the proxy with its own API key; its tokens are recorded", async (f) => {
  const { code, result } = await claude({
    ANTHROPIC_BASE_URL: f.p.baseUrl,
    ANTHROPIC_API_KEY: "sk-ant-api03-developer-own-key",
  });
  assert.equal(code, 0, JSON.stringify(result));
  assert.equal(result.is_error, false);
  assert.match(result.result, /^word0 of a streamed answer/);
  const sent = f.p.upstream.requests.filter((r) => r.pathAndQuery.startsWith("/v1/messages"));
  assert.ok(sent.length >= 1);
  for (const r of sent) {
    assert.equal(r.pathAndQuery, "/v1/messages?beta=true");
    assert.equal(r.headers.get("x-api-key"), "sk-ant-api03-developer-own-key");
    assert.match(r.headers.get("anthropic-beta") ?? "", /claude-code-/);
  }
  const row = await onlyRow(f);
  assert.equal(row.provider, "anthropic");
  assert.equal(row.status_code, 200);
  assert.equal(row.stream, true);
  assertSameUsage(row, result.usage);
});

test("Claude Code's login token (ANTHROPIC_AUTH_TOKEN) goes upstream as a bearer token", async (f) => {
  const { code, result } = await claude({
    ANTHROPIC_BASE_URL: f.p.baseUrl,
    ANTHROPIC_AUTH_TOKEN: "sk-ant-oat01-developer-login",
  });
  assert.equal(code, 0, JSON.stringify(result));
  const sent = f.p.upstream.requests.at(-1)!;
  assert.equal(sent.headers.get("authorization"), "Bearer sk-ant-oat01-developer-login");
  assert.equal(sent.headers.get("x-api-key"), null);
});

test("Anthropic overloaded: Claude Code gets Bedrock's answer, recorded as a fallback", async (f) => {
  f.p.upstream.script(
    ...Array.from({ length: 3 }, () => ({
      kind: "error" as const,
      status: 529,
      type: "overloaded_error",
      message: "Overloaded",
    })),
  );
  const { code, result } = await claude({
    ANTHROPIC_BASE_URL: f.p.baseUrl,
    ANTHROPIC_API_KEY: "sk-ant-api03-developer-own-key",
  });
  assert.equal(code, 0, JSON.stringify(result));
  assert.equal(result.result, "Hello from Bedrock.");
  assert.ok(f.bedrock.requests.length >= 1, "Bedrock was asked");
  const row = await onlyRow(f);
  assert.equal(row.provider, "bedrock");
  assert.equal(row.is_fallback, true);
  assert.equal(row.fallback_reason, "overloaded");
  assertSameUsage(row, result.usage);
});

test("a mistyped access key stops Claude Code at once with the proxy's reason, not after its retries", async (f) => {
  // Claude Code retries a 401 ten times with backoff (about three minutes) unless told the refusal is final.
  const { code, result, ms } = await claude(
    {
      ANTHROPIC_BASE_URL: `${f.p.origin}/ak/ak_${"x".repeat(43)}`,
      ANTHROPIC_API_KEY: "sk-ant-api03-developer-own-key",
    },
    "say hi",
    45_000,
  );
  assert.notEqual(code, 0);
  assert.equal(result.is_error, true);
  assert.equal(result.api_error_status, 401);
  assert.match(result.result, /invalid access key/);
  assert.ok(ms < 30_000, `Claude Code gave up after ${ms} ms`);
  assert.equal(f.p.upstream.requests.length, 0, "nothing reached Anthropic");
});

/**
 * Routes the fixture's user to Bedrock only, runs Claude Code once per model (each must get the fake Bedrock's
 * answer) and returns the usage rows, in order.
 */
async function askedOnBedrock(f: Fixture, models: string[]) {
  const h = await f.p.t.auth();
  const routed = await f.p.t.call(
    "PATCH",
    `/api/users/${f.p.userId}`,
    { routing_strategy: "bedrock_only" },
    h,
  );
  assert.equal(routed.status, 200);
  for (const model of models) {
    const { code, result } = await claude(
      { ANTHROPIC_BASE_URL: f.p.baseUrl, ANTHROPIC_API_KEY: "sk-ant-api03-developer-own-key" },
      "say hi",
      60_000,
      ["--model", model],
    );
    assert.equal(code, 0, `${model}: ${JSON.stringify(result)}`);
    assert.equal(result.result, "Hello from Bedrock.");
  }
  await waitFor(() => f.p.t.services.recorder.stats().queued >= models.length, 5000, "usage rows queued");
  await f.p.t.services.recorder.flush();
  return await f.db.query<{ model: string; model_served: string; status_code: number }>(
    sql`SELECT model, model_served, status_code FROM token_usages ORDER BY id`,
  );
}

test("Claude Code's model aliases are served on Bedrock by those models, not by the default", async (f) => {
  const aliases = ["sonnet", "opus", "haiku"];
  const rows = await askedOnBedrock(f, aliases);
  assert.equal(rows.length, aliases.length);
  for (const [i, row] of rows.entries()) {
    assert.match(row.model, new RegExp(`^claude-${aliases[i]}-`), "the name Claude Code asked for");
    // The Bedrock id names the same model (dated ids carry the date and a version suffix).
    assert.ok(
      row.model_served.includes(`anthropic.${row.model}`),
      `${row.model} was served by ${row.model_served}`,
    );
  }
});

test("Claude Code asking for an older model, or a name Bedrock does not serve, is answered on Bedrock", async (f) => {
  // Sonnet 4.5 refuses thinking.display, which Claude Code sends it on the Anthropic API; the default model
  // (Sonnet 4.5) standing in for a made-up name refuses Claude Code's adaptive thinking, effort and system turns.
  const rows = await askedOnBedrock(f, ["claude-sonnet-4-5-20250929", "claude-made-up-model"]);
  assert.deepEqual(rows.map((r) => [r.model, r.model_served, r.status_code]), [
    ["claude-sonnet-4-5-20250929", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", 200],
    ["claude-made-up-model", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", 200],
  ]);
});

test("Claude Code stopped while it waits for its answer: the upstream call is cancelled, recorded as 499", async (f) => {
  // Its requests carry tens of KB of system prompt and tools: the size at which Deno's own signal stays silent
  // before the answer's headers, and the proxy's socket watch (lib/net/peer_watch.ts) notices instead.
  f.p.upstream.script({ kind: "hang" });
  const home = await Deno.makeTempDir({ prefix: "claude-home-" });
  const child = claudeCommand(
    home,
    { ANTHROPIC_BASE_URL: f.p.baseUrl, ANTHROPIC_API_KEY: "sk-ant-api03-developer-own-key" },
    "say hi",
    { output: "null" },
  ).spawn();
  try {
    const messages = () => f.p.upstream.requests.filter((r) => r.pathAndQuery.startsWith("/v1/messages?"));
    await waitFor(() => messages().length === 1, 30_000, "Claude Code's request upstream");
    assert.ok(messages()[0].body.length > 1000, `a ${messages()[0].body.length}-byte body`);
    child.kill("SIGKILL"); // as a closed terminal: its connections end with the process
    await child.status;
    let cancelled = false;
    messages()[0].aborted.then(() => (cancelled = true));
    await waitFor(() => cancelled, 5000, "the upstream call cancelled");
    const row = await onlyRow(f);
    assert.deepEqual([row.status_code, row.error_type], [499, "client_closed_request"]);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* ended already */ }
    await f.p.upstream.close(); // a hang left unanswered would keep the proxy's shutdown waiting
    await Deno.remove(home, { recursive: true });
  }
});
