import assert from "node:assert/strict";
import {
  anthropicOnlyTool,
  BEDROCK_BODY_FIELDS,
  bedrockBetas,
  DEFAULT_BEDROCK_BETAS,
  takesStructuredOutputs,
  toBedrockBody,
  type TranslateOptions,
} from "./translate.ts";

const OPTS: TranslateOptions = { allowedBetas: DEFAULT_BEDROCK_BETAS };

function decode(bytes: Uint8Array): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** Everything Claude Code and the SDKs put in a Messages request that Bedrock also understands. */
function richBody(): Record<string, unknown> {
  return {
    model: "claude-sonnet-4-5-20250929",
    stream: true,
    max_tokens: 32000,
    system: [
      { type: "text", text: "You are Claude Code." },
      { type: "text", text: "Project context…", cache_control: { type: "ephemeral" } },
    ],
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: "Look at this", cache_control: { type: "ephemeral", ttl: "1h" } },
          { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
          {
            type: "document",
            source: { type: "base64", media_type: "application/pdf", data: "JVBERi0=" },
            title: "spec.pdf",
            citations: { enabled: true },
          },
        ],
      },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: "Let me think…", signature: "EqQBCkYIBRgCKkDx" },
          { type: "redacted_thinking", data: "EmwKAhgBEgy3" },
          { type: "tool_use", id: "toolu_01", name: "Read", input: { file_path: "/a.ts" } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_01", content: [{ type: "text", text: "file body" }] },
          { type: "text", text: 'ünïcødé ✓ \u2028 "quotes"' },
        ],
      },
    ],
    tools: [
      {
        name: "Read",
        description: "Reads a file",
        input_schema: {
          type: "object",
          properties: { file_path: { type: "string" } },
          required: ["file_path"],
        },
        cache_control: { type: "ephemeral" },
      },
      { type: "bash_20250124", name: "bash" },
    ],
    tool_choice: { type: "auto", disable_parallel_tool_use: false },
    thinking: { type: "enabled", budget_tokens: 10000 },
    stop_sequences: ["\n\nHuman:"],
    temperature: 1,
    top_k: 40,
    top_p: 0.99,
  };
}

Deno.test("a rich Messages body reaches Bedrock unchanged apart from model, stream and the version", () => {
  const input = richBody();
  const snapshot = structuredClone(input);
  const out = decode(toBedrockBody(input, [], OPTS));

  const expected: Record<string, unknown> = { ...snapshot, anthropic_version: "bedrock-2023-05-31" };
  delete expected.model;
  delete expected.stream;
  assert.deepEqual(out, expected);
  assert.deepEqual(input, snapshot, "the caller's object is not modified");
});

Deno.test("anthropic_version is set, and model and stream are removed", () => {
  const out = decode(
    toBedrockBody(
      { model: "m", stream: false, anthropic_version: "2023-06-01", max_tokens: 1, messages: [] },
      [],
      OPTS,
    ),
  );
  assert.equal(out.anthropic_version, "bedrock-2023-05-31");
  assert.equal("model" in out, false);
  assert.equal("stream" in out, false);
  assert.equal("anthropic_beta" in out, false, "no betas → no field");
});

Deno.test("anthropic-beta header values become a filtered anthropic_beta array", () => {
  const out = decode(
    toBedrockBody({ max_tokens: 1, messages: [] }, [
      "claude-code-20250219,interleaved-thinking-2025-05-14, fine-grained-tool-streaming-2025-05-14",
      "oauth-2025-04-20 , context-1m-2025-08-07,interleaved-thinking-2025-05-14",
    ], OPTS),
  );
  assert.deepEqual(out.anthropic_beta, [
    "interleaved-thinking-2025-05-14",
    "fine-grained-tool-streaming-2025-05-14",
    "context-1m-2025-08-07",
  ]);
});

Deno.test("only the operator's allowed betas are forwarded", () => {
  assert.deepEqual(bedrockBetas(["a,b", "c"], ["c", "a"]), ["a", "c"]);
  assert.deepEqual(bedrockBetas(["x", ""], []), []);
  assert.deepEqual(bedrockBetas([" A "], ["a"]), ["a"]);
});

Deno.test("tool search's Anthropic beta goes to Bedrock under Bedrock's name, once", () => {
  const header = ["claude-code-20250219,advanced-tool-use-2025-11-20", "tool-search-tool-2025-10-19"];
  assert.deepEqual(bedrockBetas(header, DEFAULT_BEDROCK_BETAS), ["tool-search-tool-2025-10-19"]);
  // An operator who takes tool search off Bedrock's list gets neither name.
  assert.deepEqual(bedrockBetas(header, ["interleaved-thinking-2025-05-14"]), []);
});

