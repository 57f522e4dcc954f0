import assert from "node:assert/strict";
import { modelFamily, parsePricingJson, PriceBook, type TokenCounts } from "./pricing.ts";

function counts(partial: Partial<TokenCounts>): TokenCounts {
  return {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadInputTokens: 0,
    cacheCreationInputTokens: 0,
    ...partial,
  };
}

Deno.test("modelFamily normalises Anthropic names and Bedrock ids to one family key", () => {
  const sonnet45 = [
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "apac.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "claude-sonnet-4-5@20250929",
    "claude-sonnet-4-5-20250929[1m]",
    "  Claude-Sonnet-4-5-20250929 ",
  ];
  for (const m of sonnet45) assert.equal(modelFamily(m)?.family, "claude-sonnet-4-5", m);

  assert.equal(modelFamily("claude-sonnet-4-20250514")?.family, "claude-sonnet-4");
  assert.equal(modelFamily("claude-sonnet-4-0")?.family, "claude-sonnet-4");
  assert.equal(modelFamily("claude-opus-4-0")?.family, "claude-opus-4");
  assert.equal(modelFamily("anthropic.claude-opus-4-1-20250805-v1:0")?.family, "claude-opus-4-1");
  assert.equal(modelFamily("anthropic.claude-opus-4-6-v1")?.family, "claude-opus-4-6");
  assert.equal(modelFamily("claude-3-7-sonnet-20250219")?.family, "claude-sonnet-3-7");
  assert.equal(modelFamily("claude-3-5-haiku-latest")?.family, "claude-haiku-3-5");
  assert.equal(modelFamily("anthropic.claude-3-haiku-20240307-v1:0")?.family, "claude-haiku-3");
  assert.equal(modelFamily("anthropic.claude-3-sonnet-20240229-v1:0:200k")?.family, "claude-sonnet-3");
  assert.equal(modelFamily("claude-haiku-4-5-20251001")?.family, "claude-haiku-4-5");
  assert.equal(modelFamily("claude-sonnet-5")?.family, "claude-sonnet-5");

  assert.equal(modelFamily("gpt-4o"), null);
  assert.equal(modelFamily("meta.llama3-70b-instruct-v1:0"), null);
  assert.equal(modelFamily(""), null);
});

Deno.test("modelFamily marks only family names as bare", () => {
  assert.equal(modelFamily("claude-sonnet-4-5")?.bare, true);
  assert.equal(modelFamily("claude-3-5-haiku")?.bare, true);
  assert.equal(modelFamily("claude-opus-4-0")?.bare, true);
  assert.equal(modelFamily("claude-sonnet-4-5-20250929")?.bare, false);
  assert.equal(modelFamily("claude-3-5-haiku-latest")?.bare, false);
  assert.equal(modelFamily("anthropic.claude-sonnet-4-5")?.bare, false);
  assert.equal(modelFamily("us.anthropic.claude-sonnet-4-5-20250929-v1:0")?.bare, false);
});

Deno.test("built-in prices match Anthropic's published list prices", () => {
  const book = new PriceBook();
  const expect: Array<[string, number, number, number, number]> = [
    // model, input, output, cacheWrite (5m), cacheRead
    ["claude-opus-4-5-20251101", 5, 25, 6.25, 0.5],
    ["claude-opus-4-6", 5, 25, 6.25, 0.5],
    ["claude-opus-4-1-20250805", 15, 75, 18.75, 1.5],
    ["claude-opus-4-20250514", 15, 75, 18.75, 1.5],
    ["claude-sonnet-4-5-20250929", 3, 15, 3.75, 0.3],
    ["claude-sonnet-4-20250514", 3, 15, 3.75, 0.3],
    ["claude-3-7-sonnet-20250219", 3, 15, 3.75, 0.3],
    ["claude-haiku-4-5-20251001", 1, 5, 1.25, 0.1],
    ["claude-3-5-haiku-20241022", 0.8, 4, 1, 0.08],
    ["claude-3-haiku-20240307", 0.25, 1.25, 0.3, 0.03],
    ["claude-opus-5-5", 4, 20, 5, 0.2],
    ["claude-sonnet-5", 2, 10, 2.5, 0.2],
  ];
  for (const [model, input, output, cacheWrite, cacheRead] of expect) {
    assert.deepEqual(book.priceFor(model), { input, output, cacheWrite, cacheRead }, model);
  }
});

