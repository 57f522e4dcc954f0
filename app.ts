/**
 * `createApp(deps)`: the whole HTTP surface, with every dependency injected so tests swap the database, the
 * upstream URLs and the clock without global stubs. Middleware order: request id and access log first, then
 * routes; one `onError` shapes every error for the route family it came from.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { Config } from "./lib/config.ts";
import type { Db } from "./lib/db/db.ts";
import type { Logger } from "./lib/log.ts";
import { redactPath } from "./lib/log.ts";
import {
  anthropicError,
  databaseUnavailableError,
  HttpError,
  isDatabaseUnavailable,
  logDatabaseOutage,
} from "./lib/errors.ts";
import { healthRoutes } from "./routes/health.ts";
import { apiRoutes } from "./routes/api/mod.ts";
import type { Services } from "./lib/services.ts";
import { usageRoutes } from "./routes/api/usage.ts";
import { proxyRoutes } from "./routes/proxy.ts";
import { circuitRoutes } from "./routes/api/circuit.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { adminRoutes } from "./routes/admin/mod.tsx";
import { staticRoutes } from "./routes/static.ts";
import { routeMethods } from "./lib/route_methods.ts";
import { cidrMatcher } from "./lib/net/cidr.ts";
import { clientAddress } from "./lib/http.ts";

/** Everything the HTTP layer needs; built by `main.ts` (or by tests). */
export interface AppDeps {
  config: Config;
  db: Db;
  log: Logger;
  services: Services;
}

/** Per-request variables set by middleware. */
export type AppEnv = {
  Variables: {
    requestId: string;
    /** The client's `x-request-id`, sanitised, for correlation in logs only. */
    clientRequestId: string | undefined;
    log: Logger;
    /** Set once a proxied request has its usage row and log line: the access log then adds none. */
    recorded?: boolean;
  };
};