Deno.test("fields Bedrock rejects are dropped, and the lists are the operator's to change", () => {
  const body = {
    max_tokens: 1,
    messages: [],
    metadata: { user_id: "u" },
    service_tier: "auto",
    inference_geo: "us",
    speed: "fast",
    container: "c",
    mcp_servers: [],
    output_config: { effort: "high" },
  };
  const out = decode(toBedrockBody(body, [], OPTS));
  for (const f of ["metadata", "service_tier", "inference_geo", "speed", "container", "mcp_servers"]) {
    assert.equal(f in out, false, f);
  }
  assert.deepEqual(out.output_config, { effort: "high" });

  // Dropped fields go even when allowed; allowed fields replace the built-in list.
  const custom = decode(toBedrockBody(body, [], { ...OPTS, droppedFields: ["output_config"] }));
  assert.equal("output_config" in custom, false);
  assert.equal("metadata" in custom, false, "still not on Bedrock's list");
  const widened = decode(
    toBedrockBody(body, [], { ...OPTS, allowedFields: [...BEDROCK_BODY_FIELDS, "metadata"] }),
  );
  assert.deepEqual(widened.metadata, { user_id: "u" });
  assert.equal("speed" in widened, false);
});

Deno.test("Anthropic-only fields Claude Code 2.1.332 sends never reach Bedrock; their names, not values, are reported", () => {
  const input: Record<string, unknown> = {
    ...richBody(),
    metadata: { user_id: "user_abc" },
    fallback_credit_token: "fct_secret_value",
    resumption: { type: "resume", token: "rsm_secret_value" },
    context_hint: { enabled: true, target_tokens_saved: 20000 },
    fallbacks: [{ model: "claude-sonnet-4-5" }],
  };
  const reported: string[][] = [];
  const out = decode(toBedrockBody(input, [], { ...OPTS, onDropped: (f) => reported.push(f) }));

  for (const f of ["fallback_credit_token", "resumption", "context_hint", "fallbacks", "metadata"]) {
    assert.equal(f in out, false, f);
  }
  // Everything else is exactly what an ordinary Claude Code request becomes.
  const expected: Record<string, unknown> = { ...richBody(), anthropic_version: "bedrock-2023-05-31" };
  delete expected.model;
  delete expected.stream;
  assert.deepEqual(out, expected);
  assert.deepEqual(reported, [[
    "metadata",
    "fallback_credit_token",
    "resumption",
    "context_hint",
    "fallbacks",
  ]]);
  assert.ok(!JSON.stringify(reported).includes("secret_value"), "values are never reported");

  const string = decode(toBedrockBody({ max_tokens: 1, messages: [], fallbacks: "default" }, [], OPTS));
  assert.deepEqual(string, { anthropic_version: "bedrock-2023-05-31", max_tokens: 1, messages: [] });
});

Deno.test("every field on Bedrock's list passes, gated ones with their beta, and nothing is reported", () => {
  const body: Record<string, unknown> = {};
  for (const f of BEDROCK_BODY_FIELDS) body[f] = f === "output_config" ? { effort: "low" } : { marker: f };
  const betas = ["context-management-2025-06-27,compact-2026-09-04"];
  const allowedBetas = [...DEFAULT_BEDROCK_BETAS, "compact-2026-09-04"];
  const reported: string[][] = [];
  const out = decode(toBedrockBody(body, betas, { allowedBetas, onDropped: (f) => reported.push(f) }));
  for (const f of BEDROCK_BODY_FIELDS) assert.deepEqual(out[f], body[f], f);
  assert.deepEqual(reported, []);

  const withoutBetas = decode(toBedrockBody(body, [], OPTS));
  assert.equal("context_management" in withoutBetas, false);
  assert.equal("compaction" in withoutBetas, false, "compact-2026-09-04 is not on the default beta list");
});

Deno.test("context_management is kept only when its beta goes to Bedrock too", () => {
  const body = { max_tokens: 1, messages: [], context_management: { edits: [] } };
  assert.equal("context_management" in decode(toBedrockBody(body, [], OPTS)), false);
  const withBeta = decode(toBedrockBody(body, ["context-management-2025-06-27"], OPTS));
  assert.deepEqual(withBeta.context_management, { edits: [] });
  assert.deepEqual(withBeta.anthropic_beta, ["context-management-2025-06-27"]);
  const notAllowed = decode(
    toBedrockBody(body, ["context-management-2025-06-27"], { ...OPTS, allowedBetas: [] }),
  );
  assert.equal("context_management" in notAllowed, false);
  const ungated = decode(toBedrockBody(body, [], { ...OPTS, betaGatedFields: {} }));
  assert.deepEqual(ungated.context_management, { edits: [] });
});

