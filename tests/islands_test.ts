/**
 * The islands layer: props serialised so no user-controlled string can break out of the page, plain data only,
 * server rendering inside a marker, and a registry that holds every island in `islands/`.
 */
import assert from "node:assert/strict";
import { renderToString } from "preact-render-to-string";
import { h } from "preact";
import { assertPlainData, IslandPropsError, serializeProps } from "../lib/islands/serialize.ts";
import { makeIsland } from "../lib/islands/island.tsx";
import { Island } from "../components/Island.tsx";
import { registry } from "../islands/registry.ts";

const HOSTILE = [
  "</script><script>alert(1)</script>",
  "</SCRIPT >",
  "<!--",
  "<!-- <script>",
  "-->",
  "]]>",
  `"'\`\\`,
  "a\u2028b\u2029c",
  "&lt;&amp;",
  "\u0000\u001f\u007f",
  "<img src=x onerror=alert(1)>",
  "😀 ünïcødé",
];

/** The text of every `<script type="application/json">` block, exactly as an HTML parser would end it. */
function jsonBlocks(html: string): string[] {
  const out: string[] = [];
  let at = 0;
  for (;;) {
    const open = html.indexOf('<script type="application/json"', at);
    if (open < 0) return out;
    const start = html.indexOf(">", open) + 1;
    // An HTML parser ends a script element at the first "</script" (any case), nothing else.
    const end = html.toLowerCase().indexOf("</script", start);
    out.push(html.slice(start, end));
    at = end;
  }
}

Deno.test("hostile strings in props cannot end the script block, open a comment or break a line", () => {
  for (const s of HOSTILE) {
    const props = { text: s, label: s, nested: { list: [s, { deeper: s }] }, [s]: "as a key" };
    const json = serializeProps(props);
    assert.doesNotMatch(json, /[<>&\u2028\u2029]/, JSON.stringify(s));
    assert.deepEqual(JSON.parse(json), props, "JSON.parse restores the value unchanged");
  }
});

Deno.test("an island's props block holds exactly its props, inert, whatever the user typed", () => {
  for (const s of HOSTILE) {
    const html = renderToString(h(Island, { name: "CopyButton", props: { text: s, label: s } }));
    const blocks = jsonBlocks(html);
    assert.equal(blocks.length, 1);
    assert.deepEqual(JSON.parse(blocks[0]), { text: s, label: s }, JSON.stringify(s));
    assert.ok(!blocks[0].includes("<!--"));
    // Outside the block, the server-rendered component escapes the text (no raw tag, no attribute break-out).
    const rest = html.slice(html.indexOf("</script>") + "</script>".length);
    assert.ok(!rest.includes("<script"), `no script element from ${JSON.stringify(s)}`);
    assert.ok(!rest.includes("<img"), `no element from ${JSON.stringify(s)}`);
    assert.equal((html.match(/<script/g) ?? []).length, 1);
  }
});

Deno.test("islands render server-side inside a marker that names them and points at their props", () => {
  const html = renderToString(
    h(Island, {
      name: "UsageChart",
      props: { kind: "bar", title: "Tokens </script>", labels: ["a"], series: [{ label: "x", data: [1] }] },
    }),
  );
  const m =
    /<script type="application\/json" id="([^"]+)">.*?<\/script><div data-island="UsageChart" data-island-props="\1" class="contents">/s
      .exec(html);
  assert.ok(m, html);
  assert.match(html, /<canvas role="img" aria-label="Tokens &lt;\/script>" data-chart="bar"/);
  assert.match(html, /<table/, "the data is readable without JavaScript");
  const two = renderToString(
    h(
      "div",
      null,
      h(Island, { name: "CopyButton", props: { text: "a" } }),
      h(Island, { name: "CopyButton", props: { text: "b" } }),
    ),
  );
  const ids = [...two.matchAll(/data-island-props="([^"]+)"/g)].map((x) => x[1]);
  assert.equal(new Set(ids).size, 2, "each island on a page has its own props block");
});

Deno.test("islands without JavaScript: the copy button is hidden, confirm falls back to a required checkbox", () => {
  const copy = renderToString(h(Island, { name: "CopyButton", props: { text: "ak_x" } }));
  assert.match(copy, /<button[^>]*hidden/);
  const confirm = renderToString(
    h(Island, {
      name: "ConfirmDialog",
      props: { label: "Delete", title: "Delete?", message: "Gone.", checkboxLabel: "I understand" },
    }),
  );
  assert.match(confirm, /<input type="checkbox" name="confirm" value="yes" required/);
  assert.match(confirm, /<button type="submit"[^>]*>Delete</);
  const picker = renderToString(
    h(Island, {
      name: "RangePicker",
      props: { action: "/admin", range: "24h", from: "2026-01-01", to: "2026-01-02", timeZone: "UTC" },
    }),
  );
  assert.match(picker, /<form[^>]*method="get" action="\/admin"/);
  assert.match(picker, /<button type="submit"[^>]*>Apply</);
});

Deno.test("props must be plain data: functions, class instances, dates, cycles and odd numbers are refused", () => {
  class Thing {}
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const cases: Array<[unknown, RegExp]> = [
    [{ onClick: () => {} }, /props\.onClick is a function/],
    [{ when: new Date() }, /props\.when is an instance of Date/],
    [{ thing: new Thing() }, /props\.thing is an instance of Thing/],
    [{ map: new Map() }, /instance of Map/],
    [{ list: [1, Symbol("s")] }, /props\.list\[1\] is a symbol/],
    [{ big: 1n }, /is a bigint/],
    [{ n: NaN }, /not a finite number/],
    [{ n: Infinity }, /not a finite number/],
    [{ list: [undefined] }, /props\.list\[0\] is undefined/],
    [cyclic, /circular/],
    [{ [Symbol("k")]: 1 }, /keyed by symbols/],
  ];
  for (const [value, message] of cases) {
    assert.throws(
      () => assertPlainData(value),
      (e: unknown) => e instanceof IslandPropsError && message.test((e as Error).message),
    );
  }
  // The same object twice (not a cycle), null-prototype objects and absent optionals are fine.
  const shared = { a: 1 };
  assertPlainData({
    x: shared,
    y: shared,
    z: Object.assign(Object.create(null), { k: "v" }),
    o: undefined,
    n: null,
  });
  // And the server wrapper refuses them when the page is rendered.
  assert.throws(
    () =>
      renderToString(
        h(Island, { name: "CopyButton", props: { text: "x", label: (() => "no") as unknown as string } }),
      ),
    IslandPropsError,
  );
});

Deno.test("an unknown island name fails the render instead of shipping a dead marker", () => {
  const Local = makeIsland({ Known: () => null });
  assert.throws(
    () =>
      renderToString(
        h(Local as unknown as (p: { name: string; props: unknown }) => null, { name: "Unknown", props: {} }),
      ),
    /unknown island "Unknown"/,
  );
});

Deno.test("every island file in islands/ is registered under its file name, and nothing else is", async () => {
  const dir = new URL("../islands/", import.meta.url);
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /^[A-Z]\w*\.tsx$/.test(entry.name)) files.push(entry.name.replace(/\.tsx$/, ""));
  }
  assert.ok(files.length >= 4, `islands found: ${files.join(", ")}`);
  for (const name of files) {
    const mod = await import(new URL(`${name}.tsx`, dir).href);
    assert.equal(typeof mod[name], "function", `${name}.tsx exports ${name}`);
    assert.equal((registry as Record<string, unknown>)[name], mod[name], `${name} is registered`);
  }
  assert.deepEqual(Object.keys(registry).sort(), files.sort(), "no registry entry without its file");
});