/** Builds the Hono application. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use("*", async (c, next) => {
    // Always our own: the id keys the usage row (inserted once per id), so a client that chose it could make
    // later rows vanish as duplicates. A client's x-request-id is kept in the log for correlation.
    const requestId = crypto.randomUUID();
    const clientId = c.req.header("x-request-id")?.slice(0, 64).replace(/[^\w.-]/g, "");
    c.set("requestId", requestId);
    c.set("clientRequestId", clientId || undefined);
    c.set(
      "log",
      deps.log.child(
        clientId ? { request_id: requestId, client_request_id: clientId } : { request_id: requestId },
      ),
    );
    await next();
  });

  // The access log. A request the proxy answered (upstream or Bedrock) already has its own line with model,
  // tokens and provider; every other one gets this line: refused proxy requests (bad key, bad body, throttled),
  // the API and the console, so key and password guessing show up in the logs.
  app.use("*", async (c, next) => {
    const started = performance.now();
    await next();
    if (c.res.headers.has("x-proxy-provider") || c.get("recorded")) return;
    const path = c.req.path;
    const probe = path === "/health" || path === "/ready" || path.startsWith("/static/") ||
      (c.req.method !== "POST" && (path === "/" || /^\/ak\/[^/]*(?:\/api\/hello)?$/.test(path)));
    const fields = {
      method: c.req.method,
      path: redactPath(path),
      status: c.res.status,
      duration_ms: Math.round(performance.now() - started),
      client: clientAddress(c, deps.config.trustForwardedFor),
    };
    // Load balancer and Claude Code probes every few seconds would drown the rest.
    if (probe) c.get("log").debug("http", fields);
    else c.get("log").info("http", fields);
  });

  if (deps.config.env === "production") {
    app.use("*", async (c, next) => {
      await next();
      c.header("strict-transport-security", "max-age=31536000; includeSubDomains");
    });
  }
  const allowedCidrs = deps.config.adminAllowedCidrs;
  if (allowedCidrs) {
    // The console and the admin API are for operators only; the proxy routes stay open to every developer.
    const allowed = cidrMatcher(allowedCidrs);
    const guard = async (c: Context, next: () => Promise<void>) => {
      if (!allowed(clientAddress(c, deps.config.trustForwardedFor))) {
        throw new HttpError(
          403,
          "permission_error",
          "the admin console and API are not reachable from this address",
        );
      }
      await next();
    };
    app.use("/admin/*", guard);
    app.use("/admin", guard);
    app.use("/api/*", guard);
  }

  app.route("/", healthRoutes({ db: deps.db }));
  app.route("/", metricsRoutes({ services: deps.services, token: deps.config.metricsToken }));
  app.route(
    "/ak",
    proxyRoutes(deps.services.proxy, {
      trustForwardedFor: deps.config.trustForwardedFor,
      peers: deps.services.peers,
      guesses: deps.services.keyGuesses,
    }),
  );
  app.on(["GET", "HEAD"], "/", (c) => c.text("claude-code-proxy: ok\n"));
  app.route(
    "/api",
    apiRoutes({
      admin: deps.services.admin,
      sessions: deps.services.sessions,
      login: deps.services.login,
      trustForwardedFor: deps.config.trustForwardedFor,
      extend: (api) => {
        usageRoutes(api, {
          db: deps.db,
          timeZone: deps.config.timezone,
          now: deps.services.now,
          retentionDays: deps.config.usageRetentionDays,
        });
        circuitRoutes(api, {
          admin: deps.services.admin,
          breakers: deps.services.breakers,
          trustForwardedFor: deps.config.trustForwardedFor,
        });
      },
    }),
  );

  app.route(
    "/admin",
    adminRoutes({ config: deps.config, db: deps.db, services: deps.services, log: deps.log }),
  );
  app.route("/static", staticRoutes());

  const allowedAt = routeMethods(app);
  app.notFound((c) => {
    const allowed = allowedAt(c.req.path);
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      return errorResponse(
        c,
        new HttpError(
          405,
          "invalid_request_error",
          `${c.req.method} is not allowed on ${redactPath(c.req.path)}; expected ${allowed.join(", ")}`,
          { allow: allowed.join(", ") },
        ),
      );
    }
    // An access key outside `/ak/<key>`: a base URL that lost its `/ak/` segment, the likeliest mistake.
    const hint = /ak_/.test(c.req.path) && !c.req.path.startsWith("/ak/")
      ? "; an access key goes in the base URL as https://<proxy>/ak/<access key>"
      : "";
    return errorResponse(
      c,
      new HttpError(404, "not_found_error", `no route for ${c.req.method} ${redactPath(c.req.path)}${hint}`),
    );
  });
  app.onError((err, c) => {
    if (err instanceof HttpError) return errorResponse(c, err);
    if (isDatabaseUnavailable(err)) {
      // Expected while the database is down, and the client can do something about it (retry): a retryable
      // 503, not a 500 that reads like a bug (logged as a warning, or an error when the login was refused).
      logDatabaseOutage(c.get("log"), c.req.path, err);
      return errorResponse(c, databaseUnavailableError());
    }
    c.get("log")?.error("unhandled error", { path: c.req.path, error: err });
    return errorResponse(c, new HttpError(500, "api_error", "internal error; see the proxy's logs"));
  });
  return app;
}

/** Shapes an error for the route family: Anthropic's shape for `/ak/`, JSON for the rest. */
export function errorResponse(c: Context, err: HttpError): Response {
  const headers = { ...err.headers, "x-proxy-request-id": String(c.get("requestId") ?? "") };
  if (c.req.path.startsWith("/ak/")) {
    return c.json(anthropicError(err.type, err.message), err.status as 400, headers);
  }
  const body: Record<string, unknown> = { type: err.type, message: err.message };
  if (err.field) body.field = err.field;
  return c.json({ error: body }, err.status as 400, headers);
}
