/**
 * The admin console in headless Chromium (Debian's `/usr/bin/chromium`, driven by puppeteer-core) against the
 * real server on PGlite: sign in, create a user, issue a key and read it from the page, register Bedrock
 * credentials, see usage drawn in charts, use the islands (range picker, copy button, confirm dialog), have a
 * CSRF-less POST refused, sign out. Screenshots go to `test-artifacts/`.
 *
 * When the proxy route exists (`routes/proxy.ts`, with the fake Anthropic API in `tests/fakes/`), a request is
 * also sent through the proxy with the new key and must show up in the requests list.
 *
 * Skipped, with the reason printed, only when Chromium is missing and cannot be installed.
 */
import assert from "node:assert/strict";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { freshDb } from "../helpers/db.ts";
import { ADMIN_PASSWORD } from "../helpers/app.ts";
import { makeConsoleApp, seedUsage } from "../helpers/console.ts";
import { ensureAssets } from "../../scripts/build_assets.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = new URL("../../test-artifacts/", import.meta.url);
const TIME_ZONE = "Asia/Seoul";

async function exists(path: string | URL): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Chromium is there, or installed now from Debian's packages; else the reason it is not. */
async function chromium(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (await exists(CHROMIUM)) return { ok: true };
  if (Deno.build.os !== "linux" || Deno.uid() !== 0 || !(await exists("/usr/bin/apt-get"))) {
    return { ok: false, reason: `${CHROMIUM} is missing and apt-get cannot be run here` };
  }
  console.error(`${CHROMIUM} is missing: installing Debian's chromium package`);
  const apt = (args: string[]) =>
    new Deno.Command("apt-get", {
      args,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
      stderr: "piped",
    }).output();
  let out = await apt(["install", "-y", "-qq", "chromium"]);
  if (!out.success) {
    await apt(["update", "-qq"]);
    out = await apt(["install", "-y", "-qq", "chromium"]);
  }
  if (await exists(CHROMIUM)) return { ok: true };
  const why = new TextDecoder().decode(out.stderr).trim().slice(-300);
  return {
    ok: false,
    reason: `apt-get install chromium did not provide ${CHROMIUM}${why ? `: ${why}` : ""}`,
  };
}

const available = await chromium();
const NAME =
  "console in headless Chromium: sign in, create a user, issue a key, register Bedrock credentials, " +
  "see usage in the requests list and drawn charts, refuse a CSRF-less POST, sign out";

if (!available.ok) {
  console.error(`skipping the browser test: ${available.reason}`);
  Deno.test({ name: `${NAME} (skipped: ${available.reason})`, ignore: true, fn() {} });
} else {
  Deno.test({ name: NAME, sanitizeOps: false, sanitizeResources: false, fn: browserTest });
}

/** The fake Anthropic API, when the proxy exists to use it. */
type Fake = { url: string; close(): Promise<void> };
async function startFakeUpstream(): Promise<Fake | null> {
  const proxyRoute = new URL("../../routes/proxy.ts", import.meta.url);
  const fakeModule = new URL("../fakes/fake_anthropic.ts", import.meta.url);
  if (!(await exists(proxyRoute)) || !(await exists(fakeModule))) return null;
  // A computed specifier: not part of the type-checked graph while the file may not exist.
  const mod = await import(fakeModule.href) as { startFakeAnthropic(): Promise<Fake> };
  return await mod.startFakeAnthropic();
}