const SCHEMA = { type: "object", properties: { title: { type: "string" } }, required: ["title"] };

Deno.test("for a model without structured outputs, output_config keeps only effort and a format becomes a system instruction", () => {
  const asked = {
    model: "claude-opus-4-5",
    max_tokens: 64,
    system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
    messages: [{ role: "user", content: "Name this chat" }],
    output_config: { effort: "high", format: { type: "json_schema", schema: SCHEMA } },
  };
  const out = decode(toBedrockBody(asked, [], OPTS));
  assert.deepEqual(out.output_config, { effort: "high" }, "the model takes effort, and refuses format");
  const system = out.system as Array<Record<string, unknown>>;
  assert.deepEqual(system[0], asked.system[0], "the cached prefix is unchanged");
  assert.equal(system.length, 2);
  assert.equal(system[1].type, "text");
  assert.match(system[1].text as string, /only with JSON/);
  assert.ok((system[1].text as string).includes(JSON.stringify(SCHEMA)), "the schema is given whole");
  assert.deepEqual(out.messages, asked.messages);
  assert.deepEqual(asked.output_config.format.schema, SCHEMA, "the input object is not modified");
});

Deno.test("the structured-outputs beta's output_format and a string system prompt are translated the same way", () => {
  const out = decode(toBedrockBody(
    {
      model: "claude-sonnet-4-5",
      max_tokens: 64,
      system: "Be brief.",
      messages: [{ role: "user", content: "Name this chat" }],
      output_format: { type: "json_schema", schema: SCHEMA },
    },
    [],
    OPTS,
  ));
  assert.equal(out.output_format, undefined);
  assert.equal(out.output_config, undefined, "nothing is left of it");
  const system = out.system as Array<Record<string, unknown>>;
  assert.deepEqual(system[0], { type: "text", text: "Be brief." });
  assert.ok((system[1].text as string).includes(JSON.stringify(SCHEMA)));

  const bare = decode(toBedrockBody(
    {
      max_tokens: 8,
      messages: [],
      output_config: { format: { type: "json_schema", schema: SCHEMA } },
    },
    [],
    OPTS,
  ));
  assert.equal(bare.output_config, undefined, "an output_config holding only a format goes");
  assert.equal((bare.system as unknown[]).length, 1, "a body without a system prompt gets one");
});

Deno.test("a body without structured output keeps its system prompt and output_config as they are", () => {
  const asked = { max_tokens: 8, system: "Hi", messages: [], output_config: { effort: "low" } };
  const out = decode(toBedrockBody(asked, [], OPTS));
  assert.equal(out.system, "Hi");
  assert.deepEqual(out.output_config, { effort: "low" });
});

Deno.test("a message's own output_config goes unless its beta goes to Bedrock too; other messages are untouched", () => {
  const messages = [
    { role: "user", content: "Hi" },
    { role: "system", content: "Think less now.", output_config: { effort: "medium" } },
  ];
  const asked = { max_tokens: 8, messages };
  // Claude Code 2.1.332 sends it with per-turn-control-2026-07-01, which Bedrock does not know.
  const out = decode(toBedrockBody(asked, ["per-turn-control-2026-07-01,effort-2025-11-24"], OPTS));
  assert.deepEqual(out.messages, [messages[0], { role: "system", content: "Think less now." }]);
  assert.deepEqual(out.anthropic_beta, ["effort-2025-11-24"]);
  assert.equal(asked.messages[1].output_config?.effort, "medium", "the input object is not modified");
  const allowed = { ...OPTS, allowedBetas: [...OPTS.allowedBetas, "per-turn-control-2026-07-01"] };
  assert.deepEqual(decode(toBedrockBody(asked, ["per-turn-control-2026-07-01"], allowed)).messages, messages);
});

Deno.test("Claude Code's thinking-token-count beta goes to Bedrock, as its own Bedrock mode sends it", () => {
  const out = decode(
    toBedrockBody({ max_tokens: 8, messages: [] }, ["thinking-token-count-2026-05-13"], OPTS),
  );
  assert.deepEqual(out.anthropic_beta, ["thinking-token-count-2026-05-13"]);
});

