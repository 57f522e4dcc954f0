/**
 * The admin console rendered on the server through `app.request()`, on both database backends: sign-in and
 * sessions, CSRF, security headers, every page empty and with data, every form's success (PRG) and errors
 * (beside the field, input kept), the key shown once, and the static files.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { dbTest } from "./helpers/db.ts";
import { ADMIN_PASSWORD } from "./helpers/app.ts";
import { type ConsoleTest, makeConsoleApp, type Page, seedUsage, text } from "./helpers/console.ts";
import { createSessions } from "../lib/auth/session.ts";
import { createLogger } from "../lib/log.ts";
import { sql } from "../lib/db/sql.ts";
import { adminRoutes, CONTENT_SECURITY_POLICY, safeNext } from "../routes/admin/mod.tsx";
import { rangeSelection } from "../routes/admin/dashboard.tsx";
import { staticRoutes } from "../routes/static.ts";
import { startOfLocalDate } from "../components/format.ts";
import type { Db } from "../lib/db/db.ts";

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

/** The props of every island on a page, by island name, in page order. */
function islands(html: string): Array<{ name: string; props: Record<string, unknown> }> {
  const blocks = new Map<string, string>();
  for (const m of html.matchAll(/<script type="application\/json" id="([^"]+)">(.*?)<\/script>/gs)) {
    blocks.set(m[1], m[2]);
  }
  return [...html.matchAll(/data-island="([^"]+)" data-island-props="([^"]+)"/g)].map((m) => ({
    name: m[1],
    props: JSON.parse(blocks.get(m[2]) ?? "null"),
  }));
}

function cookieAttrs(setCookies: string[], name: string): string | undefined {
  return setCookies.find((s) => s.startsWith(`${name}=`));
}

async function signedIn(db: Db, env: Record<string, string> = {}): Promise<ConsoleTest> {
  const c = await makeConsoleApp(db, env);
  await c.signIn();
  return c;
}

async function createUser(c: ConsoleTest, email = "dev@example.com", extra: Record<string, string> = {}) {
  await c.get("/admin/users");
  const page = await c.post("/admin/users", { email, routing_strategy: "plan_first", ...extra });
  assert.equal(page.status, 303, page.html.slice(0, 300));
  return page.location!.match(UUID)![0];
}

/** Issues a key from the user's page: the POST redirects to the page that shows it once. */
async function issueKey(c: ConsoleTest, userId: string, name = "laptop") {
  await c.get(`/admin/users/${userId}`);
  const posted = await c.post(`/admin/users/${userId}/keys`, { name });
  assert.equal(posted.status, 303, posted.html.slice(0, 300));
  const keyId = /^\/admin\/keys\/([0-9a-f-]{36})\/new$/.exec(posted.location ?? "")![1];
  const page = await c.get(posted.location!);
  assert.equal(page.status, 200, page.html.slice(0, 300));
  const key = /data-new-key[^>]*>\s*(ak_[\w-]+)/.exec(page.html)![1];
  return { page, key, keyId };
}

async function auditActions(db: Db): Promise<string[]> {
  const rows = await db.query<{ action: string }>(sql`SELECT action FROM audit_events ORDER BY id`);
  return rows.map((r) => r.action);
}

// ---- sign-in, sessions, headers ---------------------------------------------------------------------------

dbTest(
  "a console page without a session redirects to sign-in with next; sign-in sets a strict HttpOnly cookie " +
    "scoped to /admin and returns there; sign-out clears it",
  async (db) => {
    const c = await makeConsoleApp(db);
    const first = await c.get("/admin/users?q=dev");
    assert.equal(first.status, 303);
    assert.equal(first.location, "/admin/login?next=%2Fadmin%2Fusers%3Fq%3Ddev");

    const login = await c.get(first.location!);
    assert.equal(login.status, 200);
    assert.match(login.html, /name="next" value="\/admin\/users\?q=dev"/);
    const loginCookie = cookieAttrs(c.lastSetCookies, "proxy_admin_login")!;
    assert.match(loginCookie, /HttpOnly/);
    assert.match(loginCookie, /SameSite=Strict/);
    assert.match(loginCookie, /Path=\/admin/);

    const signedIn = await c.post("/admin/login", {
      username: "admin",
      password: ADMIN_PASSWORD,
      next: "/admin/users?q=dev",
    });
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.location, "/admin/users?q=dev");
    const session = cookieAttrs(c.lastSetCookies, "proxy_admin_session")!;
    assert.match(session, /HttpOnly/);
    assert.match(session, /SameSite=Strict/);
    assert.match(session, /Path=\/admin(;|$)/);
    assert.match(session, /Max-Age=129600/, 'the token\'s 12 h and a day, to say "expired" after it');
    assert.doesNotMatch(session, /Secure/, "not Secure outside production (plain http in development)");
    assert.ok(!c.cookies.has("proxy_admin_login"), "the pre-session cookie is dropped");

    const dashboard = await c.get("/admin");
    assert.equal(dashboard.status, 200);
    assert.match(dashboard.html, /Sign out/);

    const copied = c.cookies.get("proxy_admin_session")!;
    const out = await c.post("/admin/logout", {});
    assert.equal(out.status, 303);
    assert.equal(out.location, "/admin/login?ok=signed_out");
    assert.ok(!c.cookies.has("proxy_admin_session"));
    assert.match((await c.get("/admin/login?ok=signed_out")).html, /You have signed out/);
    assert.equal((await c.get("/admin")).status, 303);
    // Signing out ends the session, not just this browser's cookie: a copy of it is refused too.
    c.cookies.set("proxy_admin_session", copied);
    const replayed = await c.get("/admin/users");
    assert.equal(replayed.status, 303);
    assert.match(replayed.location ?? "", /^\/admin\/login/);
  },
);

dbTest("after sign-in only same-site console paths are followed; others go to the dashboard", async (db) => {
  const c = await makeConsoleApp(db);
  for (
    const next of [
      "https://evil.example/",
      "//evil.example/admin",
      "/\\evil.example",
      "/api/users",
      "javascript:alert(1)",
    ]
  ) {
    await c.get("/admin/login");
    const page = await c.post("/admin/login", { username: "admin", password: ADMIN_PASSWORD, next });
    assert.equal(page.status, 303, next);
    assert.equal(page.location, "/admin", next);
    c.cookies.delete("proxy_admin_session");
  }
  // A signed-in visit to the sign-in page goes straight on.
  await c.signIn();
  const again = await c.get("/admin/login?next=%2Fadmin%2Faudit");
  assert.equal(again.status, 303);
  assert.equal(again.location, "/admin/audit");
});

Deno.test("safeNext accepts console paths only", () => {
  for (const ok of ["/admin", "/admin/users?q=a", "/admin/keys/1#x", "/admin?range=7d"]) {
    assert.equal(safeNext(ok), ok);
  }
  for (
    const bad of [
      undefined,
      "",
      "/",
      "/administrator",
      "//evil.example",
      "/admin\\..\\x",
      "https://evil.example/admin",
      "/admin/login",
      "/admin/logout",
      "/admin/\r\nSet-Cookie: x=1",
      "/admin/" + "x".repeat(3000),
      // Resolved by the browser, these leave the console: `//evil.example` on this host, or another path.
      "/admin/..//evil.example",
      "/admin/%2e%2e/ak/x",
      "/admin/./../x?y=1",
    ]
  ) assert.equal(safeNext(bad), null, String(bad));
});

dbTest("in production the session cookie is Secure", async (db) => {
  const base = await makeConsoleApp(db);
  const app = new Hono();
  app.route(
    "/admin",
    adminRoutes({
      config: { ...base.t.config, env: "production" },
      db,
      services: base.t.services,
      log: createLogger({ level: "error", sink: () => {} }),
    }),
  );
  const login = await app.request("/admin/login");
  const nonceCookie = login.headers.getSetCookie()[0];
  assert.match(nonceCookie, /Secure/);
  const token = /name="_csrf" value="([^"]+)"/.exec(await login.text())![1];
  const res = await app.request("/admin/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: nonceCookie.split(";")[0] },
    body: new URLSearchParams({ _csrf: token, username: "admin", password: ADMIN_PASSWORD }).toString(),
  });
  assert.equal(res.status, 303);
  assert.match(res.headers.getSetCookie().find((s) => s.startsWith("proxy_admin_session="))!, /Secure/);
});

dbTest(
  "a form posted as multipart/form-data (a browser's FormData) is read like a urlencoded one",
  async (db) => {
    const { app } = (await makeConsoleApp(db)).t;
    const login = await app.request("/admin/login");
    const nonceCookie = login.headers.getSetCookie()[0].split(";")[0];
    const token = /name="_csrf" value="([^"]+)"/.exec(await login.text())![1];
    // A boundary as Chrome makes them: mixed case, which a parser must keep as sent.
    const boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    const fields = { _csrf: token, username: "admin", password: ADMIN_PASSWORD };
    const body = Object.entries(fields)
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join("") + `--${boundary}--\r\n`;
    const res = await app.request("/admin/login", {
      method: "POST",
      headers: { "content-type": `multipart/form-data; boundary=${boundary}`, cookie: nonceCookie },
      body,
    });
    assert.equal(res.status, 303, "signed in: the CSRF token and the fields were read");
  },
);

dbTest("sign-in: wrong password is 401 keeping the user name; a missing login token is 403", async (db) => {
  const c = await makeConsoleApp(db);
  await c.get("/admin/login");
  const wrong = await c.post("/admin/login", { username: "admin", password: "nope" });
  assert.equal(wrong.status, 401);
  assert.match(text(wrong.html), /Wrong user name or password/);
  assert.match(wrong.html, /id="login-username"[^>]*value="admin"/);
  assert.doesNotMatch(wrong.html, /value="nope"/, "the password is never echoed");

  const noToken = await c.post("/admin/login", { username: "admin", password: ADMIN_PASSWORD }, {
    csrf: false,
  });
  assert.equal(noToken.status, 403);
  assert.ok(!c.cookies.has("proxy_admin_session"));
  // A token for another nonce (another browser's form) is refused too.
  const other = await makeConsoleApp(db);
  await other.get("/admin/login");
  const foreign = await c.post("/admin/login", { username: "admin", password: ADMIN_PASSWORD }, {
    csrf: other.csrf()!,
  });
  assert.equal(foreign.status, 403);
  assert.ok(!c.cookies.has("proxy_admin_session"));
  // The refusal page carries a fresh form that works.
  assert.equal((await c.post("/admin/login", { username: "admin", password: ADMIN_PASSWORD })).status, 303);
});

