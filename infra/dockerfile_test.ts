/**
 * Static checks of the Dockerfile (no Docker engine here), plus a run of its health check command and of
 * dockerfilelint when npx can fetch it.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  DATA_DIR,
  DOCKER_CONTEXT_EXCLUDES,
  SHUTDOWN_DRAIN_SECONDS,
  STOP_TIMEOUT_SECONDS,
} from "./proxy_stack.ts";
import { IMAGE_MMAP_THRESHOLD } from "../bench/bench.ts";
import { APP_COMMAND } from "./proxy_stack.ts";
import { ConfigError, fileConfigIo, loadConfig } from "../lib/config.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const DOCKERFILE = `${ROOT}Dockerfile`;

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions with continuation lines joined and comments dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = "";
  let start = 0;
  text.split("\n").forEach((raw, i) => {
    const line = raw.trimEnd();
    if (current === "" && (line.trim() === "" || line.trimStart().startsWith("#"))) return;
    if (current !== "" && line.trimStart().startsWith("#")) return; // comment inside a continuation
    if (current === "") start = i + 1;
    if (line.endsWith("\\")) {
      current += line.slice(0, -1) + " ";
      return;
    }
    current += line;
    const m = /^\s*(\w+)\s*(.*)$/s.exec(current);
    if (m) out.push({ keyword: m[1].toUpperCase(), args: m[2].trim(), line: start });
    current = "";
  });
  return out;
}

function stagesOf(instructions: Instruction[]): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith("--"));
      const image = words[0].replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? "");
      const name = words[1]?.toUpperCase() === "AS" ? words[2] : undefined;
      stages.push({ image, name, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword === "ARG") {
        const [k, v] = ins.args.split("=");
        args[k] = v ?? "";
      }
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { args, stages };
}

function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.instructions.filter((i) => i.keyword === "ENV")) {
    for (const pair of ins.args.split(/\s+/)) {
      const eq = pair.indexOf("=");
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

const { stages } = stagesOf(parseDockerfile(Deno.readTextFileSync(DOCKERFILE)));
const runtime = stages.at(-1)!;
const stageNames = new Set(stages.map((s) => s.name).filter((n) => n !== undefined));
const last = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword).at(-1);

function execForm(args: string): string[] {
  assert.ok(args.startsWith("["), `expected exec form (JSON array), got ${args}`);
  return JSON.parse(args);
}

const allowNames = (argv: readonly string[]) =>
  new Set(argv.filter((a) => a.startsWith("--allow-")).map((a) => a.split("=")[0]));

Deno.test("every base image is pinned to a release, never latest", () => {
  assert.ok(stages.length >= 2, "a build stage and a runtime stage");
  for (const stage of stages) {
    if (stageNames.has(stage.image)) continue; // built on an earlier stage
    assert.match(stage.image, /^denoland\/deno:\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$/, stage.image);
    assert.doesNotMatch(stage.image, /latest/);
  }
  assert.match(runtime.image, /^denoland\/deno:/, "the runtime is the official Deno image");
});

Deno.test("the container runs as a non-root user", () => {
  const user = last("USER");
  assert.ok(user, "a USER instruction in the runtime stage");
  assert.ok(!["root", "0", "0:0", "root:root"].includes(user.args), `USER ${user.args}`);
  const run = runtime.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
  assert.match(run, new RegExp(`chown ${user.args}(:\\S+)? /app/\\.data`), "the user owns the data dir");
  // The task mounts a volume there on a read-only root filesystem: declared a VOLUME after the chown, it
  // starts owned by the app's user.
  const volume = runtime.instructions.findIndex((i) => i.keyword === "VOLUME");
  assert.ok(volume >= 0, "a VOLUME for the data dir");
  assert.deepEqual(execForm(runtime.instructions[volume].args), [DATA_DIR]);
  assert.equal(envOf(runtime).PROXY_DATA_DIR, DATA_DIR);
  const chown = runtime.instructions.findIndex((i) => i.keyword === "RUN" && i.args.includes("chown"));
  assert.ok(chown < volume, "VOLUME after the chown (later changes to a volume path are discarded)");
});

Deno.test("port 8000 is exposed and the health check probes /health", () => {
  assert.ok(runtime.instructions.some((i) => i.keyword === "EXPOSE" && i.args.split(/\s+/).includes("8000")));
  const health = last("HEALTHCHECK");
  assert.ok(health && !/^NONE\b/i.test(health.args), "a HEALTHCHECK");
  assert.match(health.args, /\/health/);
  assert.equal(envOf(runtime).PROXY_PORT, "8000");
});

Deno.test("the command runs main.ts with the start task's permissions, writing only to the data dir", () => {
  const cmd = execForm(last("CMD")!.args);
  const entrypoint = last("ENTRYPOINT");
  assert.equal(entrypoint, undefined, "keeps the image's tini entrypoint, which forwards SIGTERM");
  assert.deepEqual(cmd.slice(0, 2), ["deno", "run"]);
  assert.equal(cmd.at(-1), "main.ts");
  assert.ok(!cmd.includes("-A") && !cmd.includes("--allow-all"));
  assert.deepEqual(cmd, APP_COMMAND, "the stack's migrate container runs this command with `migrate` added");

  const denoJson = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const start: string = denoJson.tasks.start;
  assert.match(start, /deno run .*main\.ts/);
  // `--allow-run` lets `start` build missing console assets; the image builds them at build time, so the container
  // runs without it and must not need more than the start task has.
  const startNames = allowNames(start.split(/\s+/));
  startNames.delete("--allow-run");
  assert.deepEqual(allowNames(cmd), startNames);
  assert.ok(!cmd.includes("--allow-run"), "the container never spawns processes");

  const dataDir = envOf(runtime).PROXY_DATA_DIR;
  assert.ok(dataDir?.startsWith("/"), "an absolute PROXY_DATA_DIR");
  const writes = cmd.filter((a) => a.startsWith("--allow-write"));
  assert.equal(writes.length, 1);
  assert.ok(writes[0].includes("="), "--allow-write is narrowed to paths");
  for (const path of writes[0].split("=")[1].split(",")) {
    assert.ok(
      path === dataDir || path.startsWith(`${dataDir}/`),
      `writes only under ${dataDir}, not ${path}`,
    );
  }
});

Deno.test("dependencies come from the lockfile and CSS and islands are built at image build time", () => {
  const runs = stages.flatMap((s) => s.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args));
  assert.ok(runs.some((r) => /deno install --frozen/.test(r)), "deno install --frozen");
  assert.ok(runs.some((r) => /deno task build/.test(r)), "deno task build");
  const copies = runtime.instructions.filter((i) => i.keyword === "COPY").map((i) => i.args);
  assert.ok(
    copies.some((c) => /--from=[\w-]+ \/app\/static\/build/.test(c)),
    "the runtime gets static/build",
  );
  assert.ok(copies.some((c) => /--from=[\w-]+ \/app\/node_modules/.test(c)), "the runtime gets node_modules");
  assert.ok(stages[0].instructions.findIndex((i) => i.keyword === "COPY" && /deno\.lock/.test(i.args)) >= 0);
});

Deno.test("the runtime gets only the trimmed dependencies, after the full sources, and checks them against main.ts", () => {
  const trim = stages.find((s) => s.instructions.some((i) => /scripts\/runtime_deps\.ts/.test(i.args)));
  assert.ok(trim?.name, "a named stage runs scripts/runtime_deps.ts");
  const trimRun = trim.instructions.find((i) => i.keyword === "RUN")!.args;
  assert.match(trimRun, /scripts\/runtime_deps\.ts\s*&&\s*deno install\b/, "trims, then installs");
  const copies = runtime.instructions.filter((i) => i.keyword === "COPY");
  const index = (re: RegExp) => copies.findIndex((c) => re.test(c.args));
  const sources = index(/^\. \.$/);
  const config = index(new RegExp(`--from=${trim.name} /app/deno\\.json /app/deno\\.lock`));
  const modules = index(new RegExp(`--from=${trim.name} /app/node_modules`));
  assert.ok(sources >= 0 && config > sources, "the trimmed deno.json and deno.lock overwrite the full ones");
  assert.ok(modules >= 0, "node_modules comes from the trimming stage");
  assert.ok(!copies.some((c) => /--from=deps \/app\/node_modules/.test(c.args)), "not the full node_modules");
  const runs = runtime.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
  assert.ok(
    runs.some((r) => /deno cache --frozen main\.ts/.test(r)),
    "the graph is checked against the lock",
  );
});

Deno.test("the image's drain deadline matches the stack's, inside the ECS stop timeout", () => {
  assert.equal(Number(envOf(runtime).PROXY_SHUTDOWN_DRAIN_SECONDS), SHUTDOWN_DRAIN_SECONDS);
  assert.ok(SHUTDOWN_DRAIN_SECONDS < STOP_TIMEOUT_SECONDS);
  assert.equal(envOf(runtime).PROXY_ENV, "production");
});

Deno.test("every PROXY_ variable the image sets is a setting the app knows, with a value it takes", async () => {
  // The app refuses an unknown PROXY_ variable at start; the image's own must never be one.
  const env = Object.fromEntries(Object.entries(envOf(runtime)).filter(([k]) => k.startsWith("PROXY_")));
  assert.ok(Object.keys(env).length > 0);
  const config = await loadConfig(env, fileConfigIo(() => Promise.reject(new Error("not hashed here"))), {
    databaseOnly: true,
  }).catch((e) => e);
  // Production without a database is refused, for that reason alone.
  assert.ok(config instanceof ConfigError, String(config));
  assert.deepEqual(config.problems.map((p) => p.split(":")[0]), ["PROXY_DATABASE_URL"]);
});

Deno.test("the image, the start task and the benchmark give glibc the same mmap threshold", () => {
  // The benchmark measures the allocator setting that ships; a change to one of the three must reach the others.
  assert.equal(envOf(runtime).MALLOC_MMAP_THRESHOLD_, String(IMAGE_MMAP_THRESHOLD));
  const start: string = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks.start;
  assert.ok(
    start.startsWith(`MALLOC_MMAP_THRESHOLD_=${IMAGE_MMAP_THRESHOLD} deno run `),
    `the start task sets the image's MALLOC_MMAP_THRESHOLD_, got: ${start}`,
  );
});

Deno.test(".dockerignore keeps local state, build output and tests out of the build context", () => {
  const entries = Deno.readTextFileSync(`${ROOT}.dockerignore`).split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  for (const required of [".git", ".data", "cdk.out", "node_modules", "tests", "static/build", ".env"]) {
    assert.ok(entries.includes(required), `.dockerignore lists ${required}`);
  }
  assert.deepEqual(new Set(entries), new Set(DOCKER_CONTEXT_EXCLUDES), "CDK's asset exclude list agrees");
});

Deno.test("the health check command exits 0 while /health answers 200 and 1 otherwise", async () => {
  const argv = execForm(last("HEALTHCHECK")!.args.replace(/^.*?\bCMD\s+/, ""));
  assert.equal(argv[0], "deno");
  const probe = async (port: number) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: argv.slice(1),
      env: { PROXY_PORT: String(port) },
      cwd: ROOT,
      stdout: "null",
      stderr: "null",
    }).output();
    return out.code;
  };
  let status = 200;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/health"
        ? Response.json({ status: "ok" }, { status })
        : new Response(null, { status: 404 }),
  );
  try {
    assert.equal(await probe(server.addr.port), 0);
    status = 503;
    assert.equal(await probe(server.addr.port), 1);
  } finally {
    await server.shutdown();
  }
  assert.equal(await probe(server.addr.port), 1, "nothing listening");
});

Deno.test("dockerfilelint finds no issues (when npx can fetch it)", async () => {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("npx", {
      args: ["-y", "dockerfilelint@1.8.0", "-o", "json", DOCKERFILE],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
  } catch (e) {
    console.warn(`dockerfilelint skipped: ${(e as Error).message}`);
    return;
  }
  let report: { files: Array<{ issues: Array<{ line: string; content: string; title: string }> }> };
  try {
    report = JSON.parse(new TextDecoder().decode(out.stdout));
  } catch {
    console.warn(`dockerfilelint skipped (no report): ${new TextDecoder().decode(out.stderr).slice(0, 300)}`);
    return;
  }
  const issues = report.files.flatMap((f) => f.issues).filter((issue) => {
    // The linter predates multi-stage builds: `FROM <earlier stage> AS x` is not an untagged image.
    const from = /^FROM\s+(\S+)/i.exec(issue.content);
    return !(issue.title === "Base Image Missing Tag" && from && stageNames.has(from[1]));
  });
  assert.deepEqual(issues, []);
});