Deno.test("cache prices are 1.25x and 0.1x input for current families", () => {
  for (const [family, p] of new PriceBook().entries()) {
    // Published exceptions: Haiku 3's rounded cache prices, 0.05x cache reads on Opus 5.5 and Sonnet 5.5, and
    // 0.025x on Fable and Mythos 5.1 and 5.2.
    const exceptions = [
      "claude-haiku-3",
      "claude-opus-5-5",
      "claude-sonnet-5-5",
      "claude-fable-5-1",
      "claude-mythos-5-1",
      "claude-fable-5-2",
      "claude-mythos-5-2",
    ];
    if (exceptions.includes(family)) continue;
    assert.equal(p.cacheWrite, Math.round(p.input * 1.25 * 1e6) / 1e6, family);
    assert.equal(p.cacheRead, Math.round(p.input * 0.1 * 1e6) / 1e6, family);
  }
});

Deno.test("priceFor finds the same price for Anthropic names and Bedrock ids", () => {
  const book = new PriceBook();
  const base = book.priceFor("claude-sonnet-4-5");
  assert.notEqual(base, null);
  assert.equal(book.priceFor("global.anthropic.claude-sonnet-4-5-20250929-v1:0"), base);
  assert.equal(book.priceFor("us.anthropic.claude-sonnet-4-5-20250929-v1:0"), base);
  assert.equal(book.priceFor("anthropic.claude-sonnet-4-5-20250929-v1:0"), base);
});

Deno.test("unknown models are unpriced, never free", () => {
  const book = new PriceBook();
  assert.equal(book.priceFor("gpt-4o"), null);
  assert.equal(book.priceFor("claude-instant-1"), null);
  assert.equal(book.priceFor("claude-sonnet-9"), null);
  assert.deepEqual(book.cost("claude-sonnet-9", counts({ inputTokens: 10 })), {
    costUsd: null,
    priced: false,
  });
  assert.deepEqual(book.cost("", counts({})), { costUsd: null, priced: false });
});

Deno.test("cost sums all four token kinds in USD", () => {
  const book = new PriceBook();
  // 50k each on Sonnet 4.5 (a 150k prompt, under the long-context threshold): 50k × (3 + 15 + 3.75 + 0.30)
  const r = book.cost(
    "claude-sonnet-4-5",
    counts({
      inputTokens: 50_000,
      outputTokens: 50_000,
      cacheCreationInputTokens: 50_000,
      cacheReadInputTokens: 50_000,
    }),
  );
  assert.deepEqual(r, { costUsd: 1.1025, priced: true });
  // A typical Claude Code turn on Opus 4.5.
  assert.deepEqual(
    book.cost(
      "claude-opus-4-5-20251101",
      counts({
        inputTokens: 3,
        outputTokens: 412,
        cacheCreationInputTokens: 2_170,
        cacheReadInputTokens: 48_211,
      }),
    ),
    // 3×5 + 412×25 + 2170×6.25 + 48211×0.5 = 15 + 10300 + 13562.5 + 24105.5 micro-dollars
    { costUsd: 0.047983, priced: true },
  );
});

Deno.test("1-hour cache writes cost twice the input price, 5-minute writes 1.25 times", () => {
  const book = new PriceBook();
  // Sonnet 4.5 ($3 input): 10k cache writes, 4k of them with the 1-hour lifetime.
  const r = book.cost(
    "claude-sonnet-4-5",
    counts({ cacheCreationInputTokens: 10_000, cacheCreation1hInputTokens: 4_000 }),
  );
  // 6000 × 3.75 + 4000 × 6 = 22500 + 24000 micro-dollars
  assert.deepEqual(r, { costUsd: 0.0465, priced: true });
  // A 1-hour count above the total (a malformed report) is capped at the total.
  assert.deepEqual(
    book.cost(
      "claude-sonnet-4-5",
      counts({ cacheCreationInputTokens: 1_000, cacheCreation1hInputTokens: 5_000 }),
    ),
    { costUsd: 0.006, priced: true },
  );
});

