/**
 * Builds the console's browser assets into `static/build/` (git-ignored):
 *
 * - `app.<hash>.css`: Tailwind v4 (`npm:@tailwindcss/cli`) from `static/styles.css`, minified;
 * - `islands.<hash>.js`: the islands bundle (`deno bundle --platform browser`, esbuild inside) from
 *   `islands/client.ts`, minified;
 * - `manifest.json`: logical name → hashed file name, read by `lib/islands/assets.ts`.
 *
 * Content hashes in the names let `/static/build/` be served as immutable. Each step is one function
 * (`buildCss`, `bundleIslands`) so the bundler, marked experimental in Deno, can be swapped in one place.
 *
 * Usage:
 *   deno run -A scripts/build_assets.ts            # build once
 *   deno run -A scripts/build_assets.ts --watch    # build, then rebuild when pages, islands or styles change
 *
 * `ensureAssets(log)` builds only when the manifest or a file it names is missing (for `deno task start`).
 */
import { toHex } from "../lib/encoding.ts";

/** The minimal logger this script needs (the program's `Logger` fits). */
export interface BuildLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Logical name → hashed file name. */
export type Manifest = Record<string, string>;

const ROOT = new URL("../", import.meta.url);
const BUILD = new URL("static/build/", ROOT);
const MANIFEST = new URL("manifest.json", BUILD);
const CSS_INPUT = "static/styles.css";
const ISLANDS_ENTRY = "islands/client.ts";
/** Pinned through `deno.lock`; `tailwindcss` itself must be in the imports map for `@import "tailwindcss"`. */
const TAILWIND_CLI = "npm:@tailwindcss/cli@^4";
/** What `--watch` watches (relative to the project root). */
const WATCHED = ["routes", "components", "islands", "lib/islands", "static/styles.css"];

const consoleLog: BuildLog = {
  info: (msg, f) => console.error(`build: ${msg}${f ? " " + JSON.stringify(f) : ""}`),
  warn: (msg, f) => console.error(`build: warning: ${msg}${f ? " " + JSON.stringify(f) : ""}`),
  error: (msg, f) => console.error(`build: error: ${msg}${f ? " " + JSON.stringify(f) : ""}`),
};

async function run(args: string[], what: string): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim() || new TextDecoder().decode(out.stdout).trim();
    throw new Error(`${what} failed (exit ${out.code}):\n${text.slice(-4000)}`);
  }
}

/** Tailwind: `static/styles.css` → `outFile` (minified). */
export async function buildCss(outFile: string, minify = true): Promise<void> {
  await run(
    ["run", "-A", TAILWIND_CLI, "-i", CSS_INPUT, "-o", outFile, ...(minify ? ["--minify"] : [])],
    "tailwind",
  );
}

/** The islands bundle: `islands/client.ts` → `outFile` (ES module for browsers, minified). */
export async function bundleIslands(outFile: string, minify = true): Promise<void> {
  await run(
    [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--format",
      "esm",
      ...(minify ? ["--minify"] : []),
      "-o",
      outFile,
      ISLANDS_ENTRY,
    ],
    "deno bundle",
  );
}

async function hashOf(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))).slice(0, 12);
}

async function readManifestFile(): Promise<Manifest | null> {
  try {
    return JSON.parse(await Deno.readTextFile(MANIFEST)) as Manifest;
  } catch {
    return null;
  }
}