async function browserTest(): Promise<void> {
  await ensureAssets({ info() {}, warn: console.warn, error: console.error });
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const fake = await startFakeUpstream();
  const { db, cleanup } = await freshDb("pglite");
  const userDataDir = await Deno.makeTempDir({ prefix: "chromium-profile-" });
  let server: Deno.HttpServer | null = null;
  let browser: Browser | null = null;
  /** The services' background work (usage recorder): started so proxied requests get recorded. */
  let stopServices: (() => Promise<void>) | null = null;
  try {
    const c = await makeConsoleApp(db, {
      PROXY_TIMEZONE: TIME_ZONE,
      PROXY_USAGE_FLUSH_INTERVAL_MS: "100",
      ...(fake ? { PROXY_PLAN_API_URL: fake.url } : {}),
    });
    // `services.start()`/`stop()` where the services have them; the recorder alone otherwise.
    const svc = c.t.services as unknown as {
      start?(): Promise<void>;
      stop?(ms: number): Promise<void>;
      recorder?: { start(): void; close(ms: number): Promise<void> };
    };
    if (svc.start && svc.stop) {
      await svc.start();
      stopServices = () => svc.stop!(2_000);
    } else if (svc.recorder) {
      svc.recorder.start();
      stopServices = () => svc.recorder!.close(2_000);
    }
    const listening = Promise.withResolvers<number>();
    server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: ({ port }) => listening.resolve(port) },
      c.t.app.fetch,
    );
    const origin = `http://127.0.0.1:${await listening.promise}`;

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        `--user-data-dir=${userDataDir}`,
      ],
    });
    await browser.defaultBrowserContext().overridePermissions(origin, ["clipboard-read", "clipboard-write"]);
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${(e as Error).message}`));
    page.on("console", (m) => {
      // 4xx answers are expected here (a form with errors is 400, the CSRF-less POST 403); all else is not.
      if (/status of 4\d\d/.test(m.text())) return;
      if (m.type() === "error" || /Content Security Policy/i.test(m.text())) {
        problems.push(`console: ${m.text()}`);
      }
    });
    page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
    const shot = (name: string) =>
      page.screenshot({ path: new URL(`console-${name}.png`, ARTIFACTS).pathname, fullPage: true });

    // 1. A console page without a session goes to sign-in and comes back after it.
    await page.goto(`${origin}/admin/users`);
    assert.equal(new URL(page.url()).pathname, "/admin/login");
    assert.equal(new URL(page.url()).searchParams.get("next"), "/admin/users");
    await shot("login");
    await page.type("#login-username", "admin");
    await page.type("#login-password", ADMIN_PASSWORD);
    await Promise.all([page.waitForNavigation(), page.click("[data-login-form] button[type=submit]")]);
    assert.equal(new URL(page.url()).pathname, "/admin/users");
    assert.ok(await page.$("[data-empty-state]"), "the empty users list says what to do");

    // 2. Create a user; an invalid email first shows the error beside the field, input kept.
    await page.type("#create-email", "not-an-email");
    await page.type("#create-name", "Ada Lovelace");
    await Promise.all([page.waitForNavigation(), page.click("#create-user button[type=submit]")]);
    assert.match(await page.$eval("[data-field-error=email]", (e) => e.textContent ?? ""), /email address/);
    assert.equal(
      await page.evaluate(() => document.activeElement?.id),
      "create-email",
      "the faulty field has focus",
    );
    assert.equal(await page.$eval("#create-name", (e) => (e as HTMLInputElement).value), "Ada Lovelace");
    await page.$eval("#create-email", (e) => ((e as HTMLInputElement).value = ""));
    await page.type("#create-email", "ada@example.com");
    await page.type("#create-monthly_budget_usd", "40");
    await Promise.all([page.waitForNavigation(), page.click("#create-user button[type=submit]")]);
    // The notice is said once: shown, and gone from the address so a reload does not repeat it.
    assert.match(page.url(), /\/admin\/users\/[0-9a-f-]{36}$/);
    assert.match(await page.$eval("[role=status]", (e) => e.textContent ?? ""), /created/i);
    const userId = new URL(page.url()).pathname.split("/")[3];
    assert.equal(await page.$eval("[data-user-email]", (e) => e.textContent), "ada@example.com");

    // 3. Issue a key: shown once, with the ANTHROPIC_BASE_URL line, and a working copy button.
    await page.type("#issue-name", "laptop");
    await Promise.all([page.waitForNavigation(), page.click("#keys button[type=submit]")]);
    const key = await page.$eval("[data-new-key]", (e) => e.textContent?.trim() ?? "");
    assert.match(key, /^ak_[\w-]{43}$/);
    assert.equal(
      await page.$eval("[data-base-url]", (e) => e.textContent?.trim()),
      `ANTHROPIC_BASE_URL=${origin}/ak/${key}`,
    );
    await page.waitForSelector("[data-copy-text]:not([hidden])");
    await page.click("[data-copy-text]");
    await page.waitForFunction(() =>
      document.querySelector("[data-copy-text]")?.textContent?.includes("Copied")
    );
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
    await shot("key-shown");

    // 4. A reload of that page lands on the key's page: the key is not shown again, and no other key is made
    //    (the page came from a redirect, so the browser does not post the form again). Register Bedrock
    //    credentials (IAM keys) there.
    await page.reload();
    assert.match(page.url(), /\/admin\/keys\/[0-9a-f-]{36}$/);
    assert.match(await page.$eval("[role=status]", (e) => e.textContent ?? ""), /shown only once/i);
    assert.equal(await page.$("[data-new-key]"), null, "the key is not shown again");
    const keyId = new URL(page.url()).pathname.split("/")[3];
    assert.ok(await page.$("[data-credentials=none]"));
    await page.type("#credentials-aws_access_key_id", "AKIAIOSFODNN7EXAMPLE");
    await page.type("#credentials-aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    await page.type("#credentials-region", "us-east-1");
    await Promise.all([page.waitForNavigation(), page.click("#bedrock form button[type=submit]")]);
    assert.match(await page.$eval("[role=status]", (e) => e.textContent ?? ""), /saved/i);
    assert.ok(await page.$("[data-credentials=iam]"), "the credentials are described");
    const keyPageText = await page.$eval("main", (e) => e.textContent ?? "");
    assert.match(keyPageText, /…MPLE/);
    assert.doesNotMatch(keyPageText, /wJalrXUtnFEMI/, "the secret is never shown");
    await shot("key");

    // 5. Usage: a request through the proxy (when it exists) and recorded history for the charts.
    const other = await c.t.services.admin.createUser({ actor: "test", clientAddress: null }, {
      email: "grace@example.com",
    });
    const otherKey = await c.t.services.admin.issueKey({ actor: "test", clientAddress: null }, other.id, {});
    const now = Date.now();
    const rows = [];
    for (let h = 0; h < 24; h++) {
      const at = new Date(now - h * 3600_000 - 60_000).toISOString();
      rows.push({
        accessKeyId: keyId,
        userId,
        createdAt: at,
        inputTokens: 800 + 90 * (h % 7),
        outputTokens: 200 + 40 * (h % 5),
      });
      if (h % 3 === 0) {
        rows.push({
          accessKeyId: keyId,
          userId,
          createdAt: at,
          provider: "bedrock" as const,
          isFallback: true,
          fallbackReason: "rate_limited",
          model: "claude-haiku-4-5-20251001",
          modelServed: "global.anthropic.claude-haiku-4-5-20251001-v1:0",
          costUsd: 0.004,
        });
      }
      if (h % 4 === 1) {
        rows.push({ accessKeyId: otherKey.id, userId: other.id, createdAt: at, costUsd: 0.03 });
      }
    }
    await seedUsage(db, TIME_ZONE, rows);

    if (fake) {
      const res = await fetch(`${origin}/ak/${key}/v1/messages`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-api-key": "sk-ant-test-key",
          "anthropic-version": "2023-06-01",
        },
        body: JSON.stringify({
          model: "claude-sonnet-4-5",
          max_tokens: 32,
          messages: [{ role: "user", content: "hello from the browser test" }],
        }),
      });
      const body = await res.text();
      assert.equal(res.status, 200, body);
      // The recorder flushes every 100 ms; the request then shows in the list.
      const deadline = Date.now() + 10_000;
      let found = false;
      while (!found && Date.now() < deadline) {
        await page.goto(`${origin}/admin/requests?key=${keyId}&provider=anthropic&model=claude-sonnet-4-5`);
        found = (await page.$$("#requests tbody tr")).length > 0;
        if (!found) await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(found, "the proxied request appears in the requests list");
    } else {
      console.error("routes/proxy.ts or tests/fakes/fake_anthropic.ts missing: the proxy step is skipped");
    }
    await page.goto(`${origin}/admin/requests`);
    assert.ok((await page.$$("#requests tbody tr")).length >= 24);
    await shot("requests");

    // 6. The dashboard draws its charts (pixels on the canvas, data points counted by the island).
    await page.goto(`${origin}/admin`);
    await page.waitForFunction(() => document.querySelectorAll("canvas[data-points]").length >= 5, {
      timeout: 10_000,
    });
    await new Promise((r) => setTimeout(r, 100));
    const drawn = await page.$eval("#chart-tokens canvas", (canvas) => {
      const el = canvas as HTMLCanvasElement;
      const pixels = el.getContext("2d")!.getImageData(0, 0, el.width, el.height).data;
      let painted = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted++;
      return { painted, points: Number(el.dataset.points), total: el.width * el.height };
    });
    assert.ok(drawn.points > 0, "the chart has data");
    assert.ok(
      drawn.painted > drawn.total / 100,
      `the chart is drawn (${drawn.painted} of ${drawn.total} pixels)`,
    );
    assert.match(
      await page.$eval("[data-stat='Requests']", (e) => e.textContent ?? ""),
      /Requests\s*\d+/,
    );
    await shot("dashboard");

    // The range picker island applies a preset at once.
    await Promise.all([page.waitForNavigation(), page.select("#range", "7d")]);
    assert.equal(new URL(page.url()).searchParams.get("range"), "7d");
    await page.waitForSelector("#chart-tokens canvas[data-points]");
    // With the keyboard, each arrow step only selects (the page stays, focus too); Enter applies.
    await page.focus("#range");
    await page.keyboard.press("ArrowDown");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(new URL(page.url()).searchParams.get("range"), "7d", "an arrow step did not load the page");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "range", "focus stays on the picker");
    assert.ok(await page.$eval("[data-range-picker] button[type=submit]", (b) => b.offsetParent !== null));
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
    assert.equal(new URL(page.url()).searchParams.get("range"), "30d");
    await page.waitForSelector("#chart-tokens canvas[data-points]");

    // 7. The user's page: usage chart, keys, budget.
    await page.goto(`${origin}/admin/users/${userId}`);
    await page.waitForSelector("#user-usage canvas[data-points]");
    await new Promise((r) => setTimeout(r, 100));
    await shot("user");
    await page.setViewport({ width: 390, height: 844, isMobile: true });
    await page.goto(`${origin}/admin/users/${userId}`);
    await page.waitForSelector("#user-usage canvas[data-points]");
    await new Promise((r) => setTimeout(r, 100));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - globalThis.innerWidth);
    assert.ok(overflow <= 1, `no sideways scrolling at phone width (${overflow}px too wide)`);
    await shot("user-phone");
    await page.goto(`${origin}/admin`);
    await page.waitForSelector("#chart-tokens canvas[data-points]");
    const dashboardOverflow = await page.evaluate(() =>
      document.documentElement.scrollWidth - globalThis.innerWidth
    );
    assert.ok(dashboardOverflow <= 1, `dashboard fits a phone (${dashboardOverflow}px too wide)`);
    const offScreen = await page.$$eval("nav[aria-label=Main] a", (links) =>
      links.filter((a) => {
        const r = a.getBoundingClientRect();
        return r.left < 0 || r.right > globalThis.innerWidth;
      }).map((a) => a.textContent));
    assert.deepEqual(offScreen, [], "every main link is on screen at phone width");
    await shot("dashboard-phone");
    await page.setViewport({ width: 1280, height: 900 });

    // 8. A POST without the CSRF token is refused and changes nothing.
    const refused = await page.evaluate(async () => {
      const res = await fetch("/admin/users", {
        method: "POST",
        body: new URLSearchParams({ email: "csrf@example.com" }),
      });
      return res.status;
    });
    assert.equal(refused, 403);
    const listed = await c.t.services.admin.listUsers({ search: "csrf@", limit: 10, offset: 0 });
    assert.equal(listed.total, 0, "nothing was created");

    // 9a. A double click sends a form once: one key issued, and its secret shown (not a second key, or a 409
    //     page in place of the secret, as before the guard).
    const keysBefore = (await c.t.services.admin.listKeys(userId)).length;
    await page.goto(`${origin}/admin/users/${userId}`);
    await page.type("#issue-name", "twice");
    const button = (await page.$("#keys button[type=submit]"))!;
    const box = (await button.boundingBox())!;
    await Promise.all([
      page.waitForNavigation(),
      (async () => {
        await page.mouse.click(box.x + 5, box.y + 5);
        await new Promise((r) => setTimeout(r, 10));
        await page.mouse.click(box.x + 5, box.y + 5).catch(() => {}); // the page may be going already
      })(),
    ]);
    await page.waitForSelector("[data-new-key]");
    assert.equal(
      (await c.t.services.admin.listKeys(userId)).length,
      keysBefore + 1,
      "one key for two clicks",
    );

    // 9. The confirm dialog island: deleting a user asks first.
    await page.goto(`${origin}/admin/users/${other.id}`);
    await page.waitForSelector("form[action$='/delete'] button[type=button]");
    await page.click("form[action$='/delete'] button[type=button]");
    await page.waitForSelector("dialog[open] [data-confirm]");
    await Promise.all([page.waitForNavigation(), page.click("dialog[open] [data-confirm]")]);
    assert.match(page.url(), /\/admin\/users$/);
    await shot("users");
    await page.goto(`${origin}/admin/settings`);
    await shot("settings");
    await page.goto(`${origin}/admin/audit`);
    await shot("audit");

    // 10. Sign out: the session is gone.
    await Promise.all([page.waitForNavigation(), page.click("form[action='/admin/logout'] button")]);
    assert.match(page.url(), /\/admin\/login$/);
    await page.goto(`${origin}/admin`);
    assert.equal(new URL(page.url()).pathname, "/admin/login");

    assert.deepEqual(problems, [], "no page errors, failed requests or CSP violations");
  } finally {
    await browser?.close();
    await server?.shutdown();
    await stopServices?.().catch(() => {});
    await fake?.close();
    await cleanup();
    await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
  }
}

export type { Page };