Deno.test("cost is rounded to micro-dollars without float noise", () => {
  const book = new PriceBook();
  // 0.1 + 0.2 style noise would show up as 0.30000000000000004 without rounding.
  const r = book.cost(
    "claude-haiku-3-5",
    counts({ inputTokens: 1, cacheReadInputTokens: 3, outputTokens: 7 }),
  );
  assert.equal(r.costUsd, 0.000029); // 0.8 + 0.24 + 28 = 29.04 micro-dollars
  const tiny = book.cost("claude-haiku-3", counts({ cacheReadInputTokens: 1 }));
  assert.deepEqual(tiny, { costUsd: 0, priced: true }); // 0.03 micro-dollars rounds to 0 but stays priced
  for (let n = 1; n < 2_000; n += 37) {
    const c = book.cost("claude-sonnet-4-5", counts({ inputTokens: n, outputTokens: n })).costUsd!;
    assert.equal(c, Number(c.toFixed(6)));
  }
});

Deno.test("cost treats missing or negative token counts as zero", () => {
  const book = new PriceBook();
  const t = { inputTokens: 1000, outputTokens: -5, cacheReadInputTokens: NaN } as unknown as TokenCounts;
  assert.deepEqual(book.cost("claude-haiku-4-5", t), { costUsd: 0.001, priced: true });
});

Deno.test("Sonnet 4.5 prompts over 200k tokens are billed at the long-context rate", () => {
  const book = new PriceBook();
  const at = book.cost("claude-sonnet-4-5", counts({ inputTokens: 200_000, outputTokens: 1_000 }));
  assert.equal(at.costUsd, 0.615); // 200k × 3 + 1k × 15
  // Cache reads count toward the threshold, and then every token pays the long-context rate.
  const over = book.cost(
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    counts({ inputTokens: 1_000, cacheReadInputTokens: 199_001, outputTokens: 1_000 }),
  );
  assert.equal(over.costUsd, 0.147901); // 1k×6 + 199001×0.6 + 1k×22.5 = 147900.6 micro-dollars
});

Deno.test("Sonnet 4.6 has no long-context surcharge", () => {
  const book = new PriceBook();
  const r = book.cost("claude-sonnet-4-6", counts({ inputTokens: 500_000 }));
  assert.equal(r.costUsd, 1.5);
});

Deno.test("family override applies to every name and id of that family", () => {
  const book = new PriceBook(parsePricingJson('{"claude-3-5-haiku": {"input": 1, "output": 2}}'));
  const expected = { input: 1, output: 2, cacheWrite: 1.25, cacheRead: 0.1 };
  assert.deepEqual(book.priceFor("claude-3-5-haiku-20241022"), expected);
  assert.deepEqual(book.priceFor("anthropic.claude-3-5-haiku-20241022-v1:0"), expected);
  assert.deepEqual(book.priceFor("claude-haiku-4-5"), {
    input: 1,
    output: 5,
    cacheWrite: 1.25,
    cacheRead: 0.1,
  });
});

Deno.test("exact override applies to that id only and beats a family override", () => {
  const regional = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
  const book = new PriceBook(
    parsePricingJson(JSON.stringify({
      [regional]: { input: 3.3, output: 16.5 },
      "claude-sonnet-4-5": { input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 },
    })),
  );
  assert.deepEqual(book.priceFor(regional), { input: 3.3, output: 16.5, cacheWrite: 4.125, cacheRead: 0.33 });
  assert.deepEqual(book.priceFor("global.anthropic.claude-sonnet-4-5-20250929-v1:0")?.input, 3);
  // An override is a flat price: no long-context tier.
  assert.equal(book.cost("claude-sonnet-4-5", counts({ inputTokens: 300_000 })).costUsd, 0.9);
});

