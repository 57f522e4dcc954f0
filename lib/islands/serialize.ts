/**
 * Island props travel from the server to the browser as JSON inside the page. Two rules make that safe:
 *
 * 1. Props are plain data: `null`, booleans, finite numbers, strings, arrays and plain objects. A function, a class
 *    instance (a `Date` too: pass an ISO string), a symbol, a bigint, `NaN`/`Infinity` or a cycle is refused when the
 *    page is rendered, so nothing is silently lost or turned into `{}` on the way.
 * 2. The JSON is escaped for embedding in HTML: `<`, `>`, `&`, U+2028 and U+2029 become `\uXXXX` escapes, so no
 *    string a user controls (an email, a key name) can close the `<script type="application/json">` element, open
 *    an HTML comment, or end a line inside a script. `JSON.parse` reads the escapes back unchanged.
 *
 * @example
 * ```ts
 * serializeProps({ email: "</script><!--x@example.com" });
 * // '{"email":"\u003c/script\u003e\u003c!--x@example.com"}'
 * ```
 */

/** A value that survives JSON unchanged. */
export type PlainData = null | boolean | number | string | PlainData[] | {
  [key: string]: PlainData | undefined;
};

/** Thrown when props are not plain data; names the path of the offending value. */
export class IslandPropsError extends TypeError {
  constructor(readonly path: string, what: string) {
    super(`island props must be plain data: ${path} is ${what}`);
    this.name = "IslandPropsError";
  }
}

/** Throws {@link IslandPropsError} unless `value` is plain data (see the module documentation). */
export function assertPlainData(value: unknown, path = "props"): void {
  check(value, path, new Set());
}

function check(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw new IslandPropsError(path, `${value} (not a finite number)`);
      return;
    case "undefined":
      // An absent optional property is fine; `undefined` as a value elsewhere has no JSON form.
      throw new IslandPropsError(path, "undefined");
    case "function":
      throw new IslandPropsError(path, "a function");
    case "symbol":
    case "bigint":
      throw new IslandPropsError(path, `a ${typeof value}`);
  }
  if (value === null) return;
  const obj = value as object;
  if (seen.has(obj)) throw new IslandPropsError(path, "a circular reference");
  seen.add(obj);
  if (Array.isArray(obj)) {
    obj.forEach((item, i) => check(item, `${path}[${i}]`, seen));
  } else {
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      const name = (obj as { constructor?: { name?: string } }).constructor?.name ?? "an object";
      throw new IslandPropsError(path, `an instance of ${name} (pass plain objects, strings and numbers)`);
    }
    if (Object.getOwnPropertySymbols(obj).length > 0) throw new IslandPropsError(path, "keyed by symbols");
    for (const [key, item] of Object.entries(obj)) {
      if (item === undefined) continue;
      check(item, `${path}.${key}`, seen);
    }
  }
  seen.delete(obj);
}

const UNSAFE = /[<>&\u2028\u2029]/g;
const ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

/** Checks `props` and returns JSON that is safe inside an HTML `<script type="application/json">` element. */
export function serializeProps(props: unknown): string {
  assertPlainData(props);
  return JSON.stringify(props).replace(UNSAFE, (c) => ESCAPES[c]);
}
