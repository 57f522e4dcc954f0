import assert from "node:assert/strict";
import { DEV_ONLY_PACKAGES, npmPackageOf, trimForRuntime } from "./runtime_deps.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("npmPackageOf names the package of npm specifiers, scoped or not, with or without a path", () => {
  assert.equal(npmPackageOf("npm:aws-cdk-lib@^2.276.0"), "aws-cdk-lib");
  assert.equal(npmPackageOf("npm:/aws-cdk-lib@^2.276.0/"), "aws-cdk-lib");
  assert.equal(npmPackageOf("npm:@tailwindcss/cli@4"), "@tailwindcss/cli");
  assert.equal(npmPackageOf("npm:@anthropic-ai/sdk@^1.14.0"), "@anthropic-ai/sdk");
  assert.equal(npmPackageOf("npm:hono"), "hono");
  assert.equal(npmPackageOf("jsr:@std/assert@1"), null);
  assert.equal(npmPackageOf("./lib/x.ts"), null);
});

Deno.test("trimForRuntime drops dev-only imports and lock specifiers and keeps everything else", () => {
  const config = {
    imports: {
      hono: "npm:hono@^4",
      "aws-cdk-lib": "npm:aws-cdk-lib@^2",
      "aws-cdk-lib/": "npm:/aws-cdk-lib@^2/",
      "@anthropic-ai/sdk": "npm:@anthropic-ai/sdk@^1",
      local: "./lib/local.ts",
    },
    tasks: { start: "deno run main.ts" },
  };
  const lock = {
    version: "5",
    specifiers: {
      "npm:hono@^4": "4.13.19",
      "npm:aws-cdk-lib@^2": "2.276.0",
      "npm:@tailwindcss/cli@4": "4.3.5",
    },
    npm: { "hono@4.13.19": {}, "aws-cdk-lib@2.276.0": {} },
  };
  const t = trimForRuntime(config, lock);
  assert.deepEqual(t.config.imports, { hono: "npm:hono@^4", local: "./lib/local.ts" });
  assert.deepEqual(t.config.tasks, config.tasks);
  assert.deepEqual(t.lock.specifiers, { "npm:hono@^4": "4.13.19" });
  // Package entries are left for `deno install`, which drops those nothing refers to.
  assert.deepEqual(t.lock.npm, lock.npm);
  assert.deepEqual(t.removed.sort(), ["@anthropic-ai/sdk", "aws-cdk-lib", "aws-cdk-lib/"]);
});

Deno.test("main.ts's module graph uses no dev-only package, so the trimmed image can run it", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: Array<{ kind: string; npmPackage?: string }>;
    npmPackages: Record<string, { name: string; dependencies?: string[] }>;
  };
  // Packages main.ts imports, and everything they depend on (npmPackages lists the whole lock, used or not).
  const pending = info.modules.filter((m) => m.kind === "npm" && m.npmPackage).map((m) => m.npmPackage!);
  const reached = new Set<string>();
  while (pending.length > 0) {
    const id = pending.pop()!;
    if (reached.has(id)) continue;
    reached.add(id);
    pending.push(...(info.npmPackages[id]?.dependencies ?? []));
  }
  const used = new Set([...reached].map((id) => info.npmPackages[id]?.name ?? id));
  assert.ok(used.has("hono") && used.has("postgres"), `the graph was read: ${[...used].join(", ")}`);
  assert.ok(Object.values(info.npmPackages).some((p) => p.name === "aws-cdk-lib"), "the lock lists the CDK");
  for (const dev of DEV_ONLY_PACKAGES) assert.ok(!used.has(dev), `main.ts needs ${dev}`);
});