Deno.test("override can price a model the built-in table does not know", () => {
  const book = new PriceBook(parsePricingJson('{"my-finetune": {"input": 0, "output": 0}}'));
  assert.deepEqual(book.cost("my-finetune", counts({ inputTokens: 5 })), { costUsd: 0, priced: true });
  assert.equal(book.priceFor("my-finetune-2"), null);
});

Deno.test("entries lists built-in families with overrides applied, then extra keys", () => {
  const book = new PriceBook(
    parsePricingJson('{"claude-opus-4-5": {"input": 4, "output": 20}, "x-model": {"input": 1, "output": 1}}'),
  );
  const entries = book.entries();
  const map = new Map(entries);
  assert.equal(map.get("claude-opus-4-5")?.input, 4);
  assert.equal(map.get("claude-sonnet-4-5")?.input, 3);
  assert.equal(entries.at(-1)?.[0], "x-model");
  assert.equal(new Set(entries.map(([k]) => k)).size, entries.length);
});

Deno.test("lookups are memoised and the memo stays bounded", () => {
  const book = new PriceBook();
  const a = book.priceFor("claude-sonnet-4-5-20250929");
  assert.equal(book.priceFor("claude-sonnet-4-5-20250929"), a);
  for (let i = 0; i < 5_000; i++) book.priceFor(`claude-sonnet-4-5-${String(20250000 + i)}`);
  assert.equal(book.priceFor("claude-sonnet-4-5-20250929"), a);
});

Deno.test("returned prices are frozen so callers cannot corrupt the table", () => {
  const p = new PriceBook().priceFor("claude-sonnet-4-5")!;
  assert.throws(() => {
    (p as { input: number }).input = 0;
  }, TypeError);
});

Deno.test("parsePricingJson defaults cache prices from input", () => {
  assert.deepEqual(parsePricingJson('{"claude-haiku-3-5": {"input": 0.8, "output": 4}}'), {
    "claude-haiku-3-5": { input: 0.8, output: 4, cacheWrite: 1, cacheRead: 0.08 },
  });
  assert.deepEqual(
    parsePricingJson('{"m": {"input": 2, "output": 4, "cacheWrite": 0, "cacheRead": 0.5}}').m,
    { input: 2, output: 4, cacheWrite: 0, cacheRead: 0.5 },
  );
  assert.deepEqual(parsePricingJson("{}"), {});
});

Deno.test("parsePricingJson names the model key, field and expectation", () => {
  assert.throws(() => parsePricingJson("{nope"), /PROXY_MODEL_PRICING: not valid JSON/);
  assert.throws(() => parsePricingJson("[1]"), /PROXY_MODEL_PRICING: expected a JSON object/);
  assert.throws(
    () => parsePricingJson('{"claude-sonnet-4-5": {"input": -1, "output": 15}}'),
    /model 'claude-sonnet-4-5' field 'input': expected a non-negative number \(USD per million tokens\), got -1/,
  );
  assert.throws(
    () => parsePricingJson('{"claude-sonnet-4-5": {"input": 3}}'),
    /model 'claude-sonnet-4-5' field 'output': expected a non-negative number .* got nothing/,
  );
  assert.throws(
    () => parsePricingJson('{"m": {"input": "3", "output": 15}}'),
    /model 'm' field 'input': expected a non-negative number .* got "3"/,
  );
  assert.throws(
    () => parsePricingJson('{"m": {"input": 3, "output": 15, "cache_read": 0.3}}'),
    /model 'm': unknown field 'cache_read' \(expected input, output, cacheWrite, cacheRead\)/,
  );
  assert.throws(() => parsePricingJson('{"m": 3}'), /model 'm': expected an object/);
});

Deno.test("parsePricingJson reports every problem at once", () => {
  try {
    parsePricingJson('{"a": {"input": -1, "output": 1}, "b": {"input": 1, "output": null}}');
    assert.fail("expected an error");
  } catch (e) {
    const msg = (e as Error).message;
    assert.match(msg, /model 'a' field 'input'/);
    assert.match(msg, /model 'b' field 'output'.*got null/);
  }
});