/** Builds everything and writes the manifest; returns it. Old hashed files beyond the previous build are removed. */
export async function buildAssets(opts: { minify?: boolean; log?: BuildLog } = {}): Promise<Manifest> {
  const log = opts.log ?? consoleLog;
  const minify = opts.minify ?? true;
  const started = performance.now();
  await Deno.mkdir(BUILD, { recursive: true });
  const tmp = new URL(`.tmp-${crypto.randomUUID()}/`, BUILD);
  await Deno.mkdir(tmp);
  try {
    const css = new URL("app.css", tmp).pathname;
    const js = new URL("islands.js", tmp).pathname;
    await Promise.all([buildCss(css, minify), bundleIslands(js, minify)]);
    const previous = await readManifestFile();
    const manifest: Manifest = {};
    for (const [logical, file] of [["app.css", css], ["islands.js", js]] as const) {
      const bytes = await Deno.readFile(file);
      const [base, ext] = logical.split(".");
      const name = `${base}.${await hashOf(bytes)}.${ext}`;
      manifest[logical] = name;
      const target = new URL(name, BUILD);
      await Deno.rename(file, target);
      await Deno.chmod(target, 0o644).catch(() => {});
    }
    // The manifest goes last and atomically: a page never names a file that is not there yet.
    const manifestTmp = new URL(`manifest.${crypto.randomUUID()}.tmp`, BUILD);
    await Deno.writeTextFile(manifestTmp, JSON.stringify(manifest, null, 2) + "\n");
    await Deno.rename(manifestTmp, MANIFEST);
    await prune(new Set([...Object.values(manifest), ...Object.values(previous ?? {})]));
    log.info("assets built", {
      ...manifest,
      ms: Math.round(performance.now() - started),
    });
    return manifest;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Removes hashed files that neither the current nor the previous manifest names. */
async function prune(keep: Set<string>): Promise<void> {
  for await (const entry of Deno.readDir(BUILD)) {
    if (entry.isFile && /\.[0-9a-f]{12}\.(css|js)$/.test(entry.name) && !keep.has(entry.name)) {
      await Deno.remove(new URL(entry.name, BUILD)).catch(() => {});
    }
  }
}

/** Whether the manifest exists and every file it names is there. */
export async function assetsPresent(): Promise<boolean> {
  const manifest = await readManifestFile();
  if (!manifest || !manifest["app.css"] || !manifest["islands.js"]) return false;
  for (const name of Object.values(manifest)) {
    try {
      await Deno.stat(new URL(name, BUILD));
    } catch {
      return false;
    }
  }
  return true;
}

let ensuring: Promise<void> | null = null;

/**
 * Builds the assets when they are missing (a fresh checkout); otherwise does nothing. A failed build is logged,
 * not thrown: the console then renders without styles and scripts, and everything else works.
 */
export function ensureAssets(log: BuildLog = consoleLog): Promise<void> {
  ensuring ??= (async () => {
    if (await assetsPresent()) return;
    log.info("console assets missing; building them (static/build/)");
    try {
      await buildAssets({ log });
    } catch (e) {
      log.error("building console assets failed; run `deno task build`", { error: (e as Error).message });
    }
  })().finally(() => {
    ensuring = null;
  });
  return ensuring;
}

/** Builds, then rebuilds on every change under the watched paths (debounced) until the process ends. */
export async function watchAssets(log: BuildLog = consoleLog): Promise<never> {
  await buildAssets({ log }).catch((e) => log.error((e as Error).message));
  const paths = WATCHED.map((p) => new URL(p, ROOT).pathname);
  const watcher = Deno.watchFs(paths, { recursive: true });
  log.info("watching for changes", { paths: WATCHED });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let building: Promise<unknown> = Promise.resolve();
  for await (const event of watcher) {
    if (event.paths.every((p) => p.includes("/static/build/") || /[~#]$|\.swp$/.test(p))) continue;
    clearTimeout(timer);
    timer = setTimeout(() => {
      building = building.then(() => buildAssets({ log }).catch((e) => log.error((e as Error).message)));
    }, 150);
  }
  throw new Error("file watcher ended");
}

if (import.meta.main) {
  if (Deno.args.includes("--watch")) await watchAssets();
  else {
    try {
      await buildAssets({ minify: !Deno.args.includes("--no-minify") });
    } catch (e) {
      console.error((e as Error).message);
      Deno.exit(1);
    }
  }
}
