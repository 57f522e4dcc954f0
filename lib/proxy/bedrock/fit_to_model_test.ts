import assert from "node:assert/strict";
import { claudeVersion, fitToModel, takesThinkingDisplay } from "./fit_to_model.ts";

const SONNET_45 = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
const NEWER = {
  max_tokens: 32000,
  thinking: { type: "adaptive" },
  output_config: { effort: "high" },
  messages: [],
};

Deno.test("claudeVersion reads base ids, profiles and ARNs of every naming scheme", () => {
  const cases: Array<[string, number, string]> = [
    [SONNET_45, 405, "sonnet"],
    ["global.anthropic.claude-opus-4-10", 410, "opus"],
    ["us.anthropic.claude-sonnet-4-12-20270101-v1:0", 412, "sonnet"],
    ["anthropic.claude-sonnet-4-6", 406, "sonnet"],
    ["us.anthropic.claude-opus-4-20250514-v1:0", 400, "opus"],
    ["anthropic.claude-opus-4-1-20250805-v1:0", 401, "opus"],
    ["global.anthropic.claude-opus-5-5", 505, "opus"],
    ["anthropic.claude-3-7-sonnet-20250219-v1:0", 307, "sonnet"],
    ["anthropic.claude-3-haiku-20240307-v1:0", 300, "haiku"],
    ["arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0", 405, "haiku"],
  ];
  for (const [id, version, family] of cases) assert.deepEqual(claudeVersion(id), { version, family }, id);
  assert.equal(claudeVersion("arn:aws:bedrock:us-east-1:123:application-inference-profile/abc123"), null);
  assert.equal(claudeVersion("amazon.nova-pro-v1:0"), null);
});

Deno.test("a model before 4.6 gets manual thinking for adaptive and no effort; the body itself is unchanged", () => {
  const body = structuredClone(NEWER);
  const fitted = fitToModel(body, SONNET_45);
  assert.deepEqual(fitted, {
    max_tokens: 32000,
    thinking: { type: "enabled", budget_tokens: 31999 },
    messages: [],
  });
  assert.deepEqual(body, NEWER, "the input is not modified");
  // The budget stays under max_tokens; a format in output_config stays where effort goes.
  assert.deepEqual(
    fitToModel({
      ...NEWER,
      max_tokens: 8000,
      output_config: { effort: "low", format: { type: "json_schema" } },
    }, SONNET_45),
    {
      max_tokens: 8000,
      thinking: { type: "enabled", budget_tokens: 7999 },
      output_config: { format: { type: "json_schema" } },
      messages: [],
    },
  );
});

Deno.test("thinking goes where manual mode cannot take it: a forced tool, a small max_tokens, a model without it", () => {
  for (const tool_choice of [{ type: "any" }, { type: "tool", name: "Read" }]) {
    assert.equal(fitToModel({ ...NEWER, tool_choice }, SONNET_45).thinking, undefined);
  }
  assert.deepEqual(fitToModel({ ...NEWER, tool_choice: { type: "auto" } }, SONNET_45).thinking, {
    type: "enabled",
    budget_tokens: 31999,
  });
  assert.equal(fitToModel({ ...NEWER, max_tokens: 1024 }, SONNET_45).thinking, undefined);
  assert.equal(fitToModel(NEWER, "anthropic.claude-3-5-sonnet-20241022-v2:0").thinking, undefined);
});

Deno.test("Opus 4.5 keeps effort; 4.6 takes either thinking mode; 4.7 and later get adaptive for manual", () => {
  const opus45 = fitToModel(NEWER, "global.anthropic.claude-opus-4-5-20251101-v1:0");
  assert.deepEqual(opus45.output_config, { effort: "high" });
  assert.deepEqual(opus45.thinking, { type: "enabled", budget_tokens: 31999 });
  const manual = { ...NEWER, thinking: { type: "enabled", budget_tokens: 10000 } };
  assert.equal(
    fitToModel(NEWER, "global.anthropic.claude-sonnet-4-6"),
    NEWER,
    "a body that fits is returned as is",
  );
  assert.equal(fitToModel(manual, "global.anthropic.claude-sonnet-4-6"), manual);
  assert.deepEqual(fitToModel(manual, "global.anthropic.claude-opus-4-7").thinking, { type: "adaptive" });
  assert.deepEqual(fitToModel(manual, "global.anthropic.claude-opus-4-7").output_config, { effort: "high" });
  assert.equal(fitToModel(NEWER, "arn:aws:bedrock:us-east-1:1:application-inference-profile/x"), NEWER);
  const disabled = { ...NEWER, thinking: { type: "disabled" }, output_config: undefined };
  assert.equal(fitToModel(disabled, SONNET_45), disabled);
});