Deno.test("fast mode costs its model's multiple of every token rate; models without it cost the same", () => {
  const book = new PriceBook();
  const tokens = counts({ inputTokens: 1_000_000, outputTokens: 100_000, cacheReadInputTokens: 1_000_000 });
  // Opus 4.6: $5 in, $25 out, $0.50 cache read; 5 + 2.5 + 0.5 = $8 at standard speed.
  assert.equal(book.cost("claude-opus-4-6", tokens).costUsd, 8);
  assert.equal(book.cost("claude-opus-4-6", { ...tokens, speed: "fast" }).costUsd, 48, "6× on Opus 4.6");
  assert.equal(book.cost("claude-opus-4-7-20260301", { ...tokens, speed: "fast" }).costUsd, 48);
  assert.equal(book.cost("claude-opus-4-8", { ...tokens, speed: "fast" }).costUsd, 16, "2× from Opus 4.8");
  assert.equal(book.cost("claude-opus-5", { ...tokens, speed: "fast" }).costUsd, 16);
  assert.equal(book.cost("claude-opus-4-8", { ...tokens, speed: "standard" }).costUsd, 8);
  assert.equal(book.cost("claude-sonnet-4-6", { ...tokens, speed: "fast" }).costUsd, 3 + 1.5 + 0.3);
  // A negotiated price still pays the premium, as a multiple of itself.
  const negotiated = new PriceBook(parsePricingJson('{"claude-opus-4-6": {"input": 4, "output": 20}}'));
  assert.equal(negotiated.cost("claude-opus-4-6-20260101", { ...tokens, speed: "fast" }).costUsd, 38.4);
});

Deno.test("US-only inference costs 1.1× the token rates; web searches cost $10 per 1,000 on top", () => {
  const book = new PriceBook();
  const tokens = counts({ inputTokens: 1_000_000, outputTokens: 1_000_000 });
  assert.equal(book.cost("claude-sonnet-4-6", tokens).costUsd, 18);
  assert.equal(book.cost("claude-sonnet-4-6", { ...tokens, inferenceGeo: "us" }).costUsd, 19.8);
  assert.equal(book.cost("claude-sonnet-4-6", { ...tokens, inferenceGeo: "global" }).costUsd, 18);
  assert.equal(book.cost("claude-sonnet-4-6", { ...tokens, webSearchRequests: 3 }).costUsd, 18.03);
  // The searches are not multiplied: 6 × 5.5 + 0.02.
  assert.equal(
    book.cost("claude-opus-4-6", counts({ inputTokens: 1_000_000, outputTokens: 20_000 }))
      .costUsd,
    5.5,
  );
  assert.equal(
    book.cost("claude-opus-4-6", {
      ...counts({ inputTokens: 1_000_000, outputTokens: 20_000 }),
      speed: "fast",
      inferenceGeo: "us",
      webSearchRequests: 2,
    }).costUsd,
    36.32,
  );
});

Deno.test("Fable and Mythos are priced as published, 5.1 and 5.2 with their cheaper cache reads", () => {
  const book = new PriceBook();
  const published = { input: 10, output: 50, cacheWrite: 12.5 };
  for (
    const [model, cacheRead] of [
      ["claude-fable-5-1", 0.25],
      ["claude-mythos-5-1-20261001", 0.25],
      ["anthropic.claude-mythos-5", 1],
      ["claude-fable-5", 1],
    ] as const
  ) {
    assert.deepEqual(book.priceFor(model), { ...published, cacheRead }, model);
  }
  const fable52 = { input: 8, output: 40, cacheWrite: 10, cacheRead: 0.2 };
  assert.deepEqual(book.priceFor("claude-fable-5-2"), fable52);
  assert.deepEqual(book.priceFor("global.anthropic.claude-mythos-5-2"), fable52);
  assert.equal(book.priceFor("claude-fable-5-3"), null, "not published: unpriced, never guessed");
});