dbTest("sign-in throttling answers 429 with the wait shown", async (db) => {
  const c = await makeConsoleApp(db);
  await c.get("/admin/login");
  for (let i = 0; i < 5; i++) {
    assert.equal((await c.post("/admin/login", { username: "admin", password: `bad${i}` })).status, 401);
  }
  const blocked = await c.post("/admin/login", { username: "admin", password: ADMIN_PASSWORD });
  assert.equal(blocked.status, 429);
  assert.ok(Number(blocked.headers.get("retry-after")) > 0);
  assert.match(text(blocked.html), /Too many failed sign-ins\. Try again in \d+ seconds?\./);
  assert.ok(!c.cookies.has("proxy_admin_session"));
});

dbTest(
  "sign-in: a user name over 256 characters is 400 with the error beside the field, and is not counted",
  async (db) => {
    const c = await makeConsoleApp(db);
    await c.get("/admin/login");
    for (let i = 0; i < 6; i++) {
      const page = await c.post("/admin/login", { username: "x".repeat(60_000), password: "bad" });
      assert.equal(page.status, 400);
      assert.match(page.html, /data-field-error="username"[^>]*>Expected at most 256 characters, got 60000</);
      assert.ok(!page.html.includes("x".repeat(257)), "the over-long name is not sent back");
    }
    // Six refusals, past the limit of five failures: none was counted, so the admin signs in.
    assert.equal((await c.post("/admin/login", { username: "admin", password: ADMIN_PASSWORD })).status, 303);
  },
);

dbTest("an expired or forged session redirects to sign-in with next, saying it expired", async (db) => {
  const c = await makeConsoleApp(db);
  const expired = await createSessions({
    secret: c.t.config.jwtSecret,
    ttlSeconds: 60,
    now: () => new Date(Date.now() - 3600_000),
  }).issue("admin");
  c.cookies.set("proxy_admin_session", expired.token);
  const page = await c.get("/admin/requests?status=error");
  assert.equal(page.status, 303);
  assert.equal(page.location, "/admin/login?next=%2Fadmin%2Frequests%3Fstatus%3Derror&ok=expired");
  assert.ok(!c.cookies.has("proxy_admin_session"), "the stale cookie is cleared");
  assert.match(text((await c.get(page.location!)).html), /Your session has expired/);

  c.cookies.set("proxy_admin_session", "a.b.c");
  assert.equal((await c.get("/admin/users")).status, 303);
  // A POST with an expired session changes nothing and goes to sign-in too.
  c.cookies.set("proxy_admin_session", expired.token);
  const post = await c.post("/admin/users", { email: "x@example.com" }, { csrf: "whatever" });
  assert.equal(post.status, 303);
  assert.match(post.location!, /^\/admin\/login/);
  assert.equal((await c.t.services.admin.listUsers({ limit: 10, offset: 0 })).total, 0);
});