Deno.test("without thinking, Claude Code's clear_thinking context edit goes too; other edits stay", () => {
  const clearThinking = { type: "clear_thinking_20251015", keep: "all" };
  const clearTools = { type: "clear_tool_uses_20250919" };
  const forced = { ...NEWER, tool_choice: { type: "any" } };
  const both = fitToModel(
    { ...forced, context_management: { edits: [clearThinking, clearTools] } },
    SONNET_45,
  );
  assert.deepEqual(both.context_management, { edits: [clearTools] });
  assert.equal(
    fitToModel({ ...forced, context_management: { edits: [clearThinking] } }, SONNET_45).context_management,
    undefined,
  );
  const kept = fitToModel({ ...NEWER, context_management: { edits: [clearThinking] } }, SONNET_45);
  assert.deepEqual(kept.context_management, { edits: [clearThinking] }, "with manual thinking it stays");
});

Deno.test("system turns among the messages join the system prompt for models before 4.8", () => {
  const body = {
    max_tokens: 1000,
    system: [{ type: "text", text: "You are Claude Code.", cache_control: { type: "ephemeral" } }],
    messages: [
      { role: "user", content: "hi" },
      {
        role: "system",
        content: [{ type: "text", text: "# Environment", cache_control: { type: "ephemeral" } }],
      },
      { role: "assistant", content: "hello" },
      { role: "system", content: "Be brief." },
    ],
  };
  const fitted = fitToModel(body, SONNET_45);
  assert.deepEqual(fitted.messages, [{ role: "user", content: "hi" }, {
    role: "assistant",
    content: "hello",
  }]);
  assert.deepEqual(fitted.system, [
    { type: "text", text: "You are Claude Code.", cache_control: { type: "ephemeral" } },
    { type: "text", text: "# Environment" },
    { type: "text", text: "Be brief." },
  ]);
  assert.equal(body.messages.length, 4, "the input is not modified");
  const stringSystem = fitToModel({ ...body, system: "Be kind." }, "global.anthropic.claude-opus-4-7");
  assert.deepEqual((stringSystem.system as Array<{ text: string }>).map((b) => b.text), [
    "Be kind.",
    "# Environment",
    "Be brief.",
  ]);
  assert.equal(fitToModel(body, "global.anthropic.claude-opus-4-8"), body, "4.8 and later take the role");
});

Deno.test("takesThinkingDisplay: from 4.7 on, and ids it cannot read", () => {
  assert.equal(takesThinkingDisplay(SONNET_45), false);
  assert.equal(takesThinkingDisplay("global.anthropic.claude-opus-4-6-v1"), false);
  assert.equal(takesThinkingDisplay("global.anthropic.claude-opus-4-7"), true);
  assert.equal(takesThinkingDisplay("global.anthropic.claude-sonnet-5-5"), true);
  assert.equal(takesThinkingDisplay("arn:aws:bedrock:us-east-1:1:application-inference-profile/x"), true);
});

Deno.test("manual thinking made adaptive for 4.7 and later keeps its display", () => {
  const body = { max_tokens: 8000, thinking: { type: "enabled", budget_tokens: 4000, display: "omitted" } };
  assert.deepEqual(fitToModel(body, "global.anthropic.claude-opus-4-7").thinking, {
    type: "adaptive",
    display: "omitted",
  });
});

Deno.test("a two-digit minor version is read as such: 4.10 is past 4.7, not 4.0", () => {
  const body = { max_tokens: 8000, thinking: { type: "adaptive" }, output_config: { effort: "high" } };
  assert.deepEqual(fitToModel(body, "global.anthropic.claude-sonnet-4-10"), body);
  assert.equal(takesThinkingDisplay("global.anthropic.claude-sonnet-4-10"), true);
});