Deno.test("of two structured-output formats, the one with a schema is used", () => {
  const out = decode(toBedrockBody(
    {
      max_tokens: 8,
      messages: [],
      output_format: { type: "json_schema" },
      output_config: { format: { type: "json_schema", schema: SCHEMA } },
    },
    [],
    OPTS,
  ));
  assert.ok((out.system as Array<{ text: string }>)[0].text.includes(JSON.stringify(SCHEMA)));
});

Deno.test("for a model that takes structured outputs, the format goes to Bedrock as output_config.format", () => {
  const opts = { ...OPTS, structuredOutputs: true };
  const format = { type: "json_schema", schema: SCHEMA };
  const asked = {
    max_tokens: 64,
    system: "Be brief.",
    messages: [{ role: "user", content: "Name this chat" }],
    output_config: { effort: "high", format },
  };
  const out = decode(toBedrockBody(asked, [], opts));
  assert.deepEqual(out.output_config, { effort: "high", format });
  assert.equal(out.system, "Be brief.", "no instruction is added");

  // The beta's deprecated output_format becomes output_config.format.
  const beta = decode(toBedrockBody({ max_tokens: 8, messages: [], output_format: format }, [], opts));
  assert.equal("output_format" in beta, false);
  assert.deepEqual(beta.output_config, { format });
  assert.equal("system" in beta, false);

  // Of two formats, still the one with a schema.
  const two = decode(toBedrockBody(
    { max_tokens: 8, messages: [], output_format: { type: "json_schema" }, output_config: { format } },
    [],
    opts,
  ));
  assert.deepEqual(two.output_config, { format });
});

Deno.test("output_config keys Bedrock does not take are dropped and reported by name", () => {
  const reported: string[][] = [];
  const out = decode(toBedrockBody(
    { max_tokens: 8, messages: [], output_config: { effort: "low", task_budget: { total: 1000 } } },
    [],
    { ...OPTS, onDropped: (f) => reported.push(f) },
  ));
  assert.deepEqual(out.output_config, { effort: "low" });
  assert.deepEqual(reported, [["output_config.task_budget"]]);
});

Deno.test("the models AWS lists for structured outputs take the format, under any profile or ARN; others do not", () => {
  for (
    const id of [
      "anthropic.claude-sonnet-4-5-20250929-v1:0",
      "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
      "jp.anthropic.claude-haiku-4-5-20251001-v1:0",
      "us.anthropic.claude-opus-4-5-20251101-v1:0",
      "global.anthropic.claude-opus-4-6-v1",
      "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-6-v1",
      "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0",
    ]
  ) assert.equal(takesStructuredOutputs(id), true, id);
  for (
    const id of [
      "global.anthropic.claude-sonnet-4-20250514-v1:0",
      "anthropic.claude-3-5-haiku-20241022-v1:0",
      "global.anthropic.claude-haiku-5-5",
      "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
      "",
    ]
  ) assert.equal(takesStructuredOutputs(id), false, id);
});

/** The system prompt Claude Code sends the Anthropic API (2.1.332): its attribution line first, cached blocks. */
const CLAUDE_CODE_SYSTEM = [
  { type: "text", text: "x-anthropic-billing-header: cc_version=2.1.332.a1b; cc_entrypoint=cli; cch=00000;" },
  {
    type: "text",
    text: "You are Claude Code, Anthropic's official CLI for Claude.",
    cache_control: { type: "ephemeral", ttl: "1h", scope: "global" },
  },
  {
    type: "text",
    text: "Project instructions…",
    cache_control: { type: "ephemeral", ttl: "1h", scope: "global" },
  },
];

Deno.test("Claude Code's attribution line is left out of the system prompt: Bedrock refuses it as reserved", () => {
  const dropped: string[] = [];
  const body = { model: "m", max_tokens: 10, system: CLAUDE_CODE_SYSTEM, messages: [] };
  const out = decode(toBedrockBody(body, [], { ...OPTS, onDropped: (f) => dropped.push(...f) }));
  assert.deepEqual(
    (out.system as Array<{ text: string }>).map((b) => b.text),
    ["You are Claude Code, Anthropic's official CLI for Claude.", "Project instructions…"],
  );
  assert.ok(dropped.includes("system.x-anthropic-billing-header"));
  assert.equal(body.system.length, 3, "the request body itself is not changed");
  // A string system prompt that starts with it loses that line only; one that is only that line goes.
  const line = "x-anthropic-billing-header: cc_version=1; cc_entrypoint=cli;";
  const asString = decode(
    toBedrockBody({ max_tokens: 1, system: `${line}\nBe brief.`, messages: [] }, [], OPTS),
  );
  assert.equal(asString.system, "Be brief.");
  assert.equal(
    decode(toBedrockBody({ max_tokens: 1, system: line, messages: [] }, [], OPTS)).system,
    undefined,
  );
  const only = [{ type: "text", text: line }];
  assert.equal(
    decode(toBedrockBody({ max_tokens: 1, system: only, messages: [] }, [], OPTS)).system,
    undefined,
  );
  // The same words anywhere else are the user's text, kept.
  const quoted = [{ type: "text", text: `Explain "${line}"` }];
  assert.deepEqual(
    decode(toBedrockBody({ max_tokens: 1, system: quoted, messages: [] }, [], OPTS)).system,
    quoted,
  );
});

