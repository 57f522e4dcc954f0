/**
 * Trims `deno.json` and `deno.lock` to the packages the running proxy needs, for the container image: the AWS CDK
 * (deploy), Tailwind's CLI (asset build), Puppeteer and the Anthropic SDK (tests) are about 250 MB of
 * `node_modules` that `main.ts` never loads. Deno installs every package the config and lock name, so the image's
 * runtime stage runs this first, then `deno install` (which drops the lock entries nothing refers to any more)
 * and `deno cache --frozen main.ts` (which fails the build if the trimmed lock misses anything `main.ts` needs).
 *
 * `scripts/runtime_deps_test.ts` checks that `main.ts`'s module graph uses none of {@link DEV_ONLY_PACKAGES}.
 *
 * ```sh
 * deno run --no-config --allow-read=. --allow-write=. scripts/runtime_deps.ts   # in the image build only
 * ```
 */

/** npm packages used only to build, test or deploy: never by `main.ts`. */
export const DEV_ONLY_PACKAGES: readonly string[] = [
  "aws-cdk-lib",
  "constructs",
  "tailwindcss",
  "@tailwindcss/cli",
  "puppeteer-core",
  "@anthropic-ai/sdk",
];

/** The package a `npm:` specifier names (`npm:@scope/name@^1` → `@scope/name`), or null for other specifiers. */
export function npmPackageOf(specifier: string): string | null {
  const m = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)/.exec(specifier);
  return m ? m[1] : null;
}

/** The config and lock without the dev-only packages: imports and lock specifiers naming them are removed. */
export function trimForRuntime(
  config: { imports?: Record<string, string> } & Record<string, unknown>,
  lock: { specifiers?: Record<string, string> } & Record<string, unknown>,
  devOnly: readonly string[] = DEV_ONLY_PACKAGES,
): { config: typeof config; lock: typeof lock; removed: string[] } {
  const isDev = (specifier: string) => devOnly.includes(npmPackageOf(specifier) ?? "");
  const removed: string[] = [];
  const imports = Object.fromEntries(
    Object.entries(config.imports ?? {}).filter(([name, target]) => {
      if (!isDev(target)) return true;
      removed.push(name);
      return false;
    }),
  );
  const specifiers = Object.fromEntries(
    Object.entries(lock.specifiers ?? {}).filter(([specifier]) => !isDev(specifier)),
  );
  return { config: { ...config, imports }, lock: { ...lock, specifiers }, removed };
}

if (import.meta.main) {
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  const lock = JSON.parse(await Deno.readTextFile("deno.lock"));
  const trimmed = trimForRuntime(config, lock);
  await Deno.writeTextFile("deno.json", JSON.stringify(trimmed.config, null, 2) + "\n");
  await Deno.writeTextFile("deno.lock", JSON.stringify(trimmed.lock, null, 2) + "\n");
  console.log(`runtime deps: dropped ${trimmed.removed.join(", ") || "nothing"}`);
}
