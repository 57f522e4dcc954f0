/**
 * The JSON admin API under `/api`: sign-in, users, access keys, Bedrock credentials, audit. Handlers parse,
 * call `lib/admin`, respond; every route but login requires `Authorization: Bearer <session token>`.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { AppEnv } from "../../app.ts";
import type { Admin } from "../../lib/admin/admin.ts";
import type { Session, Sessions } from "../../lib/auth/session.ts";
import type { LoginService } from "../../lib/auth/login.ts";
import { HttpError } from "../../lib/errors.ts";
import { clientAddress, isCrossSiteRequest, paging, readJsonBody } from "../../lib/http.ts";

/** What the API routes need. */
export interface ApiDeps {
  admin: Admin;
  sessions: Sessions;
  login: LoginService;
  trustForwardedFor: boolean;
  /** Extra routes mounted behind the same authentication (usage, circuit), added by later modules. */
  extend?: (api: Hono<ApiEnv>) => void;
}

/** Variables of authenticated API requests. */
export type ApiEnv = AppEnv & { Variables: AppEnv["Variables"] & { actor: string; session: Session } };

const MAX_API_BODY = 1024 * 1024;

/** Builds the `/api` sub-application. */
export function apiRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const api = new Hono<ApiEnv>();
  const body = (c: Context) => readJsonBody(c, MAX_API_BODY);
  const ctx = (c: Context<ApiEnv>) => ({
    actor: c.get("actor"),
    clientAddress: clientAddress(c, deps.trustForwardedFor),
  });

  // Every answer holds account data or echoes input: no cache may keep it, no browser may read it as HTML.
  api.use("*", async (c, next) => {
    await next();
    c.res.headers.set("cache-control", "no-store");
    c.res.headers.set("x-content-type-options", "nosniff");
  });

  api.post("/auth/login", async (c) => {
    // Refused before anything is counted: another site's page could otherwise post wrong passwords from the
    // admin's own browser (a text/plain post needs no preflight) and keep the admin's address locked out.
    if (isCrossSiteRequest(c.req.raw)) {
      throw new HttpError(
        403,
        "permission_error",
        "sign-in from another site's page is refused; sign in from the console or call the API directly",
      );
    }
    const input = await body(c);
    // A script's malformed call is told what is wrong, not that the password was.
    for (const field of ["username", "password"]) {
      if (typeof input[field] !== "string" || input[field] === "") {
        throw new HttpError(400, "invalid_request_error", `${field}: expected a non-empty string`, {}, field);
      }
    }
    const result = await deps.login.attempt(
      typeof input.username === "string" ? input.username : "",
      typeof input.password === "string" ? input.password : "",
      clientAddress(c, deps.trustForwardedFor) ?? "unknown",
    );
    // A bearer token: no cache (browser, proxy or CDN) may keep it.
    return c.json({ access_token: result.token, token_type: "bearer", expires_in: result.expiresIn }, 200, {
      "cache-control": "no-store",
      pragma: "no-cache",
    });
  });

  api.use("*", async (c, next) => {
    // Sign-in called with another method is told which one it takes (405), not asked for a token it cannot have.
    if (c.req.path.endsWith("/auth/login")) return await next();
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      throw new HttpError(
        401,
        "authentication_error",
        "missing Authorization: Bearer <token>; sign in at POST /api/auth/login",
        {
          "www-authenticate": "Bearer",
        },
      );
    }
    const session = await deps.sessions.verify(match[1]);
    if (!session) {
      throw new HttpError(401, "authentication_error", "session token is invalid or expired; sign in again", {
        "www-authenticate": 'Bearer error="invalid_token"',
      });
    }
    c.set("actor", session.username);
    c.set("session", session);
    await next();
  });

  api.post("/auth/logout", async (c) => {
    try {
      await deps.sessions.revoke(c.get("session"));
    } catch (e) {
      c.get("log").warn(
        "sign-out not stored yet; refused on this replica, stored when the database is back",
        {
          error: (e as Error).message,
        },
      );
      // Accepted, not done: nothing for the client to retry (this replica refuses the token already).
      return c.json({
        status: "pending",
        message:
          "signed out on this replica; the database is unreachable, so other replicas accept the token " +
          "until this one stores the sign-out when the database is back (or the token expires)",
      }, 202);
    }
    return c.body(null, 204);
  });

  api.get("/users", async (c) => {
    const status = c.req.query("status");
    if (status !== undefined && status !== "active" && status !== "inactive") {
      throw new HttpError(400, "invalid_request_error", "status: expected active or inactive", {}, "status");
    }
    const { limit, offset } = paging(c);
    const page = await deps.admin.listUsers({ search: c.req.query("q") || undefined, status, limit, offset });
    return c.json({ items: page.items, total: page.total, limit, offset });
  });
  api.post("/users", async (c) => c.json(await deps.admin.createUser(ctx(c), await body(c)), 201));
  api.get("/users/:id", async (c) => c.json(await deps.admin.getUserWithKeys(c.req.param("id"))));
  api.patch(
    "/users/:id",
    async (c) => c.json(await deps.admin.updateUser(ctx(c), c.req.param("id"), await body(c))),
  );
  api.delete("/users/:id", async (c) => {
    await deps.admin.deleteUser(ctx(c), c.req.param("id"));
    return c.body(null, 204);
  });

  api.get(
    "/users/:id/access-keys",
    async (c) => c.json({ items: await deps.admin.listKeys(c.req.param("id")) }),
  );
  api.post(
    "/users/:id/access-keys",
    async (c) =>
      c.json(await deps.admin.issueKey(ctx(c), c.req.param("id"), await body(c)), 201, {
        "cache-control": "no-store",
        pragma: "no-cache",
      }),
  );
  api.get("/access-keys/:id", async (c) => c.json(await deps.admin.getKey(c.req.param("id"))));
  api.delete("/access-keys/:id", async (c) => c.json(await deps.admin.revokeKey(ctx(c), c.req.param("id"))));
  api.post(
    "/access-keys/:id/rotate",
    async (c) =>
      c.json(await deps.admin.rotateKey(ctx(c), c.req.param("id"), await body(c)), 201, {
        "cache-control": "no-store",
        pragma: "no-cache",
      }),
  );

  api.put(
    "/access-keys/:id/bedrock-key",
    async (c) => c.json(await deps.admin.putBedrockCredentials(ctx(c), c.req.param("id"), await body(c))),
  );
  api.get(
    "/access-keys/:id/bedrock-key",
    async (c) => c.json(await deps.admin.getBedrockCredentials(c.req.param("id"))),
  );
  api.delete("/access-keys/:id/bedrock-key", async (c) => {
    await deps.admin.deleteBedrockCredentials(ctx(c), c.req.param("id"));
    return c.body(null, 204);
  });

  api.get("/audit", async (c) => {
    const { limit, offset } = paging(c);
    const page = await deps.admin.listAudit({ limit, offset });
    return c.json({ items: page.items, total: page.total, limit, offset });
  });

  deps.extend?.(api);
  return api;
}
