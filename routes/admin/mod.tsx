/**
 * The admin console under `/admin`: server-rendered Preact pages with a few hydrated islands.
 *
 * Order of things for every request: security headers (CSP without inline scripts or styles, no framing,
 * `nosniff`, `same-origin` referrers, `no-store`); a page asked for with a trailing slash redirected (301) to
 * the address without it; sign-in and sign-out pages; then the session check (the admin JWT in an `HttpOnly`,
 * `SameSite=Strict` cookie scoped to `/admin`; a missing or expired one redirects to sign-in with `?next=`);
 * then the CSRF check of every POST (a token derived from the session id, `lib/auth/csrf.ts`); then the pages.
 * Mutations go through `services.admin` (which audits) and answer with a redirect (PRG), except the page showing
 * a new key once, which renders directly with `Cache-Control: no-store`.
 *
 * @example
 * ```ts
 * app.route("/admin", adminRoutes({ config, db, services, log }));
 * ```
 */
import { Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createCsrf } from "../../lib/auth/csrf.ts";
import {
  DATABASE_RETRY_AFTER_SECONDS,
  HttpError,
  isDatabaseUnavailable,
  logDatabaseOutage,
} from "../../lib/errors.ts";
import { clientAddress, hasDotSegment } from "../../lib/http.ts";
import { CSRF_FIELD, formState } from "../../components/Form.tsx";
import { BASE, urls, withQuery } from "../../components/urls.ts";
import {
  type AdminContext,
  type AdminDeps,
  type AdminEnv,
  errorPage,
  keep,
  noticeFrom,
  readForm,
  render,
} from "./shared.tsx";
import { LoginPage } from "./login.tsx";
import { dashboardRoutes } from "./dashboard.tsx";
import { usersRoutes } from "./users.tsx";
import { keysRoutes } from "./keys.tsx";
import { requestsRoutes } from "./requests.tsx";
import { auditRoutes } from "./audit.tsx";
import { settingsRoutes } from "./settings.tsx";
import { routeMethods } from "../../lib/route_methods.ts";

export type { AdminDeps, AdminEnv } from "./shared.tsx";

/** The session cookie (the admin JWT). */
export const SESSION_COOKIE = "proxy_admin_session";
/** How long past its token the session cookie is kept, to say "expired" rather than nothing. */
const EXPIRED_NOTICE_SECONDS = 86_400;
/** The pre-session cookie holding the login form's CSRF nonce. */
export const LOGIN_COOKIE = "proxy_admin_login";

/** The console's Content-Security-Policy: scripts and styles only from this origin, nothing inline. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  // Chart.js sizes its canvas through the CSSOM (element.style.x = …), which CSP does not restrict; the pages
  // themselves carry no style attributes (bars are SVG), so no 'unsafe-inline' is needed.
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

/**
 * A `next` target accepted after sign-in: a path of this console only (no scheme, no host, no `//`, no backslash,
 * no control characters), never the sign-in or sign-out pages themselves.
 */
