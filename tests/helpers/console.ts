/**
 * The admin console for tests: the real application (`makeTestApp`) with the console mounted at `/admin` and the
 * static files at `/static`, as `app.ts` mounts them, plus a tiny browser-like client (cookie jar, forms with the
 * page's CSRF token) for `app.request()` tests.
 */
import type { Db } from "../../lib/db/db.ts";
import { createLogger } from "../../lib/log.ts";
import type { ServiceOverrides } from "../../lib/services.ts";
import { adminRoutes } from "../../routes/admin/mod.tsx";
import { staticRoutes } from "../../routes/static.ts";
import { ADMIN_PASSWORD, makeTestApp, type TestApp } from "./app.ts";
import { addAggregates, insertUsageRows, type UsageRecord } from "../../lib/db/usage.ts";
import { aggregate } from "../../lib/usage/recorder.ts";

/** A response as the console tests look at it. */
export interface Page {
  status: number;
  headers: Headers;
  html: string;
  /** The redirect target, if any. */
  location: string | null;
}

/** The console application and a signed-in-capable client. */
export interface ConsoleTest {
  t: TestApp;
  /** Cookies the client holds (name → value). */
  cookies: Map<string, string>;
  /** Raw `Set-Cookie` headers of the last response. */
  lastSetCookies: string[];
  get(path: string, headers?: Record<string, string>): Promise<Page>;
  /** Posts a form; the CSRF token of the last page is added unless `csrf` is false or a string to send instead. */
  post(path: string, form: Record<string, string>, opts?: { csrf?: boolean | string }): Promise<Page>;
  /** Signs in through the sign-in form. */
  signIn(): Promise<Page>;
  /** The CSRF token found in the last page (null when it had none). */
  csrf: () => string | null;
}

/** Builds the app over `db` with the console mounted, unless `app.ts` mounts it already. */
export async function makeConsoleApp(
  db: Db,
  env: Record<string, string> = {},
  overrides: ServiceOverrides = {},
): Promise<ConsoleTest> {
  const t = await makeTestApp(db, env, overrides);
  const log = createLogger({ level: "debug", sink: (l) => t.logs.push(l) });
  // app.ts may mount the console itself one day; mounting it twice would be harmless, but keep one.
  if (!t.app.routes.some((r) => r.path === "/admin/login")) {
    t.app.route("/admin", adminRoutes({ config: t.config, db, services: t.services, log }));
  }
  if (!t.app.routes.some((r) => r.path.startsWith("/static/"))) t.app.route("/static", staticRoutes());

  const cookies = new Map<string, string>();
  let lastHtml = "";
  const c: ConsoleTest = {
    t,
    cookies,
    lastSetCookies: [],
    csrf: () => /name="_csrf" value="([^"]+)"/.exec(lastHtml)?.[1] ?? null,
    async get(path, headers = {}) {
      return await send(path, { method: "GET", headers });
    },
    async post(path, form, opts = {}) {
      const body = new URLSearchParams(form);
      const token = typeof opts.csrf === "string" ? opts.csrf : opts.csrf === false ? null : c.csrf();
      if (token !== null && !("_csrf" in form)) body.set("_csrf", token);
      return await send(path, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: body.toString(),
      });
    },
    async signIn() {
      await c.get("/admin/login");
      const page = await c.post("/admin/login", { username: "admin", password: ADMIN_PASSWORD });
      if (page.status !== 303) throw new Error(`sign-in failed: ${page.status}\n${page.html.slice(0, 500)}`);
      return page;
    },
  };

  async function send(
    path: string,
    init: { method: string; headers: Record<string, string>; body?: string },
  ) {
    const cookieHeader = [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await t.app.request(`http://console.test${path}`, {
      method: init.method,
      headers: { ...init.headers, ...(cookieHeader ? { cookie: cookieHeader } : {}) },
      body: init.body,
    });
    c.lastSetCookies = res.headers.getSetCookie();
    for (const sc of c.lastSetCookies) {
      const [pair, ...attrs] = sc.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) ||
        attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split("=")[1]) < Date.now());
      if (expired || value === "") cookies.delete(name);
      else cookies.set(name, value);
    }
    const html = await res.text();
    if (html.includes("_csrf")) lastHtml = html;
    return { status: res.status, headers: res.headers, html, location: res.headers.get("location") };
  }

  return c;
}

/** Decodes the few HTML entities Preact emits in text, for assertions on page text. */
export function text(html: string): string {
  return html.replace(/<[^>]*>/g, " ").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'").replace(/&amp;/g, "&").replace(/\s+/g, " ");
}

/** Writes usage rows (and their hour/day aggregates) as the recorder would; fields not given get defaults. */
export async function seedUsage(
  db: Db,
  timeZone: string,
  rows: Array<Partial<UsageRecord> & { accessKeyId: string; userId: string }>,
): Promise<UsageRecord[]> {
  const records: UsageRecord[] = rows.map((r, i) => ({
    requestId: `req_${crypto.randomUUID()}`,
    messageId: `msg_${i}`,
    model: "claude-sonnet-4-5-20250929",
    modelServed: null,
    stream: true,
    inputTokens: 1200,
    outputTokens: 300,
    cacheReadInputTokens: 5000,
    cacheCreationInputTokens: 800,
    provider: "anthropic",
    isFallback: false,
    fallbackReason: null,
    statusCode: 200,
    errorType: null,
    stopReason: "end_turn",
    latencyMs: 850,
    timeToFirstByteMs: 240,
    costUsd: 0.0123,
    createdAt: new Date().toISOString(),
    ...r,
  }));
  const inserted = await insertUsageRows(db, records);
  await addAggregates(db, aggregate(records.filter((r) => inserted.has(r.requestId)), timeZone));
  return records;
}
