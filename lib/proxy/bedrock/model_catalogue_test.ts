import assert from "node:assert/strict";
import { modelCatalogue } from "./model_catalogue.ts";
import { mapModel } from "./model_map.ts";

Deno.test("the catalogue lists every table model with a display name, newest first", () => {
  const models = modelCatalogue({});
  const ids = models.map((m) => m.id);
  // Claude Code 2.1.332's own Bedrock table (and Mythos 5.1 and 5.2): the 5.5 models first, then the 5.2s
  // and 5.1s, then the 5s.
  assert.deepEqual(
    new Set(ids.slice(0, 3)),
    new Set(["claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"]),
  );
  assert.deepEqual(new Set(ids.slice(3, 5)), new Set(["claude-fable-5-2", "claude-mythos-5-2"]));
  assert.deepEqual(new Set(ids.slice(5, 7)), new Set(["claude-fable-5-1", "claude-mythos-5-1"]));
  assert.deepEqual(
    new Set(ids.slice(7, 11)),
    new Set(["claude-opus-5", "claude-sonnet-5", "claude-mythos-5", "claude-fable-5"]),
  );
  assert.equal(ids[11], "claude-opus-4-8");
  assert.equal(models.find((m) => m.id === "claude-haiku-5-5")!.display_name, "Claude Haiku 5.5");
  assert.equal(models.find((m) => m.id === "claude-mythos-5")!.display_name, "Claude Mythos 5");
  assert.ok(ids.includes("claude-sonnet-4-5-20250929"));
  assert.ok(ids.indexOf("claude-sonnet-4-6") < ids.indexOf("claude-sonnet-4-5-20250929"));
  assert.ok(ids.indexOf("claude-opus-4-5-20251101") < ids.indexOf("claude-opus-4-1-20250805"));
  assert.ok(ids.every((id) => !id.startsWith("claude-3-")), "retired Claude 3 models are not offered");
  const sonnet = models.find((m) => m.id === "claude-sonnet-4-5-20250929")!;
  assert.deepEqual(sonnet, {
    type: "model",
    id: "claude-sonnet-4-5-20250929",
    display_name: "Claude Sonnet 4.5",
    created_at: "2025-09-29T00:00:00Z",
  });
  assert.equal(models.find((m) => m.id === "claude-opus-4-20250514")!.display_name, "Claude Opus 4");
  assert.equal(
    models.find((m) => m.id === "claude-opus-4-8")!.created_at,
    "1970-01-01T00:00:00Z",
    "no date is made up: the epoch, as the API says for an unknown date (the field is required)",
  );
  assert.ok(models.every((m) => typeof m.created_at === "string"));
  assert.equal(new Set(ids).size, ids.length);
});

Deno.test("every listed model maps to a Bedrock model, so picking one never lands on the default", () => {
  for (const m of modelCatalogue({})) {
    assert.equal(
      mapModel(m.id, { overrides: {}, defaultModel: "global.anthropic.x-v1:0" }).known,
      true,
      m.id,
    );
  }
});

Deno.test("a two-digit minor version ranks above a one-digit one (4.10 after 4.9, before 5)", () => {
  const ids = modelCatalogue({
    "claude-opus-4-10": "global.anthropic.claude-opus-4-10",
    "claude-opus-4-9": "global.anthropic.claude-opus-4-9",
  }).map((m) => m.id);
  assert.ok(ids.indexOf("claude-opus-4-10") < ids.indexOf("claude-opus-4-9"), ids.join(", "));
  assert.ok(ids.indexOf("claude-opus-5") < ids.indexOf("claude-opus-4-10"), ids.join(", "));
});

Deno.test("operator-mapped Claude names are listed; other names are not", () => {
  const ids = modelCatalogue({ "claude-house-blend": "arn:aws:bedrock:eu-west-1:1:x", "gpt-4": "y" }).map((
    m,
  ) => m.id);
  assert.ok(ids.includes("claude-house-blend"));
  assert.ok(!ids.includes("gpt-4"));
});
