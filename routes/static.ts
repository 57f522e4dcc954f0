/**
 * `GET /static/*`: the console's built assets and favicon, from this process (no CDN).
 *
 * - `/static/build/<name>.<hash>.<ext>` (content-hashed by `scripts/build_assets.ts`): `Cache-Control: public,
 *   max-age=31536000, immutable`; a new build gets new names, so browsers never see a stale file.
 * - anything else (the unhashed fallbacks, `favicon.svg`): `public, max-age=300` with an ETag.
 *
 * Only flat file names of known types are served: no directories, no dot files, no `..`.
 *
 * @example
 * ```ts
 * app.route("/static", staticRoutes());
 * ```
 */
import { Hono } from "hono";

/** Options of {@link staticRoutes}; tests point `root` elsewhere. */
export interface StaticOptions {
  /** The `static/` directory. */
  root?: URL;
}

const TYPES: Record<string, string> = {
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  map: "application/json; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  woff2: "font/woff2",
  txt: "text/plain; charset=utf-8",
};

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\.([a-z0-9]+)$/;
/** Files served from `static/` itself (sources such as `styles.css` are not). */
const ROOT_FILES = new Set(["favicon.svg", "favicon.ico", "robots.txt"]);
const HASHED = /\.[0-9a-f]{10,}\.[a-z0-9]+$/;

/** Builds the static sub-application; mount it at `/static`. */
export function staticRoutes(opts: StaticOptions = {}): Hono {
  const root = opts.root ?? new URL("../static/", import.meta.url);
  const app = new Hono();

  const serve = async (dir: URL, name: string, method: string, ifNoneMatch: string | undefined) => {
    const m = NAME.exec(name);
    const type = m ? TYPES[m[1]] : undefined;
    if (!m || !type || name === "manifest.json") return null;
    const path = new URL(name, dir);
    let file: Deno.FileInfo;
    try {
      file = await Deno.stat(path);
    } catch {
      return null;
    }
    if (!file.isFile) return null;
    const etag = `W/"${file.size.toString(36)}-${(file.mtime?.getTime() ?? 0).toString(36)}"`;
    const headers: Record<string, string> = {
      "content-type": type,
      "cache-control": HASHED.test(name) ? "public, max-age=31536000, immutable" : "public, max-age=300",
      "x-content-type-options": "nosniff",
      etag,
    };
    if (ifNoneMatch === etag) return new Response(null, { status: 304, headers });
    headers["content-length"] = String(file.size);
    if (method === "HEAD") return new Response(null, { status: 200, headers });
    return new Response((await Deno.open(path)).readable, { status: 200, headers });
  };

  const notFound = () =>
    new Response("not found\n", {
      status: 404,
      headers: { "content-type": "text/plain; charset=utf-8", "x-content-type-options": "nosniff" },
    });

  app.on(
    ["GET", "HEAD"],
    "/build/:name",
    async (c) =>
      (await serve(
        new URL("build/", root),
        c.req.param("name"),
        c.req.method,
        c.req.header("if-none-match"),
      )) ??
        notFound(),
  );
  app.on(["GET", "HEAD"], "/:name", async (c) => {
    const name = c.req.param("name");
    if (!ROOT_FILES.has(name)) return notFound();
    return (await serve(root, name, c.req.method, c.req.header("if-none-match"))) ?? notFound();
  });
  app.all("*", () => notFound());
  return app;
}
