import assert from "node:assert/strict";
import {
  baseModelId,
  mapModel,
  parseModelMapJson,
  prefixOf,
  profileCandidates,
  withoutProfile,
} from "./model_map.ts";

const GLOBAL_DEFAULT = "global.anthropic.claude-sonnet-4-5-20250929-v1:0";
const opts = { overrides: {}, defaultModel: GLOBAL_DEFAULT };

/** A result whose profile prefix the table chose: `base` is the id without it. */
const tableMapped = (modelId: string) => ({ modelId, known: true, base: modelId.replace(/^global\./, "") });

Deno.test("dated names map to their Bedrock ids under the default model's profile prefix", () => {
  const cases: [string, string][] = [
    ["claude-sonnet-4-5-20250929", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"],
    ["claude-opus-4-1-20250805", "global.anthropic.claude-opus-4-1-20250805-v1:0"],
    ["claude-opus-4-20250514", "global.anthropic.claude-opus-4-20250514-v1:0"],
    ["claude-sonnet-4-20250514", "global.anthropic.claude-sonnet-4-20250514-v1:0"],
    ["claude-haiku-4-5-20251001", "global.anthropic.claude-haiku-4-5-20251001-v1:0"],
    ["claude-opus-4-5-20251101", "global.anthropic.claude-opus-4-5-20251101-v1:0"],
    ["claude-3-7-sonnet-20250219", "global.anthropic.claude-3-7-sonnet-20250219-v1:0"],
    ["claude-3-5-haiku-20241022", "global.anthropic.claude-3-5-haiku-20241022-v1:0"],
    ["claude-3-5-sonnet-20241022", "global.anthropic.claude-3-5-sonnet-20241022-v2:0"],
  ];
  for (const [requested, expected] of cases) {
    assert.deepEqual(mapModel(requested, opts), tableMapped(expected), requested);
  }
});

Deno.test("undated aliases map to the latest dated id", () => {
  const cases: [string, string][] = [
    ["claude-sonnet-4-5", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"],
    ["claude-opus-4-1", "global.anthropic.claude-opus-4-1-20250805-v1:0"],
    ["claude-opus-4-0", "global.anthropic.claude-opus-4-20250514-v1:0"],
    ["claude-sonnet-4-0", "global.anthropic.claude-sonnet-4-20250514-v1:0"],
    ["claude-haiku-4-5", "global.anthropic.claude-haiku-4-5-20251001-v1:0"],
    ["claude-opus-4-5", "global.anthropic.claude-opus-4-5-20251101-v1:0"],
    ["claude-3-7-sonnet-latest", "global.anthropic.claude-3-7-sonnet-20250219-v1:0"],
    ["claude-3-5-haiku-latest", "global.anthropic.claude-3-5-haiku-20241022-v1:0"],
    ["claude-opus-4-6", "global.anthropic.claude-opus-4-6-v1"],
    ["claude-sonnet-4-6", "global.anthropic.claude-sonnet-4-6"],
  ];
  for (const [requested, expected] of cases) {
    assert.deepEqual(mapModel(requested, opts), tableMapped(expected), requested);
  }
});

Deno.test("a dated name missing from the table follows the anthropic.<name>-v1:0 rule", () => {
  assert.deepEqual(
    mapModel("claude-sonnet-4-7-20260101", opts),
    tableMapped("global.anthropic.claude-sonnet-4-7-20260101-v1:0"),
  );
  assert.deepEqual(
    mapModel("claude-4-2-haiku-20270101", opts).modelId,
    "global.anthropic.claude-4-2-haiku-20270101-v1:0",
  );
});

Deno.test("names are matched case-insensitively and trimmed", () => {
  assert.equal(
    mapModel(" Claude-Sonnet-4-5 ", opts).modelId,
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
  );
});

Deno.test("the profile prefix follows the default model, or profilePrefix when given", () => {
  const us = { overrides: {}, defaultModel: "us.anthropic.claude-sonnet-4-20250514-v1:0" };
  assert.equal(mapModel("claude-haiku-4-5", us).modelId, "us.anthropic.claude-haiku-4-5-20251001-v1:0");
  const eu = { overrides: {}, defaultModel: "eu.anthropic.claude-sonnet-4-20250514-v1:0" };
  assert.equal(mapModel("claude-haiku-4-5", eu).modelId, "eu.anthropic.claude-haiku-4-5-20251001-v1:0");
  const none = { overrides: {}, defaultModel: "anthropic.claude-sonnet-4-20250514-v1:0" };
  assert.equal(mapModel("claude-haiku-4-5", none).modelId, "anthropic.claude-haiku-4-5-20251001-v1:0");
  assert.equal(
    mapModel("claude-haiku-4-5", { ...opts, profilePrefix: "apac" }).modelId,
    "apac.anthropic.claude-haiku-4-5-20251001-v1:0",
  );
  assert.equal(
    mapModel("claude-haiku-4-5", { ...opts, profilePrefix: "eu." }).modelId,
    "eu.anthropic.claude-haiku-4-5-20251001-v1:0",
  );
  assert.equal(
    mapModel("claude-haiku-4-5", { ...opts, profilePrefix: "" }).modelId,
    "anthropic.claude-haiku-4-5-20251001-v1:0",
  );
});

Deno.test("prefixOf reads the inference-profile prefix and ignores anything else", () => {
  assert.equal(prefixOf("global.anthropic.claude-sonnet-4-5-20250929-v1:0"), "global.");
  assert.equal(prefixOf("us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0"), "us-gov.");
  assert.equal(prefixOf("anthropic.claude-sonnet-4-5-20250929-v1:0"), "");
  assert.equal(prefixOf("arn:aws:bedrock:us-east-1:123:application-inference-profile/abc"), "");
});

Deno.test("a requested name that already is a Bedrock id or ARN passes through", () => {
  for (
    const id of [
      "anthropic.claude-sonnet-4-5-20250929-v1:0",
      "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
      "global.anthropic.claude-opus-4-6-v1",
      "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123",
    ]
  ) {
    assert.deepEqual(mapModel(id, opts), { modelId: id, known: true, base: null });
  }
});

Deno.test("overrides win over the table and are used exactly as given", () => {
  const o = {
    overrides: {
      "claude-sonnet-4-5": "arn:aws:bedrock:eu-west-1:1:application-inference-profile/x",
      "my-model": "x.y",
    },
    defaultModel: GLOBAL_DEFAULT,
  };
  assert.deepEqual(mapModel("claude-sonnet-4-5", o), {
    modelId: "arn:aws:bedrock:eu-west-1:1:application-inference-profile/x",
    known: true,
    base: null,
  });
  assert.deepEqual(mapModel("my-model", o), { modelId: "x.y", known: true, base: null });
  // Exact match only: the case-folded name falls through to the table.
  assert.equal(mapModel("Claude-Sonnet-4-5", o).modelId, "global.anthropic.claude-sonnet-4-5-20250929-v1:0");
});

Deno.test("an undated name newer than the table is guessed as anthropic.<name>, marked guessed", () => {
  for (const name of ["claude-sonnet-9", "claude-opus-9-5", "Claude-Haiku-6"]) {
    const base = `anthropic.${name.toLowerCase()}`;
    assert.deepEqual(
      mapModel(name, opts),
      { modelId: `global.${base}`, known: true, base, guessed: true },
      name,
    );
  }
  // Names in the table are not guesses, the ids Claude Code's own table gives for Bedrock included.
  assert.deepEqual(mapModel("claude-sonnet-5", opts), tableMapped("global.anthropic.claude-sonnet-5"));
  assert.deepEqual(mapModel("claude-mythos-5", opts), tableMapped("global.anthropic.claude-mythos-5"));
  assert.deepEqual(mapModel("claude-opus-5-5", opts), tableMapped("global.anthropic.claude-opus-5-5"));
});

Deno.test("unknown names fall back to the default model with known=false", () => {
  for (const name of ["gpt-4o", "claude-sonnet", "claude-3-5", "", "constructor", "toString"]) {
    assert.deepEqual(mapModel(name, opts), { modelId: GLOBAL_DEFAULT, known: false, base: null }, name);
  }
});

Deno.test("parseModelMapJson accepts an object of names to ids", () => {
  assert.deepEqual(parseModelMapJson('{"claude-x":"us.anthropic.claude-x-v1:0"}'), {
    "claude-x": "us.anthropic.claude-x-v1:0",
  });
  assert.deepEqual(parseModelMapJson("{}"), {});
});

Deno.test("parseModelMapJson explains what is wrong and what is expected", () => {
  const cases: [string, RegExp][] = [
    ["{not json", /not valid JSON/],
    ["[1,2]", /is an array/],
    ["null", /is null/],
    ['"x"', /is a string/],
    ['{"claude-x": 3}', /"claude-x"/],
    ['{"claude-x": "has space"}', /no spaces/],
    ['{"claude-x": ""}', /"claude-x"/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(() => parseModelMapJson(text), (err: Error) => {
      assert.match(err.message, pattern, text);
      assert.match(err.message, /expected a JSON object mapping Anthropic model names to Bedrock model ids/);
      return true;
    });
  }
});

Deno.test("other profiles to try: global, then the region's geography, then the bare id; never twice", () => {
  const base = "anthropic.claude-3-5-haiku-20241022-v1:0";
  assert.deepEqual(profileCandidates(base, `global.${base}`, "us-east-1"), [
    `global.${base}`,
    `us.${base}`,
    base,
  ]);
  assert.deepEqual(profileCandidates(base, base, "ap-northeast-2"), [base, `global.${base}`, `apac.${base}`]);
  assert.deepEqual(profileCandidates(base, `global.${base}`, "ap-northeast-1"), [
    `global.${base}`,
    `jp.${base}`,
    `apac.${base}`,
    base,
  ]);
  assert.deepEqual(profileCandidates(base, `global.${base}`, "eu-central-1")[1], `eu.${base}`);
  assert.deepEqual(profileCandidates(base, `global.${base}`, "us-gov-west-1")[1], `us-gov.${base}`);
});

Deno.test("baseModelId reads the foundation model out of profiles and ARNs; withoutProfile only drops the prefix", () => {
  assert.equal(baseModelId("global.anthropic.claude-opus-4-6-v1"), "anthropic.claude-opus-4-6-v1");
  assert.equal(baseModelId("anthropic.claude-opus-4-6-v1"), "anthropic.claude-opus-4-6-v1");
  const arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6";
  assert.equal(baseModelId(arn), "anthropic.claude-sonnet-4-6");
  assert.equal(withoutProfile(arn), arn, "an ARN is no profile-prefixed id");
  assert.equal(withoutProfile("eu.anthropic.claude-sonnet-4-6"), "anthropic.claude-sonnet-4-6");
});