dbTest(
  "every console page carries a CSP without inline scripts or styles, frame-ancestors none, nosniff, " +
    "same-origin referrers and no-store; pages have no inline script or style attribute",
  async (db) => {
    const c = await signedIn(db);
    const userId = await createUser(c, "dev@example.com");
    const { keyId } = await issueKey(c, userId);
    const anonymous = await makeConsoleApp(db);
    for (
      const [client, path] of [
        [anonymous, "/admin/login"],
        ...[
          "/admin",
          "/admin?range=30d",
          "/admin/users",
          `/admin/users/${userId}`,
          `/admin/keys/${keyId}`,
          "/admin/requests",
          "/admin/audit",
          "/admin/settings",
          "/admin/no-such-page",
        ].map((p) => [c, p] as const),
      ] as const
    ) {
      const page = await client.get(path);
      const csp = page.headers.get("content-security-policy")!;
      assert.equal(csp, CONTENT_SECURITY_POLICY, path);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /style-src 'self'(;|$)/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(page.headers.get("x-content-type-options"), "nosniff", path);
      assert.equal(page.headers.get("referrer-policy"), "same-origin", path);
      assert.equal(page.headers.get("x-frame-options"), "DENY", path);
      assert.equal(page.headers.get("cache-control"), "no-store", path);
      assert.match(page.headers.get("content-type")!, /^text\/html/);
      // Every script is either the external bundle or a JSON data block (never executed).
      for (const tag of page.html.matchAll(/<script\b[^>]*>/g)) {
        assert.match(
          tag[0],
          /type="module" src="\/static\/build\/|type="application\/json"/,
          `${path}: ${tag[0]}`,
        );
      }
      assert.doesNotMatch(page.html, /\sstyle="/, `${path}: no style attributes`);
      assert.doesNotMatch(page.html, /\son[a-z]+="/, `${path}: no inline event handlers`);
    }
  },
);

// ---- dashboard --------------------------------------------------------------------------------------------

dbTest("dashboard with no usage shows zeros and what to do next", async (db) => {
  const c = await signedIn(db);
  const page = await c.get("/admin");
  assert.equal(page.status, 200);
  const body = text(page.html);
  assert.match(body, /No requests in this range yet/);
  assert.match(body, /ANTHROPIC_BASE_URL=http:\/\/console\.test\/ak\/<access key>/);
  assert.match(page.html, /data-stat="Requests"[\s\S]*?>0</);
  const names = islands(page.html).map((i) => i.name);
  assert.deepEqual(names, ["RangePicker"], "no charts without data");
});

dbTest(
  "dashboard with usage: stat cards, five charts with their data, in the configured time zone",
  async (db) => {
    const c = await signedIn(db, { PROXY_TIMEZONE: "Asia/Seoul" });
    const userId = await createUser(c, "ada@example.com");
    const { keyId } = await issueKey(c, userId);
    const now = Date.now();
    await seedUsage(db, "Asia/Seoul", [
      { accessKeyId: keyId, userId, createdAt: new Date(now - 2 * 3600_000).toISOString(), latencyMs: 400 },
      { accessKeyId: keyId, userId, createdAt: new Date(now - 2 * 3600_000).toISOString(), latencyMs: 600 },
      {
        accessKeyId: keyId,
        userId,
        createdAt: new Date(now - 3600_000).toISOString(),
        provider: "bedrock",
        isFallback: true,
        fallbackReason: "rate_limited",
        model: "claude-haiku-4-5-20251001",
        costUsd: 0.5,
        latencyMs: 2000,
      },
      {
        accessKeyId: keyId,
        userId,
        createdAt: new Date(now - 3600_000).toISOString(),
        statusCode: 529,
        errorType: "overloaded_error",
        costUsd: null,
        inputTokens: 0,
        outputTokens: 0,
        cacheReadInputTokens: 0,
        cacheCreationInputTokens: 0,
      },
    ]);
    const page = await c.get("/admin");
    assert.equal(page.status, 200);
    const body = text(page.html);
    assert.match(body, /Requests 4 errors 1 fallbacks 1/);
    assert.match(body, /Fallback rate 25%/);
    assert.match(body, /Error rate 25%/);
    assert.match(body, /Cost \$0\.525/);
    assert.match(body, /Tokens 21\.9K input 3,600 output 900 cache read 15K cache write 2,400/);
    // One definition of tokens: the top-users table's row for the only user is the card's total.
    assert.match(body, /ada@example\.com 4 21\.9K \$0\.525/);
    assert.match(body, /Latency p50 \d+ ms/);
    assert.match(
      page.html,
      /href="\/admin\/users\/[0-9a-f-]{36}">ada@example\.com</,
      "top users link to users",
    );

    const charts = islands(page.html).filter((i) => i.name === "UsageChart").map((i) => i.props);
    assert.deepEqual(charts.map((p) => p.title), [
      "Tokens over time",
      "Requests and fallback rate over time",
      "Cost by model",
      "Provider split (requests)",
      "Top users by cost",
    ]);
    const tokens = charts[0] as { labels: string[]; series: Array<{ label: string; data: number[] }> };
    assert.ok(
      tokens.labels.length >= 24 && tokens.labels.length <= 26,
      `hourly buckets: ${tokens.labels.length}`,
    );
    assert.deepEqual(tokens.series.map((s) => s.label), ["Input", "Output", "Cache read", "Cache write"]);
    assert.equal(tokens.series[0].data.reduce((a, b) => a + b, 0), 3600);
    // Labels are wall-clock hours in Asia/Seoul (UTC+9, no DST).
    const seoulHour = new Date(now + 9 * 3600_000 - 3600_000).getUTCHours().toString().padStart(2, "0");
    assert.ok(tokens.labels.some((l) => l.endsWith(`${seoulHour}:00`)));
    const requests = charts[1] as { series: Array<{ label: string; data: number[] }> };
    assert.equal(Math.max(...requests.series[2].data), 0.5, "fallback rate per bucket");
    const providers = charts[3] as { labels: string[]; series: Array<{ data: number[] }> };
    assert.deepEqual(providers.labels.sort(), ["anthropic", "bedrock"]);

    const week = await c.get("/admin?range=7d");
    const weekTokens = islands(week.html).find((i) => i.name === "UsageChart")!.props as { labels: string[] };
    assert.ok(weekTokens.labels.length >= 7 && weekTokens.labels.length <= 8, "daily buckets for 7 days");
    assert.match(week.html, /<option value="7d" selected/);
  },
);

dbTest(
  "dashboard custom range: dates in the time zone; a bad date is 400 with the error beside the field",
  async (db) => {
    const c = await signedIn(db);
    const ok = await c.get("/admin?range=custom&from=2020-01-01&to=2020-01-03");
    assert.equal(ok.status, 200);
    assert.match(text(ok.html), /2020-01-01 00:00 – 2020-01-04 00:00 · hourly/);
    // A range up to now counts the current hour whole, but the page does not claim a time still to come.
    const clocked = await makeConsoleApp(db, {}, { now: () => new Date("2026-11-29T15:20:00Z") });
    await clocked.signIn();
    const today = await clocked.get("/admin?range=custom&from=2026-11-29&to=2026-11-29");
    assert.match(text(today.html), /2026-11-29 00:00 – 2026-11-29 15:20 · hourly/);
    const bad = await c.get("/admin?range=custom&from=2020-13-45&to=2020-01-03");
    assert.equal(bad.status, 400);
    const picker = islands(bad.html).find((i) => i.name === "RangePicker")!.props as {
      errors: Record<string, string>;
      from: string;
    };
    assert.match(picker.errors.from, /Expected a date/);
    assert.equal(picker.from, "2020-13-45", "the input is kept");
    const reversed = await c.get("/admin?range=custom&from=2020-02-01&to=2020-01-03");
    assert.equal(reversed.status, 400);
    assert.match(bad.html, /id="from-error"/);
  },
);

dbTest(
  "dashboard custom range: To on the last day of year 9999 is 400 with the error beside To, not a 500",
  async (db) => {
    for (const timeZone of ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"]) {
      const c = await signedIn(db, { PROXY_TIMEZONE: timeZone });
      const page = await c.get("/admin?range=custom&from=2026-11-01&to=9999-12-31");
      assert.equal(page.status, 400, timeZone);
      const picker = islands(page.html).find((i) => i.name === "RangePicker")!.props as {
        errors: Record<string, string>;
        to: string;
      };
      assert.deepEqual(picker.errors, { to: "Expected a date no later than 9999-12-30." }, timeZone);
      assert.equal(picker.to, "9999-12-31", "the input is kept");
      // The day before is the last one taken: the range runs up to now.
      assert.equal((await c.get("/admin?range=custom&from=2026-11-01&to=9999-12-30")).status, 200, timeZone);
    }
  },
);

Deno.test("custom ranges start at local midnight, also on DST days", () => {
  const now = new Date("2026-06-15T12:00:00Z");
  const seoul = rangeSelection({ range: "custom", from: "2026-06-01", to: "2026-06-02" }, now, "Asia/Seoul");
  assert.deepEqual(seoul.errors, {});
  assert.equal(seoul.query.from.toISOString(), "2026-05-31T15:00:00.000Z");
  assert.equal(seoul.query.to.toISOString(), "2026-06-02T15:00:00.000Z");
  assert.equal(seoul.query.granularity, "hour");
  assert.equal(startOfLocalDate("2026-03-29", "Europe/Berlin")!.toISOString(), "2026-03-28T23:00:00.000Z");
  assert.equal(startOfLocalDate("2026-03-30", "Europe/Berlin")!.toISOString(), "2026-03-29T22:00:00.000Z");
  assert.equal(startOfLocalDate("2026-02-30", "UTC"), null);
  const future = rangeSelection({ range: "custom", from: "2027-01-01", to: "2027-01-02" }, now, "UTC");
  assert.match(future.errors.from!, /future/);
  assert.equal(rangeSelection({ range: "1y" }, now, "UTC").errors.range, "Choose one of the listed ranges.");
});

// ---- users ------------------------------------------------------------------------------------------------

dbTest(
  "users: empty state, create with PRG, errors beside the field with input kept, duplicate email 409",
  async (db) => {
    const c = await signedIn(db);
    const empty = await c.get("/admin/users");
    assert.equal(empty.status, 200);
    assert.match(text(empty.html), /No users yet Create the first user/);

    const invalid = await c.post("/admin/users", {
      email: "not-an-email",
      name: "Ada",
      monthly_budget_usd: "12.5",
      routing_strategy: "bedrock_only",
    });
    assert.equal(invalid.status, 400);
    assert.match(invalid.html, /data-field-error="email">Expected an email address/);
    assert.match(invalid.html, /id="create-email"[^>]*value="not-an-email"/);
    assert.match(invalid.html, /id="create-name"[^>]*value="Ada"/);
    assert.match(invalid.html, /id="create-monthly_budget_usd"[^>]*value="12.5"/);
    assert.match(invalid.html, /<option value="bedrock_only" selected/);
    assert.match(invalid.html, /aria-invalid="true"/);

    const badBudget = await c.post("/admin/users", { email: "ada@example.com", monthly_budget_usd: "lots" });
    assert.equal(badBudget.status, 400);
    assert.match(badBudget.html, /data-field-error="monthly_budget_usd">Expected a number of US dollars/);
    const negative = await c.post("/admin/users", { email: "ada@example.com", monthly_budget_usd: "-5" });
    assert.match(negative.html, /data-field-error="monthly_budget_usd">Must not be negative/);

    const created = await c.post("/admin/users", {
      email: "Ada@Example.com",
      name: "Ada",
      monthly_budget_usd: "12.5",
      routing_strategy: "bedrock_only",
    });
    assert.equal(created.status, 303);
    assert.match(created.location!, /^\/admin\/users\/[0-9a-f-]{36}\?ok=user_created$/);
    const page = await c.get(created.location!);
    assert.match(text(page.html), /User created\./);
    assert.match(page.html, /data-user-email[^>]*>ada@example\.com</);
    assert.match(page.html, /id="profile-monthly_budget_usd"[^>]*value="12.5"/);

    await c.get("/admin/users");
    const dup = await c.post("/admin/users", { email: "ada@example.com" });
    assert.equal(dup.status, 409);
    assert.match(dup.html, /data-field-error="email">A user with email ada@example\.com already exists/);
    assert.deepEqual(await auditActions(db), ["user.create"]);
  },
);

dbTest(
  "users list: search, status filter, budget use this month, key count, paging, hostile names escaped",
  async (db) => {
    const c = await signedIn(db);
    const ada = await createUser(c, "ada@example.com", {
      monthly_budget_usd: "10",
      name: "<script>alert(1)</script>",
    });
    const bob = await createUser(c, "bob@example.com");
    const { keyId } = await issueKey(c, ada);
    await issueKey(c, ada, "second");
    await seedUsage(db, "UTC", [
      { accessKeyId: keyId, userId: ada, provider: "bedrock", isFallback: true, costUsd: 4 },
      { accessKeyId: keyId, userId: ada, provider: "anthropic", costUsd: 100 },
    ]);
    await c.get(`/admin/users/${bob}`);
    assert.equal((await c.post(`/admin/users/${bob}/status`, { is_active: "false" })).status, 303);

    const all = await c.get("/admin/users");
    const adaRow = all.html.match(new RegExp(`<tr data-user-id="${ada}">[\\s\\S]*?</tr>`))![0];
    assert.match(adaRow, /data-budget="0\.4000"/, "Bedrock spend only: $4 of $10");
    assert.match(text(adaRow), /\$4\.00 of \$10\.00/);
    assert.match(text(adaRow), / 2 /, "two keys");
    assert.match(adaRow, /&lt;script>alert\(1\)&lt;\/script>/);
    assert.doesNotMatch(all.html, /<script>alert/);
    const bobRow = all.html.match(new RegExp(`<tr data-user-id="${bob}">[\\s\\S]*?</tr>`))![0];
    assert.match(bobRow, /inactive/);
    assert.match(bobRow, /data-budget="none"/);

    const search = await c.get("/admin/users?q=ADA");
    assert.match(search.html, /ada@example\.com/);
    assert.doesNotMatch(search.html, /bob@example\.com/);
    const inactive = await c.get("/admin/users?status=inactive");
    assert.match(inactive.html, /bob@example\.com/);
    assert.doesNotMatch(inactive.html, /ada@example\.com/);
    const none = await c.get("/admin/users?q=nobody");
    assert.match(text(none.html), /No users match/);

    for (let i = 0; i < 25; i++) {
      await c.t.services.admin.createUser({ actor: "t", clientAddress: null }, {
        email: `u${i}@example.com`,
      });
    }
    const first = await c.get("/admin/users");
    assert.match(text(first.html), /Showing 1\s*–\s*25 of 27/);
    assert.match(first.html, /href="\/admin\/users\?offset=25" rel="next"/);
    const second = await c.get("/admin/users?offset=25");
    assert.match(text(second.html), /Showing 26\s*–\s*27 of 27/);
  },
);

dbTest(
  "user page: profile update, error beside the field, deactivate and activate, usage chart",
  async (db) => {
    const c = await signedIn(db);
    const id = await createUser(c, "ada@example.com");
    const empty = await c.get(`/admin/users/${id}`);
    assert.match(text(empty.html), /No requests in the last 30 days/);
    assert.match(text(empty.html), /No access keys yet/);

    const bad = await c.post(`/admin/users/${id}`, {
      name: "Ada",
      monthly_budget_usd: "-1",
      routing_strategy: "plan_first",
    });
    assert.equal(bad.status, 400);
    assert.match(bad.html, /data-field-error="monthly_budget_usd">Must not be negative/);
    assert.match(bad.html, /id="profile-monthly_budget_usd"[^>]*value="-1"/);
    assert.match(bad.html, /id="profile-name"[^>]*value="Ada"/);

    const saved = await c.post(`/admin/users/${id}`, {
      name: "Ada L",
      monthly_budget_usd: "25",
      routing_strategy: "bedrock_only",
    });
    assert.equal(saved.status, 303);
    assert.equal(saved.location, `/admin/users/${id}?ok=user_saved`);
    const user = await c.t.services.admin.getUser(id);
    assert.equal(user.name, "Ada L");
    assert.equal(Number(user.monthly_budget_usd), 25);
    assert.equal(user.routing_strategy, "bedrock_only");
    const cleared = await c.post(`/admin/users/${id}`, {
      name: "",
      monthly_budget_usd: "",
      routing_strategy: "plan_first",
    });
    assert.equal(cleared.status, 303);
    assert.equal((await c.t.services.admin.getUser(id)).monthly_budget_usd, null);

    assert.equal(
      (await c.post(`/admin/users/${id}/status`, { is_active: "false" })).location,
      `/admin/users/${id}?ok=user_deactivated`,
    );
    assert.equal((await c.t.services.admin.getUser(id)).is_active, false);
    const inactive = await c.get(`/admin/users/${id}`);
    assert.match(text(inactive.html), /Inactive: requests with this user's keys are refused/);
    assert.doesNotMatch(inactive.html, /Issue access key/, "no keys for an inactive user");
    assert.equal(
      (await c.post(`/admin/users/${id}/status`, { is_active: "true" })).location,
      `/admin/users/${id}?ok=user_activated`,
    );
    assert.equal((await c.t.services.admin.getUser(id)).is_active, true);

    const { keyId } = await issueKey(c, id);
    await seedUsage(db, "UTC", [{ accessKeyId: keyId, userId: id }, { accessKeyId: keyId, userId: id }]);
    const withUsage = await c.get(`/admin/users/${id}`);
    const chart = islands(withUsage.html).find((i) => i.name === "UsageChart")!.props as {
      labels: string[];
      series: Array<{ data: number[] }>;
    };
    assert.ok(chart.labels.length >= 30 && chart.labels.length <= 31);
    assert.equal(chart.series[0].data.at(-1), 2400, "today's input tokens");
    assert.match(text(withUsage.html), /Requests \(30 days\) 2/);
    assert.deepEqual(await auditActions(db), [
      "user.create",
      "user.update",
      "user.update",
      "user.update",
      "user.update",
      "access_key.create",
    ]);
  },
);

dbTest(
  "deleting a user needs confirmation: a page without JavaScript, a dialog island with it",
  async (db) => {
    const c = await signedIn(db);
    const id = await createUser(c, "</script><!--@example.com");
    const { key } = await issueKey(c, id);
    const page = await c.get(`/admin/users/${id}`);
    const dialog = islands(page.html).find((i) => i.name === "ConfirmDialog")!;
    assert.equal(dialog.props.title, "Delete </script><!--@example.com?", "hostile email survives as data");
    assert.match(page.html, /name="confirm" value="yes" required/, "server-rendered: a required checkbox");

    const unconfirmed = await c.post(`/admin/users/${id}/delete`, {});
    assert.equal(unconfirmed.status, 200);
    assert.match(text(unconfirmed.html), /Delete <\/script><!--@example\.com\?/);
    assert.match(unconfirmed.html, /action="\/admin\/users\/[0-9a-f-]{36}\/delete"/);
    assert.equal(
      (await c.t.services.admin.getUser(id)).email,
      "</script><!--@example.com",
      "not deleted yet",
    );

    const deleted = await c.post(`/admin/users/${id}/delete`, { confirm: "yes" });
    assert.equal(deleted.status, 303);
    assert.equal(deleted.location, "/admin/users?ok=user_deleted");
    assert.match((await c.get(`/admin/users/${id}`)).html, /data-user-deleted/, "its page stays, read-only");
    // Its keys stop working, and their holders are told the user is gone (403), not only that the key is.
    assert.equal((await c.t.services.resolver.resolve(key)).status, "user_inactive");
  },
);

// ---- access keys ------------------------------------------------------------------------------------------

dbTest(
  "issuing a key shows it once with the ANTHROPIC_BASE_URL line, never cached; later pages show only the prefix",
  async (db) => {
    const c = await signedIn(db);
    const id = await createUser(c);
    const { page, key, keyId } = await issueKey(c, id, "laptop");
    assert.equal(page.headers.get("cache-control"), "no-store");
    assert.match(key, /^ak_[\w-]{43}$/);
    assert.match(
      page.html,
      new RegExp(`data-base-url[^>]*>\\s*ANTHROPIC_BASE_URL=http://console\\.test/ak/${key}\\s*<`),
    );
    const copy = islands(page.html).filter((i) => i.name === "CopyButton").map((i) => i.props.text);
    assert.deepEqual(copy, [key, `ANTHROPIC_BASE_URL=http://console.test/ak/${key}`]);
    assert.match(text(page.html), /only time the key is shown/);
    assert.equal((await c.t.services.resolver.resolve(key)).status, "ok");

    for (const path of [`/admin/users/${id}`, `/admin/keys/${keyId}`, "/admin/audit", "/admin/requests"]) {
      const later = await c.get(path);
      assert.ok(!later.html.includes(key), `${path} never shows the key`);
    }
    assert.match((await c.get(`/admin/users/${id}`)).html, new RegExp(`${key.slice(0, 8)}…`));

    const tooLong = await c.post(`/admin/users/${id}/keys`, { name: "x".repeat(201) });
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.html, /data-field-error="name">Too long/);
  },
);

dbTest("the base URL honours X-Forwarded-Proto only when forwarded headers are trusted", async (db) => {
  const c = await signedIn(db, { PROXY_TRUST_FORWARDED_FOR: "true" });
  const id = await createUser(c);
  await c.get(`/admin/users/${id}`);
  const cookie = [...c.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  const posted = await c.t.app.request("http://proxy.example.com/admin/users/" + id + "/keys", {
    method: "POST",
    headers: {
      cookie,
      "content-type": "application/x-www-form-urlencoded",
      "x-forwarded-proto": "https",
    },
    body: new URLSearchParams({ _csrf: c.csrf()!, name: "" }).toString(),
  });
  assert.equal(posted.status, 303);
  const note = posted.headers.getSetCookie().map((sc) => sc.split(";")[0]).join("; ");
  const res = await c.t.app.request("http://proxy.example.com" + posted.headers.get("location"), {
    headers: { cookie: `${cookie}; ${note}`, "x-forwarded-proto": "https" },
  });
  assert.equal(res.status, 200);
  assert.match(await res.text(), /ANTHROPIC_BASE_URL=https:\/\/proxy\.example\.com\/ak\/ak_/);
  // The dashboard's hint names the same origin.
  const dashboard = await c.t.app.request("http://proxy.example.com/admin", {
    headers: { cookie, "x-forwarded-proto": "https" },
  });
  assert.match(
    text(await dashboard.text()),
    /ANTHROPIC_BASE_URL=https:\/\/proxy\.example\.com\/ak\/<access key>/,
  );
});

dbTest(
  "a new key is shown once after a redirect: reloading the page, or going back to it, issues nothing more",
  async (db) => {
    const c = await signedIn(db);
    const id = await createUser(c);
    await c.get(`/admin/users/${id}`);
    const posted = await c.post(`/admin/users/${id}/keys`, { name: "once" });
    assert.equal(posted.status, 303);
    const [note] = c.lastSetCookies;
    assert.match(note, /^new_key=[^;]+;/);
    assert.match(note, new RegExp(`Path=${posted.location!.replaceAll("/", "\\/")}(;|$)`, "i"));
    assert.match(note, /HttpOnly/i);
    assert.match(note, /SameSite=Strict/i);
    assert.doesNotMatch(note, /ak_/, "the key travels sealed");

    const shown = await c.get(posted.location!);
    assert.equal(shown.status, 200);
    assert.equal(shown.headers.get("cache-control"), "no-store");
    const key = /data-new-key[^>]*>\s*(ak_[\w-]+)/.exec(shown.html)![1];
    assert.equal((await c.t.services.resolver.resolve(key)).status, "ok");

    // A reload (or back, then forward) asks for the page again, never for the POST.
    const again = await c.get(posted.location!);
    assert.equal(again.status, 303);
    const keyPage = await c.get(again.location!);
    assert.match(text(keyPage.html), /A new key is shown only once/);
    assert.doesNotMatch(keyPage.html, new RegExp(key));
    assert.equal((await c.t.services.admin.listKeys(id)).length, 1, "one key, however often the page loads");

    // The note opens only in the session that made it: another session (same secret: another replica) gets
    // nothing from a copy of it.
    await c.get(`/admin/users/${id}`);
    const second = await c.post(`/admin/users/${id}/keys`, { name: "second" });
    const other = await signedIn(db);
    other.cookies.set("new_key", c.cookies.get("new_key")!);
    assert.equal((await other.get(second.location!)).status, 303, "another session gets no key");
    assert.equal((await c.get(second.location!)).status, 200, "its own session does");
  },
);

dbTest(
  "key page: register IAM credentials, replace with a Bedrock API key, errors never echo secrets, remove",
  async (db) => {
    const c = await signedIn(db);
    const id = await createUser(c);
    const { keyId } = await issueKey(c, id);
    const page = await c.get(`/admin/keys/${keyId}`);
    assert.equal(page.status, 200);
    assert.match(page.html, /data-credentials="none"/);
    assert.match(text(page.html), /No Bedrock credentials yet/);

    const bad = await c.post(`/admin/keys/${keyId}/bedrock`, {
      kind: "iam",
      aws_access_key_id: "nope",
      aws_secret_access_key: "SECRET-should-not-come-back-0123456789",
      region: "us-east-1",
    });
    assert.equal(bad.status, 400);
    assert.match(bad.html, /data-field-error="aws_access_key_id">Expected an AWS access key id/);
    assert.match(bad.html, /id="credentials-aws_access_key_id"[^>]*value="nope"/);
    assert.match(bad.html, /id="credentials-region"[^>]*value="us-east-1"/);
    assert.ok(!bad.html.includes("SECRET-should-not-come-back"), "secrets are never echoed");
    const badRegion = await c.post(`/admin/keys/${keyId}/bedrock`, {
      kind: "api_key",
      bedrock_api_key: "ABSKabcdefghijklmnopqrstuvwxyz",
      region: "moon-1",
    });
    assert.match(badRegion.html, /data-field-error="region">Expected an AWS region/);
    assert.match(badRegion.html, /<input type="radio" name="kind" value="api_key" checked/);

    const saved = await c.post(`/admin/keys/${keyId}/bedrock`, {
      kind: "iam",
      aws_access_key_id: "AKIAIOSFODNN7EXAMPLE",
      aws_secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      aws_session_token: "",
      bedrock_api_key: "ignored-for-iam",
      region: "",
    });
    assert.equal(saved.status, 303);
    assert.equal(saved.location, `/admin/keys/${keyId}?ok=credentials_saved#bedrock`);
    const described = await c.t.services.credentials.describe(keyId);
    assert.equal(described?.kind, "iam");
    assert.equal(described?.region, null);
    const after = await c.get(`/admin/keys/${keyId}?ok=credentials_saved`);
    assert.match(after.html, /data-credentials="iam"/);
    assert.match(text(after.html), /…MPLE/);
    assert.match(text(after.html), /ap-northeast-2 \(default\)/);
    assert.ok(!after.html.includes("wJalrXUtnFEMI"));

    const replaced = await c.post(`/admin/keys/${keyId}/bedrock`, {
      kind: "api_key",
      bedrock_api_key: "ABSKabcdefghijklmnopqrstuvwxyz1234",
      region: "us-west-2",
    });
    assert.equal(replaced.status, 303);
    assert.equal((await c.t.services.credentials.describe(keyId))?.kind, "api_key");
    assert.equal((await c.t.services.credentials.describe(keyId))?.region, "us-west-2");

    await c.get(`/admin/keys/${keyId}`);
    const unconfirmed = await c.post(`/admin/keys/${keyId}/bedrock/delete`, {});
    assert.equal(unconfirmed.status, 200);
    assert.ok(await c.t.services.credentials.describe(keyId), "kept until confirmed");
    const removed = await c.post(`/admin/keys/${keyId}/bedrock/delete`, { confirm: "yes" });
    assert.equal(removed.status, 303);
    assert.equal(await c.t.services.credentials.describe(keyId), null);
    assert.deepEqual((await auditActions(db)).slice(-3), [
      "bedrock_key.put",
      "bedrock_key.put",
      "bedrock_key.delete",
    ]);
  },
);

dbTest(
  "key page: rotate shows the new key once with the grace end; revoke needs confirmation",
  async (db) => {
    const c = await signedIn(db);
    const id = await createUser(c);
    const { key, keyId } = await issueKey(c, id);
    await c.get(`/admin/keys/${keyId}`);
    const bad = await c.post(`/admin/keys/${keyId}/rotate`, { grace_seconds: "soon" });
    assert.equal(bad.status, 400);
    assert.match(bad.html, /data-field-error="grace_seconds">Expected a number of seconds/);
    assert.match(bad.html, /id="rotate-grace_seconds"[^>]*value="soon"/);

    const posted = await c.post(`/admin/keys/${keyId}/rotate`, { grace_seconds: "60" });
    assert.equal(posted.status, 303);
    const rotated = await c.get(posted.location!);
    assert.equal(rotated.status, 200);
    assert.equal(rotated.headers.get("cache-control"), "no-store");
    const newKey = /data-new-key[^>]*>\s*(ak_[\w-]+)/.exec(rotated.html)![1];
    assert.notEqual(newKey, key);
    assert.match(text(rotated.html), /previous key keeps working until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
    assert.equal((await c.t.services.resolver.resolve(newKey)).status, "ok");
    assert.equal((await c.t.services.resolver.resolve(key)).status, "ok", "within the grace period");
    const oldPage = await c.get(`/admin/keys/${keyId}`);
    assert.match(oldPage.html, />rotating</);
    assert.match(oldPage.html, /Replaced by/);

    const unconfirmed = await c.post(`/admin/keys/${keyId}/revoke`, {});
    assert.equal(unconfirmed.status, 200);
    assert.match(text(unconfirmed.html), /I understand this key stops working/);
    const revoked = await c.post(`/admin/keys/${keyId}/revoke`, { confirm: "yes" });
    assert.equal(revoked.status, 303);
    assert.equal(revoked.location, `/admin/keys/${keyId}?ok=key_revoked`);
    assert.equal((await c.t.services.resolver.resolve(key)).status, "revoked");
    const revokedPage = await c.get(revoked.location!);
    assert.match(revokedPage.html, />revoked</);
    assert.doesNotMatch(revokedPage.html, /Rotate key|Revoke key/, "no actions on a revoked key");
  },
);

dbTest("key page: circuit-breaker state is shown; reset closes it and is audited", async (db) => {
  const c = await signedIn(db);
  const id = await createUser(c);
  const { keyId } = await issueKey(c, id);
  for (let i = 0; i < 3; i++) c.t.services.breakers.recordFailure(keyId, false);
  const open = await c.get(`/admin/keys/${keyId}`);
  assert.match(open.html, /id="circuit"[\s\S]*?>open</);
  assert.match(text(open.html), /Recent failures 3/);
  assert.match(text(open.html), /Probes again \d{4}-/);
  const userPage = await c.get(`/admin/users/${id}`);
  assert.match(userPage.html, new RegExp(`data-key-id="${keyId}"[\\s\\S]*?>open<`));

  await c.get(`/admin/keys/${keyId}`);
  const reset = await c.post(`/admin/keys/${keyId}/circuit/reset`, {});
  assert.equal(reset.status, 303);
  assert.equal(reset.location, `/admin/keys/${keyId}?ok=circuit_reset#circuit`);
  assert.equal(c.t.services.breakers.snapshot(keyId).state, "closed");
  const [event] = await db.query<{ action: string; target_type: string; target_id: string; actor: string }>(
    sql`SELECT action, target_type, target_id, actor FROM audit_events WHERE action = 'circuit.reset'`,
  );
  assert.deepEqual(event, {
    action: "circuit.reset",
    target_type: "access_key",
    target_id: keyId,
    actor: "admin",
  });
  assert.equal(
    (await c.post(`/admin/keys/00000000-0000-0000-0000-000000000000/circuit/reset`, {})).status,
    404,
  );
});

// ---- requests, audit, settings ----------------------------------------------------------------------------

dbTest(
  "requests: empty state, rows with times in the time zone, filters, invalid filters, paging",
  async (db) => {
    const c = await signedIn(db, { PROXY_TIMEZONE: "America/New_York" });
    const empty = await c.get("/admin/requests");
    assert.equal(empty.status, 200);
    assert.match(text(empty.html), /No requests yet/);

    const ada = await createUser(c, "ada@example.com");
    const bob = await createUser(c, "bob@example.com");
    const adaKey = (await issueKey(c, ada)).keyId;
    const bobKey = (await issueKey(c, bob)).keyId;
    const rows = [];
    for (let i = 0; i < 55; i++) {
      rows.push({
        accessKeyId: adaKey,
        userId: ada,
        createdAt: new Date(Date.UTC(2026, 0, 15, 17, 0, i)).toISOString(),
        // One in the middle costs most, took longest and carried most tokens.
        ...(i === 20 ? { requestId: "big", costUsd: 9, latencyMs: 90_000, outputTokens: 64_000 } : {}),
      });
    }
    rows.push({
      accessKeyId: bobKey,
      userId: bob,
      createdAt: "2026-01-15T18:30:00Z",
      provider: "bedrock" as const,
      isFallback: true,
      fallbackReason: "overloaded",
      model: "claude-opus-4-5",
      modelServed: "global.anthropic.claude-opus-4-5-20251101-v1:0",
      statusCode: 500,
      errorType: "api_error",
    });
    await seedUsage(db, "America/New_York", rows);

    const first = await c.get("/admin/requests");
    assert.match(text(first.html), /Showing 1\s*–\s*50 of 56/);
    const newest = first.html.match(/<tr data-request-id=[\s\S]*?<\/tr>/)![0];
    assert.match(text(newest), /13:30:00 2026-01-15/, "18:30 UTC is 13:30 in New York");
    assert.match(text(newest), /bob@example\.com/);
    assert.match(text(newest), /bedrock ↳ overloaded/);
    assert.match(text(newest), /500 api_error/);
    assert.match(text(newest), /→ global\.anthropic\.claude-opus-4-5-20251101-v1:0/);
    assert.match(text(newest), /1,200 in · 300 out cache 5,000 r · 800 w/);
    assert.match(first.html, /href="\/admin\/requests\?offset=50" rel="next"/);
    assert.match(text((await c.get("/admin/requests?offset=50")).html), /Showing 51\s*–\s*56 of 56/);

    const count = (p: Page) => (p.html.match(/<tr data-request-id=/g) ?? []).length;
    assert.equal(count(await c.get(`/admin/requests?user=${bob}`)), 1);
    assert.equal(count(await c.get(`/admin/requests?key=${adaKey}`)), 50);
    assert.equal(count(await c.get("/admin/requests?provider=bedrock")), 1);
    assert.equal(count(await c.get("/admin/requests?status=error")), 1);
    assert.equal(count(await c.get("/admin/requests?model=claude-opus-4-5")), 1);
    const filteredNone = await c.get("/admin/requests?model=nothing-like-it");
    assert.match(text(filteredNone.html), /No requests match these filters/);
    const byUser = await c.get(`/admin/requests?user=${ada}`);
    assert.match(byUser.html, /<select id="filter-key" name="key"/, "a user's keys become a list");
    // Another user chosen with the first one's key still in the address: that key is dropped, not matched.
    const switched = await c.get(`/admin/requests?user=${bob}&key=${adaKey}`);
    assert.equal(count(switched), 1, "bob's request, not 'no requests match'");
    assert.doesNotMatch(switched.html, new RegExp(`key=${adaKey}`), "nor kept in the page's links");

    // Sorted: the one expensive, slow, large request first, and the order kept by the pager.
    const firstRow = (p: Page) => p.html.match(/<tr data-request-id="([^"]+)"/)![1];
    const oldest = await c.get("/admin/requests?sort=oldest");
    assert.match(text(oldest.html.match(/<tr data-request-id=[\s\S]*?<\/tr>/)![0]), /12:00:00 2026-01-15/);
    assert.match(oldest.html, /<option value="oldest" selected>Oldest first<\/option>/);
    assert.match(oldest.html, /href="\/admin\/requests\?sort=oldest&amp;offset=50" rel="next"/);
    for (const sort of ["cost", "latency", "tokens"]) {
      assert.equal(firstRow(await c.get(`/admin/requests?sort=${sort}`)), "big", sort);
    }
    const badSort = await c.get("/admin/requests?sort=price");
    assert.equal(badSort.status, 400);
    assert.match(badSort.html, /data-field-error="sort">Expected one of: newest first, oldest first/);

    const invalid = await c.get("/admin/requests?user=nope&provider=openai&status=meh");
    assert.equal(invalid.status, 400);
    assert.match(invalid.html, /data-field-error="user">/);
    assert.match(invalid.html, /data-field-error="provider">/);
    assert.match(invalid.html, /data-field-error="status">/);
  },
);

dbTest("audit log lists console actions newest first with links to their targets, paged", async (db) => {
  const c = await signedIn(db);
  assert.match(text((await c.get("/admin/audit")).html), /Nothing has been changed yet/);
  const id = await createUser(c);
  const { keyId } = await issueKey(c, id);
  const page = await c.get("/admin/audit");
  const body = text(page.html);
  assert.ok(body.indexOf("access_key.create") < body.indexOf("user.create"), "newest first");
  assert.match(page.html, new RegExp(`href="/admin/keys/${keyId}"`));
  assert.match(page.html, new RegExp(`href="/admin/users/${id}"`));
  for (let i = 0; i < 50; i++) {
    await c.t.services.admin.recordAudit(
      { actor: "t", clientAddress: null },
      "test.event",
      "none",
      String(i),
    );
  }
  assert.match(text((await c.get("/admin/audit")).html), /Showing 1\s*–\s*50 of 52/);
  assert.match(text((await c.get("/admin/audit?offset=50")).html), /Showing 51\s*–\s*52 of 52/);
});

dbTest(
  "audit page shows an event's details as its JSON object, rows stored as JSON text included",
  async (db) => {
    const c = await signedIn(db);
    await createUser(c, "shown@example.com");
    // What insertAuditEvent used to store on PostgreSQL: a jsonb string holding the object's JSON text.
    await db.query(sql`INSERT INTO audit_events (actor, action, target_type, target_id, details)
    VALUES ('admin', 'bedrock_key.put', 'none', 'k1', to_jsonb(${'{"kind":"iam","region":"us-east-1"}'}::text))`);
    const page = await c.get("/admin/audit");
    const details = [...page.html.matchAll(/<code[^>]*>([^<]*)<\/code>/g)].map((m) => text(m[1]));
    assert.deepEqual(details, ['{"kind":"iam","region":"us-east-1"}', '{"email":"shown@example.com"}']);
  },
);

dbTest("settings: configuration with secrets masked, model map with overrides, prices", async (db) => {
  const c = await signedIn(db, {
    PROXY_PLAN_API_KEY: "sk-ant-very-secret-plan-key",
    PROXY_METRICS_TOKEN: "metrics-token-very-secret-0123456789",
    PROXY_BEDROCK_MODEL_MAP: JSON.stringify({ "claude-special": "us.anthropic.claude-special-v1:0" }),
    PROXY_MODEL_PRICING: JSON.stringify({
      "claude-special": { input: 1, output: 2, cacheWrite: 1.25, cacheRead: 0.1 },
    }),
  });
  const page = await c.get("/admin/settings");
  assert.equal(page.status, 200);
  const body = text(page.html);
  assert.ok(!page.html.includes("sk-ant-very-secret-plan-key"));
  assert.ok(!page.html.includes(c.t.config.jwtSecret));
  assert.ok(!page.html.includes(c.t.config.keyHasherSecret));
  assert.match(body, /PROXY_PLAN_API_KEY ••••••• \(set\)/);
  assert.match(body, /PROXY_JWT_SECRET ••••••• \(set\)/);
  assert.match(body, /claude-special us\.anthropic\.claude-special-v1:0 override/);
  assert.match(body, /claude-sonnet-4-5-20250929 global\.anthropic\.claude-sonnet-4-5-20250929-v1:0/);
  assert.match(body, /claude-special \$1\.00 \$2\.00 \$1\.25 \$0\.10/);
  assert.match(body, /claude-sonnet-4-5 \$3\.00 \$15\.00/);
  // Every setting, secrets masked; the undated names Claude Code asks for in the model map.
  assert.ok(!page.html.includes("metrics-token-very-secret"));
  assert.match(body, /PROXY_METRICS_TOKEN ••••••• \(set\)/);
  assert.match(body, /PROXY_ADMIN_ALLOWED_CIDRS \(anyone\)/);
  assert.match(body, /PROXY_USAGE_RETENTION_DAYS 90 days/);
  assert.match(body, /PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS 300000 ms/);
  assert.match(body, /claude-opus-4-6 (global\.)?anthropic\.claude-opus-4-6-v1/);
  assert.match(body, /tried as anthropic\.<name>/);
});

// ---- CSRF and errors --------------------------------------------------------------------------------------

dbTest("CSRF: every POST without a valid token is refused with 403 and changes nothing", async (db) => {
  const c = await signedIn(db);
  const id = await createUser(c);
  const { key, keyId } = await issueKey(c, id);
  for (let i = 0; i < 3; i++) c.t.services.breakers.recordFailure(keyId, false);
  const before = await auditActions(db);
  const otherSession = await signedIn(db);
  await otherSession.get("/admin");
  const foreignToken = otherSession.csrf()!;
  const attempts: Array<[string, Record<string, string>]> = [
    ["/admin/users", { email: "csrf@example.com" }],
    [`/admin/users/${id}`, { name: "Mallory", monthly_budget_usd: "1", routing_strategy: "plan_first" }],
    [`/admin/users/${id}/status`, { is_active: "false" }],
    [`/admin/users/${id}/delete`, { confirm: "yes" }],
    [`/admin/users/${id}/keys`, { name: "evil" }],
    [`/admin/keys/${keyId}/rotate`, { grace_seconds: "0" }],
    [`/admin/keys/${keyId}/revoke`, { confirm: "yes" }],
    [`/admin/keys/${keyId}/bedrock`, { kind: "api_key", bedrock_api_key: "ABSKabcdefghijklmnopqrstuvwxyz" }],
    [`/admin/keys/${keyId}/circuit/reset`, {}],
    ["/admin/logout", {}],
  ];
  for (const [path, form] of attempts) {
    for (const csrf of [false, "forged-token", foreignToken] as const) {
      const page = await c.post(path, form, { csrf });
      assert.equal(page.status, 403, `${path} with ${csrf}`);
      assert.match(page.html, /data-error-status="403"/);
      assert.match(text(page.html), /Nothing was changed/);
    }
  }
  // A JSON body or a GET cannot stand in for the form either.
  const json = await c.t.app.request("http://console.test/admin/users", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      cookie: `proxy_admin_session=${c.cookies.get("proxy_admin_session")}`,
    },
    body: JSON.stringify({ email: "json@example.com", _csrf: c.csrf() }),
  });
  assert.equal(json.status, 403);
  assert.deepEqual(await auditActions(db), before, "no action was taken");
  assert.equal((await c.t.services.admin.listUsers({ limit: 10, offset: 0 })).total, 1);
  assert.equal((await c.t.services.admin.getUser(id)).name, null);
  assert.equal((await c.t.services.admin.getUser(id)).is_active, true);
  assert.equal((await c.t.services.resolver.resolve(key)).status, "ok");
  assert.equal(await c.t.services.credentials.describe(keyId), null);
  assert.equal(c.t.services.breakers.snapshot(keyId).state, "open");
  assert.ok(c.cookies.has("proxy_admin_session"), "still signed in");
  // And with the page's own token the same request works.
  await c.get("/admin/users");
  assert.equal((await c.post("/admin/users", { email: "csrf@example.com" })).status, 303);
});

dbTest(
  "a console page asked for with a trailing slash redirects (301) to it without the slash, keeping the query",
  async (db) => {
    const c = await signedIn(db);
    const userId = await createUser(c, "dev@example.com");
    for (
      const [path, location] of [
        ["/admin/", "/admin"],
        ["/admin/?range=7d", "/admin?range=7d"],
        ["/admin/users/", "/admin/users"],
        ["/admin/users//?q=dev&status=active", "/admin/users?q=dev&status=active"],
        [`/admin/users/${userId}/`, `/admin/users/${userId}`],
      ]
    ) {
      const page = await c.get(path);
      assert.equal(page.status, 301, path);
      assert.equal(page.location, location, path);
      assert.equal((await c.get(location)).status, 200, location);
    }
    const cookie = `proxy_admin_session=${c.cookies.get("proxy_admin_session")}`;
    const head = await c.t.app.request("http://console.test/admin/users/", {
      method: "HEAD",
      headers: { cookie },
    });
    assert.equal(head.status, 301);
    assert.equal(head.headers.get("location"), "/admin/users");
    // Without a session the redirect comes first, so sign-in then returns to the page itself.
    const anonymous = await makeConsoleApp(db);
    assert.equal((await anonymous.get("/admin/users/")).location, "/admin/users");
    assert.equal((await anonymous.get("/admin/login/?next=%2Fadmin")).location, "/admin/login?next=%2Fadmin");
    // Only pages: an address that is none stays a 404, and a POST is not redirected (its body would be lost).
    for (const path of ["/admin/nothing-here/", "/admin//evil.example/", "/admin/%2F%2Fevil.example/"]) {
      const page = await c.get(path);
      assert.equal(page.status, 404, path);
      assert.equal(page.location, null, path);
    }
    const post = await c.post("/admin/users/", { email: "other@example.com" });
    assert.equal(post.status, 404);
    assert.equal((await c.t.services.admin.listUsers({ limit: 10, offset: 0 })).total, 1);
    // The JSON API keeps its own answer to a trailing slash.
    const api = await c.t.call("GET", "/api/users/", undefined, await c.t.auth());
    assert.equal(api.status, 404);
    assert.equal(api.headers.get("location"), null);
  },
);

dbTest("unknown pages, unknown ids and other methods render HTML error pages, not JSON", async (db) => {
  const c = await signedIn(db);
  const missing = await c.get("/admin/nothing-here");
  assert.equal(missing.status, 404);
  assert.match(missing.headers.get("content-type")!, /text\/html/);
  assert.match(text(missing.html), /Page not found/);
  for (
    const path of [
      "/admin/users/00000000-0000-0000-0000-000000000000",
      "/admin/users/not-a-uuid",
      "/admin/keys/nope",
    ]
  ) {
    const page = await c.get(path);
    assert.equal(page.status, 404, path);
    assert.match(page.html, /data-error-status="404"/);
  }
  const cookie = `proxy_admin_session=${c.cookies.get("proxy_admin_session")}`;
  const put = await c.t.app.request("http://console.test/admin/users", {
    method: "PUT",
    headers: { cookie },
  });
  assert.equal(put.status, 405);
  const huge = await c.post("/admin/users", { email: "a@example.com", name: "x".repeat(70_000) });
  assert.equal(huge.status, 413);
});

// ---- lists past their end, filters over many users, forms with several errors, deleted users, ids -----------

/** Element ids that occur more than once on a page. */
function duplicateIds(html: string): string[] {
  const seen = new Map<string, number>();
  for (const m of html.matchAll(/\sid="([^"]*)"/g)) seen.set(m[1], (seen.get(m[1]) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([id]) => id);
}

/** `for` attributes of labels that do not name exactly one element id of the page. */
function danglingLabels(html: string): string[] {
  const ids = [...html.matchAll(/\sid="([^"]*)"/g)].map((m) => m[1]);
  return [...html.matchAll(/<label[^>]*\sfor="([^"]*)"/g)].map((m) => m[1])
    .filter((f) => ids.filter((id) => id === f).length !== 1);
}

const requestRows = (p: Page) => (p.html.match(/<tr data-request-id=/g) ?? []).length;

dbTest(
  "requests: the user filter finds any user by email or name, beyond the newest 200 too, and user=<id> links " +
    "keep working",
  async (db) => {
    const c = await signedIn(db);
    const oldest = await createUser(c, "first.spender@example.com", { name: "Grace Hopper" });
    const oldestKey = (await issueKey(c, oldest)).keyId;
    await db.query(
      sql`INSERT INTO users (email) SELECT 'bulk' || g || '@example.com' FROM generate_series(1, 250) g`,
    );
    const other = await createUser(c, "other@example.com");
    await createUser(c, "brother@example.com");
    const otherKey = (await issueKey(c, other)).keyId;
    await seedUsage(db, "UTC", [
      { accessKeyId: oldestKey, userId: oldest },
      { accessKeyId: oldestKey, userId: oldest },
      { accessKeyId: otherKey, userId: other },
    ]);

    const all = await c.get("/admin/requests");
    assert.match(all.html, /<input[^>]*name="user_q"/, "a text field that can name any user");
    for (const q of ["first.spender@example.com", "FIRST.SPENDER", "grace hop"]) {
      const page = await c.get(`/admin/requests?user_q=${encodeURIComponent(q)}`);
      assert.equal(page.status, 200, q);
      assert.equal(requestRows(page), 2, q);
      assert.match(page.html, new RegExp(`name="user" value="${oldest}"`), q);
      assert.match(page.html, /name="user_q"[^>]*value="first\.spender@example\.com"/, q);
    }
    const byId = await c.get(`/admin/requests?user=${oldest}`);
    assert.equal(requestRows(byId), 2);
    assert.match(byId.html, /name="user_q"[^>]*value="first\.spender@example\.com"/);
    // The form sent back as rendered keeps its user; emptied, it filters no user; retyped, it names another.
    assert.equal(
      requestRows(await c.get(`/admin/requests?user=${oldest}&user_q=first.spender%40example.com`)),
      2,
    );
    assert.equal(requestRows(await c.get(`/admin/requests?user=${oldest}&user_q=`)), 3);
    const retyped = await c.get(`/admin/requests?user=${oldest}&user_q=other%40example.com`);
    assert.equal(requestRows(retyped), 1, "an exact email wins over other emails containing it (brother@)");

    const ambiguous = await c.get("/admin/requests?user_q=bulk1&provider=anthropic");
    assert.equal(ambiguous.status, 400);
    assert.match(text(ambiguous.html), /\d+ users match "bulk1"/);
    assert.match(ambiguous.html, /href="\/admin\/requests\?user=[0-9a-f-]{36}&(amp;)?provider=anthropic"/);
    const none = await c.get("/admin/requests?user_q=nobody-like-this");
    assert.equal(none.status, 400);
    assert.match(none.html, /data-field-error="user">No user/);
  },
);

dbTest(
  "the requests page says what besides tokens set a price: fast mode, US-only, web searches",
  async (db) => {
    const c = await signedIn(db);
    const id = await createUser(c, "ada@example.com");
    const { keyId } = await issueKey(c, id);
    await seedUsage(db, "UTC", [
      {
        accessKeyId: keyId,
        userId: id,
        speed: "fast",
        inferenceGeo: "us",
        webSearchRequests: 4,
        costUsd: 0.403,
      },
      { accessKeyId: keyId, userId: id, webSearchRequests: 1, inferenceGeo: "global", speed: "standard" },
      { accessKeyId: keyId, userId: id },
    ]);
    const page = await c.get("/admin/requests");
    const notes = [...page.html.matchAll(/data-price-notes[^>]*>([^<]*)</g)].map((m) => m[1]);
    assert.deepEqual(notes.sort(), ["1 web search", "fast mode · US-only · 4 web searches"]);
  },
);

dbTest(
  "paging past the end of a list says how many match and links to the last page instead of 'no matches'",
  async (db) => {
    const c = await signedIn(db);
    await db.query(
      sql`INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 27) g`,
    );
    const users = await c.get("/admin/users?q=user&offset=28");
    assert.equal(users.status, 200);
    assert.doesNotMatch(text(users.html), /No users match/);
    assert.match(text(users.html), /27 users match/);
    assert.match(users.html, /href="\/admin\/users\?q=user&(amp;)?offset=25"/);
    assert.match(text((await c.get("/admin/users?q=nobody&offset=28")).html), /No users match/);

    const id = await createUser(c, "ada@example.com");
    const { keyId } = await issueKey(c, id);
    await seedUsage(db, "UTC", [{ accessKeyId: keyId, userId: id }, { accessKeyId: keyId, userId: id }]);
    const requests = await c.get("/admin/requests?provider=anthropic&offset=50");
    assert.equal(requests.status, 200);
    assert.doesNotMatch(text(requests.html), /No requests match/);
    assert.match(text(requests.html), /2 requests match/);
    assert.match(requests.html, /href="\/admin\/requests\?provider=anthropic"/);

    const audit = await c.get("/admin/audit?offset=50");
    assert.match(text(audit.html), /2 events/);
    assert.match(audit.html, /href="\/admin\/audit"/);
  },
);

dbTest(
  "console forms show every invalid field's error beside it with the values kept; the API still names the first",
  async (db) => {
    const c = await signedIn(db);
    await c.get("/admin/users");
    const longName = "n".repeat(300);
    const create = await c.post("/admin/users", {
      email: "not-an-email",
      name: longName,
      monthly_budget_usd: "-3",
      routing_strategy: "bedrock_only",
    });
    assert.equal(create.status, 400);
    assert.match(create.html, /data-field-error="email">Expected an email address/);
    assert.match(create.html, /data-field-error="name">Too long \(max 200 characters\)/);
    assert.match(create.html, /data-field-error="monthly_budget_usd">Must not be negative/);
    assert.match(create.html, new RegExp(`id="create-name"[^>]*value="${longName}"`));
    assert.match(create.html, /id="create-monthly_budget_usd"[^>]*value="-3"/);
    assert.match(create.html, /<option value="bedrock_only" selected/);

    const id = await createUser(c, "ada@example.com", { routing_strategy: "bedrock_only" });
    await c.get(`/admin/users/${id}`);
    const edit = await c.post(`/admin/users/${id}`, {
      name: "n".repeat(201),
      monthly_budget_usd: "abc",
      routing_strategy: "bogus",
    });
    assert.equal(edit.status, 400);
    assert.match(edit.html, /data-field-error="name">Too long/);
    assert.match(edit.html, /data-field-error="monthly_budget_usd">Expected a number of US dollars/);
    assert.match(edit.html, /data-field-error="routing_strategy">Expected plan_first or bedrock_only/);
    assert.match(edit.html, /id="profile-monthly_budget_usd"[^>]*value="abc"/);
    const routing = () => /<select id="profile-routing_strategy"[\s\S]*?<\/select>/.exec(edit.html)![0];
    assert.match(routing(), /<option value="bedrock_only" selected/, "not an option: the stored one is kept");
    const valid = await c.post(`/admin/users/${id}`, {
      monthly_budget_usd: "abc",
      routing_strategy: "plan_first",
    });
    assert.match(
      /<select id="profile-routing_strategy"[\s\S]*?<\/select>/.exec(valid.html)![0],
      /<option value="plan_first" selected/,
      "a valid submitted choice is kept",
    );
    assert.equal((await c.t.services.admin.getUser(id)).routing_strategy, "bedrock_only", "nothing saved");

    const api = await c.t.call(
      "POST",
      "/api/users",
      { email: "not-an-email", name: longName, monthly_budget_usd: -3 },
      await c.t.auth(),
    );
    assert.equal(api.status, 400);
    assert.deepEqual(Object.keys(api.body.error).sort(), ["field", "message", "type"]);
    assert.equal(api.body.error.field, "email");
    assert.match(api.body.error.message, /^email: expected an email address/);
  },
);

dbTest(
  "a deleted user's page still opens, marked deleted and read-only, with its usage history and revoked keys",
  async (db) => {
    const c = await signedIn(db);
    const id = await createUser(c, "gone@example.com", { name: "Gone Soon" });
    const { keyId } = await issueKey(c, id);
    await seedUsage(db, "UTC", [{ accessKeyId: keyId, userId: id }]);
    await c.get(`/admin/users/${id}`);
    assert.equal((await c.post(`/admin/users/${id}/delete`, { confirm: "yes" })).status, 303);

    const requests = await c.get(`/admin/requests?user=${id}`);
    assert.equal(requestRows(requests), 1);
    assert.match(requests.html, new RegExp(`href="/admin/users/${id}"`));
    const page = await c.get(`/admin/users/${id}`);
    assert.equal(page.status, 200);
    assert.match(page.html, /data-user-deleted/);
    assert.match(text(page.html), /gone@example\.com/);
    assert.match(text(page.html), /Deleted \d{4}-\d\d-\d\d/);
    assert.match(text(page.html), /Requests \(30 days\) 1/);
    assert.match(page.html, new RegExp(`href="/admin/keys/${keyId}"`));
    assert.match(page.html, />revoked</);
    assert.doesNotMatch(
      page.html,
      /<form[^>]*action="\/admin\/users\//,
      "no profile, status, issue-key or delete forms",
    );
    assert.doesNotMatch(page.html, /Issue access key|Save changes|Delete user/);
    const keyPage = await c.get(`/admin/keys/${keyId}`);
    assert.match(keyPage.html, new RegExp(`href="/admin/users/${id}"`), "its keys' pages link to it");
    assert.match(text(keyPage.html), /gone@example\.com \(deleted\)/);
    const edit = await c.post(`/admin/users/${id}`, { name: "Back again" });
    assert.equal(edit.status, 404, "a deleted user cannot be changed");
    assert.equal((await c.get("/admin/users/00000000-0000-0000-0000-000000000000")).status, 404);
  },
);

dbTest("no console page repeats an element id, and every label names exactly one element", async (db) => {
  const anonymous = await makeConsoleApp(db);
  const login = await anonymous.get("/admin/login");
  const c = await signedIn(db);
  const id = await createUser(c, "ada@example.com");
  const { keyId } = await issueKey(c, id);
  await seedUsage(db, "UTC", [{ accessKeyId: keyId, userId: id }]);
  const pages: Array<[string, Page]> = [["login", login]];
  for (
    const path of [
      "/admin",
      "/admin/users",
      `/admin/users/${id}`,
      `/admin/keys/${keyId}`,
      "/admin/requests",
      `/admin/requests?user=${id}`,
      "/admin/audit",
      "/admin/settings",
    ]
  ) pages.push([path, await c.get(path)]);
  await c.get("/admin/users");
  pages.push(["create user, invalid", await c.post("/admin/users", { email: "x", name: "Ada" })]);
  await c.get(`/admin/users/${id}`);
  pages.push([
    "profile, invalid",
    await c.post(`/admin/users/${id}`, { name: "Ada", monthly_budget_usd: "x" }),
  ]);
  await c.get(`/admin/users/${id}`);
  pages.push(["issue key, invalid", await c.post(`/admin/users/${id}/keys`, { name: "x".repeat(201) })]);
  await c.get(`/admin/keys/${keyId}`);
  pages.push([
    "credentials, invalid",
    await c.post(`/admin/keys/${keyId}/bedrock`, { kind: "iam", region: "x" }),
  ]);
  for (const [what, page] of pages) {
    assert.ok(page.status < 500, what);
    assert.deepEqual(duplicateIds(page.html), [], `${what}: duplicate ids`);
    assert.deepEqual(danglingLabels(page.html), [], `${what}: labels without exactly one target`);
  }
  const user = pages.find(([p]) => p === `/admin/users/${id}`)![1].html;
  assert.match(user, /<label[^>]*for="profile-name"[^>]*>Name/);
  assert.match(user, /id="profile-name" name="name"/);
});

// ---- static files ------------------------------------------------------------------------------------------

Deno.test("static files: hashed build files are immutable, others short-lived; nothing else is served", async () => {
  const root = await Deno.makeTempDir({ prefix: "static-test-" });
  try {
    await Deno.mkdir(`${root}/build`);
    await Deno.writeTextFile(`${root}/build/app.0123456789ab.css`, "body{}");
    await Deno.writeTextFile(`${root}/build/islands.js`, "export {}");
    await Deno.writeTextFile(`${root}/build/manifest.json`, "{}");
    await Deno.writeTextFile(`${root}/favicon.svg`, "<svg/>");
    await Deno.writeTextFile(`${root}/styles.css`, "@import 'tailwindcss';");
    await Deno.writeTextFile(`${root}/secret.txt`, "no");
    const app = new Hono();
    app.route("/static", staticRoutes({ root: new URL(`file://${root}/`) }));

    const hashed = await app.request("/static/build/app.0123456789ab.css");
    assert.equal(hashed.status, 200);
    assert.equal(await hashed.text(), "body{}");
    assert.equal(hashed.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.equal(hashed.headers.get("content-type"), "text/css; charset=utf-8");
    assert.equal(hashed.headers.get("x-content-type-options"), "nosniff");
    const etag = hashed.headers.get("etag")!;
    const notModified = await app.request("/static/build/app.0123456789ab.css", {
      headers: { "if-none-match": etag },
    });
    assert.equal(notModified.status, 304);

    const plain = await app.request("/static/build/islands.js");
    assert.equal(plain.headers.get("cache-control"), "public, max-age=300");
    assert.equal(plain.headers.get("content-type"), "text/javascript; charset=utf-8");
    await plain.body?.cancel();
    const favicon = await app.request("/static/favicon.svg");
    assert.equal(favicon.status, 200);
    assert.equal(favicon.headers.get("content-type"), "image/svg+xml");
    await favicon.body?.cancel();
    const head = await app.request("/static/build/app.0123456789ab.css", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), "6");

    for (
      const path of [
        "/static/build/manifest.json",
        "/static/styles.css",
        "/static/secret.txt",
        "/static/build/../secret.txt",
        "/static/build/%2e%2e%2fsecret.txt",
        "/static/build/.hidden.css",
        "/static/build/missing.0123456789ab.js",
        "/static/build/",
        "/static/nope/deeper/file.css",
      ]
    ) {
      const res = await app.request(path);
      assert.equal(res.status, 404, path);
      await res.body?.cancel();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

dbTest("a NUL in any requests filter is a 400 with the error beside the field, never a 500", async (db) => {
  const c = await signedIn(db);
  for (const name of ["model", "provider", "status", "key", "user", "user_q"]) {
    const page = await c.get(`/admin/requests?${name}=a%00b`);
    assert.equal(page.status, 400, name);
  }
  const model = await c.get("/admin/requests?model=claude%00");
  assert.match(model.html, /data-field-error="model">Expected a model name/);
});

dbTest("a console form's target opened as a page is 405 naming the method it takes", async (db) => {
  const c = await signedIn(db);
  const page = await c.get("/admin/logout");
  assert.equal(page.status, 405);
  assert.equal(page.headers.get("allow"), "POST");
  assert.match(page.html, /GET is not allowed on \/admin\/logout; expected POST/);
});

dbTest(
  "requests of a model without a price are counted as unpriced: the dashboard's cost says it is a floor, the API says how many",
  async (db) => {
    const c = await signedIn(db);
    const id = await createUser(c);
    const { keyId } = await issueKey(c, id);
    const at = new Date(Date.now() - 60_000).toISOString();
    await seedUsage(db, "UTC", [
      { accessKeyId: keyId, userId: id, createdAt: at, costUsd: 2 },
      { accessKeyId: keyId, userId: id, createdAt: at, model: "claude-fable-5-3", costUsd: null },
      // Refused before any token: nothing was billed, so nothing is missing from the cost.
      {
        accessKeyId: keyId,
        userId: id,
        createdAt: at,
        model: null,
        costUsd: null,
        inputTokens: 0,
        outputTokens: 0,
        cacheReadInputTokens: 0,
        cacheCreationInputTokens: 0,
        statusCode: 400,
        errorType: "invalid_request_error",
      },
    ]);
    const page = await c.get("/admin");
    const cost = page.html.match(/<div class="card" data-stat="Cost">[\s\S]*?<\/dl>/)![0];
    assert.match(text(cost), /≥ \$2\.00/);
    assert.match(text(cost), /unpriced 1/);
    assert.match(text(page.html), /1 request used a model the price table has no price for/);
    assert.match(text(page.html), /claude-fable-5-3 1 [\d.,]+[KM]? \$0\.00 1 unpriced/);

    const h = await c.t.auth();
    const report = await c.t.call("GET", "/api/usage", undefined, h);
    assert.equal(report.body.totals.cost_usd, 2);
    assert.equal(report.body.totals.unpriced_requests, 1);
    const fable = report.body.by_model.find((m: { label: string }) => m.label === "claude-fable-5-3");
    assert.deepEqual([fable.cost_usd, fable.unpriced_requests], [0, 1]);
  },
);

dbTest(
  "a form posted from a page loaded before its key was revoked or began rotating says why it was refused",
  async (db) => {
    const c = await signedIn(db);
    const id = await createUser(c, "stale@example.com");
    const { keyId } = await issueKey(c, id);
    const credentials = {
      kind: "api_key",
      bedrock_api_key: "ABSKabcdefghijklmnopqrstuvwxyz",
      region: "us-east-1",
    };
    const ctx = { actor: "admin", clientAddress: null };

    // Rotating: no credentials form, a pointer to the replacement, and a stale post says where to go.
    const rotated = await c.t.services.admin.rotateKey(ctx, keyId, { grace_seconds: 600 });
    const page = await c.get(`/admin/keys/${keyId}`);
    assert.doesNotMatch(page.html, /id="credentials-bedrock_api_key"/, "no form for a key being replaced");
    assert.match(
      page.html,
      new RegExp(`set credentials on\\s*<a class="link" href="/admin/keys/${rotated.id}"`),
    );
    const onRotating = await c.post(`/admin/keys/${keyId}/bedrock`, credentials);
    assert.equal(onRotating.status, 409);
    assert.match(text(onRotating.html), /rotating .*set them on its replacement/);

    // Revoked: both refusals are on the page, where before they rendered nowhere.
    await c.t.services.admin.revokeKey(ctx, keyId);
    const onRevoked = await c.post(`/admin/keys/${keyId}/bedrock`, credentials);
    assert.equal(onRevoked.status, 409);
    assert.match(
      onRevoked.html,
      /role="alert"[^>]*>[^<]*is revoked; Bedrock credentials can be set only on a live key/,
    );
    const rotateRevoked = await c.post(`/admin/keys/${keyId}/rotate`, { grace_seconds: "60" });
    assert.equal(rotateRevoked.status, 409);
    assert.match(rotateRevoked.html, /role="alert"[^>]*>[^<]*revoked/);
  },
);

dbTest("the delete-user dialog counts only the keys that still work", async (db) => {
  const c = await signedIn(db);
  const id = await createUser(c, "count@example.com");
  const first = await issueKey(c, id, "one");
  await issueKey(c, id, "two");
  await c.t.services.admin.revokeKey({ actor: "admin", clientAddress: null }, first.keyId);
  const page = await c.get(`/admin/users/${id}`);
  const dialog = islands(page.html).find((i) =>
    i.name === "ConfirmDialog" && i.props.label === "Delete user"
  )!;
  assert.match(String(dialog.props.message), /^Their one working access key stops working immediately/);
});