export function safeNext(next: unknown): string | null {
  if (typeof next !== "string" || next.length > 2048) return null;
  if (!/^\/admin(?:[/?#]|$)/.test(next)) return null;
  for (let i = 0; i < next.length; i++) {
    const code = next.charCodeAt(i);
    if (code < 0x20 || code === 0x7f || next[i] === "\\") return null;
  }
  if (next.startsWith(urls.login) || next.startsWith(urls.logout)) return null;
  // Dot segments would leave the console once the browser resolves them (`/admin/..//x` is `//x` on this host).
  if (hasDotSegment(next.split(/[?#]/, 1)[0])) return null;
  return next;
}

/** Builds the console; mount it at `/admin`. */
export function adminRoutes(deps: AdminDeps): Hono<AdminEnv> {
  const admin = new Hono<AdminEnv>();
  const csrf = createCsrf(deps.config.jwtSecret);
  const secure = deps.config.env === "production";
  const cookieBase = { path: BASE, httpOnly: true, sameSite: "Strict", secure } as const;

  admin.use("*", async (c, next) => {
    await next();
    const h = c.res.headers;
    h.set("content-security-policy", CONTENT_SECURITY_POLICY);
    h.set("x-content-type-options", "nosniff");
    h.set("x-frame-options", "DENY");
    h.set("referrer-policy", "same-origin");
    h.set("cross-origin-opener-policy", "same-origin");
    h.set("permissions-policy", "camera=(), microphone=(), geolocation=()");
    if (!h.has("cache-control")) h.set("cache-control", "no-store");
  });

  // Read lazily, on the first request, once every route below is registered.
  const allowedAt = routeMethods(admin);

  // `/admin/` and `/admin/users/` are the pages without the slash: a typed or pasted address must not read as
  // "no such page". Only GET and HEAD, whose repetition at the new address changes nothing (the console's forms
  // never post to such an address), and only onto a page of the console. Not an open redirect: the target is
  // this request's own path, which starts with `/admin`, less its trailing slashes, so it stays on this host.
  admin.use("*", async (c, next) => {
    // Middleware, not a GET route: routeMethods would count a route as a page at every path.
    if (c.req.method !== "GET" && c.req.method !== "HEAD") return await next();
    const url = new URL(c.req.url);
    if (!url.pathname.endsWith("/")) return await next();
    const target = url.pathname.replace(/\/+$/, "");
    if (!(target === BASE || target.startsWith(`${BASE}/`)) || target.startsWith(`${BASE}//`)) {
      return await next();
    }
    if (!allowedAt(target.slice(BASE.length) || "/").includes("GET")) return await next();
    return c.redirect(target + url.search, 301);
  });

  // ---- sign-in and sign-out ----------------------------------------------------------------------------------

  const loginNonce = (c: AdminContext): string => {
    const existing = getCookie(c, LOGIN_COOKIE);
    if (existing && /^[\w-]{32}$/.test(existing)) return existing;
    const nonce = csrf.newLoginNonce();
    setCookie(c, LOGIN_COOKIE, nonce, { ...cookieBase, maxAge: 3600 });
    return nonce;
  };

  admin.get("/login", async (c) => {
    const token = getCookie(c, SESSION_COOKIE);
    const next = safeNext(c.req.query("next"));
    if (token && await deps.services.sessions.verify(token)) return c.redirect(next ?? urls.dashboard, 303);
    const nonce = loginNonce(c);
    return render(
      c,
      <LoginPage
        csrf={await csrf.loginToken(nonce)}
        next={next}
        state={formState()}
        notice={noticeFrom(c)}
      />,
    );
  });

  admin.post("/login", async (c) => {
    const form = await readForm(c);
    const nonce = getCookie(c, LOGIN_COOKIE);
    const next = safeNext(form.next);
    if (!(await csrf.verifyLogin(nonce, form[CSRF_FIELD]))) {
      // An expired nonce cookie, or a form posted from another site: show a fresh form.
      const fresh = loginNonce(c);
      const state = {
        ...formState(keep(form, ["password"])),
        message: "The sign-in form expired. Please try again.",
      };
      return render(c, <LoginPage csrf={await csrf.loginToken(fresh)} next={next} state={state} />, 403);
    }
    const username = form.username ?? "";
    try {
      const { token, expiresIn } = await deps.services.login.attempt(
        username,
        form.password ?? "",
        clientAddress(c, deps.config.trustForwardedFor) ?? "unknown",
      );
      // The cookie outlives its token by a day: the browser then still sends it once the session has ended,
      // and the admin is told it expired (a cookie gone with the token looked like never having signed in).
      setCookie(c, SESSION_COOKIE, token, { ...cookieBase, maxAge: expiresIn + EXPIRED_NOTICE_SECONDS });
      deleteCookie(c, LOGIN_COOKIE, { path: BASE, secure });
      return c.redirect(next ?? urls.dashboard, 303);
    } catch (e) {
      if (e instanceof HttpError && e.status === 400 && e.field === "username") {
        // An over-long name: said beside the field, and not put back into it (it can be 64 KB).
        const state = {
          ...formState(),
          errors: { username: capitalise(e.message.replace(/^username: /, "")) },
        };
        return render(
          c,
          <LoginPage csrf={await csrf.loginToken(loginNonce(c))} next={next} state={state} />,
          400,
        );
      }
      if (!(e instanceof HttpError) || (e.status !== 401 && e.status !== 429 && e.status !== 503)) throw e;
      const wait = Number(e.headers["retry-after"] ?? 0);
      const seconds = `${wait} second${wait === 1 ? "" : "s"}`;
      const message = e.status === 429
        ? `Too many failed sign-ins. Try again in ${seconds}.`
        : e.status === 503
        ? `Sign-in is busy with other attempts. Try again in ${seconds}.`
        : "Wrong user name or password.";
      const state = { ...formState({ username }), message };
      const nonceNow = loginNonce(c);
      return render(
        c,
        <LoginPage
          csrf={await csrf.loginToken(nonceNow)}
          next={next}
          state={state}
          retryAfter={wait || undefined}
        />,
        e.status,
        e.headers,
      );
    }
  });

  // ---- everything below needs a session, and every POST a CSRF token ----------------------------------------

  admin.use("*", async (c, next) => {
    const token = getCookie(c, SESSION_COOKIE);
    const session = token ? await deps.services.sessions.verify(token) : null;
    if (!session) {
      if (token) deleteCookie(c, SESSION_COOKIE, { path: BASE, secure });
      const url = new URL(c.req.url);
      const back = c.req.method === "GET" || c.req.method === "HEAD"
        ? url.pathname + url.search
        : refererPath(c.req.header("referer"), url.origin);
      return c.redirect(
        withQuery(urls.login, { next: safeNext(back), ok: token ? "expired" : undefined }),
        303,
      );
    }
    c.set("session", session);
    c.set("csrf", await csrf.sessionToken(session.sid));
    if (c.req.method === "POST") {
      const form = await readForm(c);
      if (!(await csrf.verifySession(session.sid, form[CSRF_FIELD]))) {
        return errorPage(
          c,
          403,
          "This form cannot be accepted",
          "It carried no valid security token: it may have been open since before you last signed in, or it was " +
            "sent from another site. Nothing was changed. Go back, reload the page and try again.",
        );
      }
    } else if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      return errorPage(c, 405, "Method not allowed", `The console does not accept ${c.req.method} requests.`);
    }
    await next();
  });

  admin.post("/logout", async (c) => {
    // Forget the token everywhere, not only in this browser: a copy of the cookie must stop working too.
    let ok = "signed_out";
    try {
      await deps.services.sessions.revoke(c.get("session"));
    } catch (e) {
      // This browser forgets the session whatever happens; only the record for a restart failed.
      (c.get("log") ?? deps.log).warn(
        "sign-out not stored yet; refused on this replica, stored when the database is back",
        {
          error: (e as Error).message,
        },
      );
      ok = "signed_out_unstored";
    }
    deleteCookie(c, SESSION_COOKIE, { path: BASE, secure });
    return c.redirect(withQuery(urls.login, { ok }), 303);
  });

  dashboardRoutes(admin, deps);
  usersRoutes(admin, deps);
  keysRoutes(admin, deps);
  requestsRoutes(admin, deps);
  auditRoutes(admin, deps);
  settingsRoutes(admin, deps);

  admin.all("*", (c) => {
    const allowed = allowedAt(c.req.path.slice(BASE.length) || "/");
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      // A form's target opened as a page (a bookmarked sign-out, a pasted link): say so, not "no such page".
      const res = errorPage(
        c,
        405,
        "Method not allowed",
        `${c.req.method} is not allowed on ${c.req.path}; expected ${allowed.join(", ")}. ` +
          "This address is a form's target: use the button on its page.",
      );
      res.headers.set("allow", allowed.join(", "));
      return res;
    }
    return errorPage(
      c,
      404,
      "Page not found",
      "There is no console page at this address. Check the link, or start from the dashboard.",
    );
  });

  admin.onError((err, c) => {
    const ctx = c as AdminContext;
    if (err instanceof HttpError && err.status < 500) {
      const title = err.status === 404
        ? "Not found"
        : err.status === 413
        ? "Too large"
        : err.status === 400
        ? "That request was not valid"
        : "Request refused";
      return errorPage(ctx, err.status, title, capitalise(err.message));
    }
    if (isDatabaseUnavailable(err)) {
      // Expected while the database is down: a page that says what is wrong and to retry, rather than one that
      // reads like a bug (logged as a warning, or an error when the login was refused).
      logDatabaseOutage(c.get("log") ?? deps.log, c.req.path, err);
      const reading = c.req.method === "GET" || c.req.method === "HEAD";
      const url = new URL(c.req.url);
      const res = errorPage(
        ctx,
        503,
        "Database unreachable",
        `The proxy cannot reach its database right now, so ${
          reading ? "this page could not be shown" : "this change could not be completed"
        }. Try again in a few seconds. Requests through the proxy with access keys it has already checked are ` +
          "still served meanwhile.",
        reading ? [url.pathname + url.search, "Try again"] : undefined,
      );
      res.headers.set("retry-after", String(DATABASE_RETRY_AFTER_SECONDS));
      return res;
    }
    (c.get("log") ?? deps.log).error("console error", { path: c.req.path, error: err });
    return errorPage(
      ctx,
      500,
      "Something went wrong",
      `The console could not complete this request. The proxy's logs have the details (request id ${
        c.get("requestId") ?? "unknown"
      }).`,
    );
  });

  return admin;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** The path of a same-origin referer, for returning after a sign-in forced by a POST. */
function refererPath(referer: string | undefined, origin: string): string | null {
  if (!referer) return null;
  try {
    const u = new URL(referer);
    return u.origin === origin ? u.pathname + u.search : null;
  } catch {
    return null;
  }
}