Deno.test("cache_control loses its scope everywhere unless the scope beta goes to Bedrock; the rest is kept", () => {
  const scoped = { type: "ephemeral", ttl: "1h", scope: "global" };
  const body = {
    model: "m",
    max_tokens: 10,
    system: CLAUDE_CODE_SYSTEM,
    tools: [{ name: "Read", input_schema: { type: "object" }, cache_control: scoped }],
    messages: [
      { role: "user", content: [{ type: "text", text: "hi", cache_control: scoped }] },
      { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "Read", input: { scope: "x" } }] },
      {
        role: "user",
        content: [{
          type: "tool_result",
          tool_use_id: "t1",
          content: [{ type: "text", text: "file", cache_control: scoped }],
        }, {
          type: "document",
          source: { type: "content", content: [{ type: "text", text: "page", cache_control: scoped }] },
        }],
      },
    ],
  };
  const before = JSON.stringify(body);
  const dropped: string[] = [];
  const betas = ["claude-code-20250219,prompt-caching-scope-2026-01-05,context-management-2025-06-27"];
  const out = decode(toBedrockBody(body, betas, { ...OPTS, onDropped: (f) => dropped.push(...f) }));
  const text = JSON.stringify(out);
  assert.ok(!text.includes('"scope":"global"'), text);
  assert.equal(text.match(/"cache_control":\{"type":"ephemeral","ttl":"1h"\}/g)?.length, 6);
  assert.ok(
    text.includes('"input":{"scope":"x"}'),
    "a tool's own input named scope is the model's, untouched",
  );
  assert.ok(dropped.includes("cache_control.scope"));
  assert.equal(JSON.stringify(body), before, "the request body itself is not changed");
  assert.deepEqual(out.anthropic_beta, ["context-management-2025-06-27"]);

  // An operator who allows the beta for Bedrock gets the scope sent as the client gave it.
  const allowed = [...DEFAULT_BEDROCK_BETAS, "prompt-caching-scope-2026-01-05"];
  const kept = decode(toBedrockBody(body, betas, { allowedBetas: allowed }));
  assert.equal(JSON.stringify(kept).match(/"scope":"global"/g)?.length, 6);
});

Deno.test("thinking.display goes only to models that take it; the rest of thinking stays", () => {
  const body = { max_tokens: 32000, thinking: { type: "enabled", budget_tokens: 31999, display: "omitted" } };
  const dropped: string[] = [];
  const older = decode(
    toBedrockBody(body, [], { ...OPTS, thinkingDisplay: false, onDropped: (f) => dropped.push(...f) }),
  );
  assert.deepEqual(older.thinking, { type: "enabled", budget_tokens: 31999 });
  assert.deepEqual(dropped, ["thinking.display"]);
  assert.equal(body.thinking.display, "omitted", "the request body itself is not changed");
  assert.deepEqual(
    decode(toBedrockBody(body, [], { ...OPTS, thinkingDisplay: true })).thinking,
    body.thinking,
  );
  assert.deepEqual(decode(toBedrockBody(body, [], OPTS)).thinking, body.thinking, "kept when not said");
});

Deno.test("anthropicOnlyTool names the server tools only the Anthropic API runs, not tools Bedrock takes", () => {
  const tools = (...types: string[]) => ({ tools: types.map((type) => ({ type, name: type })) });
  assert.equal(anthropicOnlyTool(tools("web_search_20250305")), "web_search_20250305");
  assert.equal(anthropicOnlyTool(tools("bash_20250124", "web_fetch_20250910")), "web_fetch_20250910");
  assert.equal(anthropicOnlyTool(tools("code_execution_20250825")), "code_execution_20250825");
  assert.equal(anthropicOnlyTool(tools("bash_20250124", "text_editor_20250728", "memory_20250818")), null);
  assert.equal(
    anthropicOnlyTool({ tools: [{ name: "web_search", input_schema: { type: "object" } }] }),
    null,
  );
  assert.equal(anthropicOnlyTool({}), null);
});
