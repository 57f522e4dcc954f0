/**
 * Liveness and readiness: `/health` says the process is up; `/ready` says the database answers.
 * A load balancer checks `/health`, so a database outage never takes the proxy out of rotation: cached keys
 * keep being served.
 */
import { Hono } from "hono";
import type { Db } from "../lib/db/db.ts";

/** Mounts `GET /health` and `GET /ready`. */
export function healthRoutes(deps: { db: Db; readyTimeoutMs?: number }): Hono {
  const app = new Hono();
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/ready", async (c) => {
    try {
      await withTimeout(deps.db.ping(), deps.readyTimeoutMs ?? 2000);
      return c.json({ status: "ready", database: "up" });
    } catch {
      return c.json({ status: "not_ready", database: "down" }, 503);
    }
  });
  return app;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
