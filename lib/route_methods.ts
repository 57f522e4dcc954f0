/**
 * The methods an application's routes take at a path, so a request with another method is told so (405 with
 * `Allow`) instead of "no route" (404), which reads as a wrong URL when the URL is right.
 *
 * Reads Hono's `app.routes` on the first call, once every route is registered (a not-found handler is set up
 * before the routes after it). Middleware (`ALL`) does not count: it matches every path and answers none.
 *
 * @example
 * ```ts
 * const allowed = routeMethods(app);
 * allowed("/api/users/42"); // ["DELETE", "GET", "HEAD", "PATCH"]
 * allowed("/nowhere"); // []
 * ```
 */
export function routeMethods(
  app: { readonly routes: readonly { method: string; path: string }[] },
): (path: string) => string[] {
  let table: { pattern: RegExp; method: string }[] | null = null;
  return (path) => {
    table ??= app.routes.filter((r) => r.method !== "ALL").map((r) => ({
      pattern: patternOf(r.path),
      method: r.method,
    }));
    const methods = new Set<string>();
    for (const { pattern, method } of table) {
      if (!pattern.test(path)) continue;
      methods.add(method);
      // Hono answers HEAD with the GET route.
      if (method === "GET") methods.add("HEAD");
    }
    return [...methods].sort();
  };
}

/** `/users/:id`, `/x/:name{[a-z]+}` and `/static/*` as an anchored regular expression. */
function patternOf(path: string): RegExp {
  let source = "";
  for (const part of path.split(/(:\w+(?:\{(?:[^{}]|\{[^{}]*\})*\})?|\*)/)) {
    if (part === "*") source += ".*";
    else if (part.startsWith(":")) {
      const custom = /\{(.*)\}$/.exec(part);
      source += custom ? `(?:${custom[1]})` : "[^/]+";
    } else source += part.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}
