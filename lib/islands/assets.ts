/**
 * Where the built CSS and islands bundle are: `static/build/manifest.json` (written by `scripts/build_assets.ts`)
 * maps logical names to content-hashed file names, which are served with immutable cache headers. The manifest
 * is re-read when it changes, so `build:watch` output is picked up without a restart.
 *
 * @example
 * ```ts
 * assetUrls(); // { css: "/static/build/app.3f9a1c2b7d.css", js: "/static/build/islands.9d2e….js" }
 * ```
 */

/** The build output directory. */
export const BUILD_DIR = new URL("../../static/build/", import.meta.url);
/** The manifest's file name inside {@link BUILD_DIR}. */
export const MANIFEST = "manifest.json";
/** URL prefix the build directory is served under. */
export const BUILD_URL = "/static/build/";

/** Logical asset name → hashed file name. */
export type Manifest = Record<string, string>;

let cached: { mtime: number; checkedAt: number; manifest: Manifest | null } | null = null;

/** The manifest, or null when the assets have not been built; re-checked at most once a second. */
export function readManifest(now = Date.now()): Manifest | null {
  if (cached && now - cached.checkedAt < 1000) return cached.manifest;
  const path = new URL(MANIFEST, BUILD_DIR);
  try {
    const mtime = Deno.statSync(path).mtime?.getTime() ?? 0;
    if (cached && cached.mtime === mtime && cached.manifest) {
      cached.checkedAt = now;
      return cached.manifest;
    }
    const manifest = JSON.parse(Deno.readTextFileSync(path)) as Manifest;
    cached = { mtime, checkedAt: now, manifest };
  } catch {
    cached = { mtime: 0, checkedAt: now, manifest: null };
  }
  return cached.manifest;
}

/** URLs of the stylesheet and the islands bundle (unhashed names when the build is missing). */
export function assetUrls(): { css: string; js: string } {
  const m = readManifest();
  return {
    css: BUILD_URL + (m?.["app.css"] ?? "app.css"),
    js: BUILD_URL + (m?.["islands.js"] ?? "islands.js"),
  };
}
