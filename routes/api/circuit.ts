/**
 * `GET /api/access-keys/:id/circuit` and `POST /api/access-keys/:id/circuit/reset`: a key's circuit breaker.
 */
import type { Hono } from "hono";
import type { ApiEnv } from "./mod.ts";
import type { Admin } from "../../lib/admin/admin.ts";
import type { CircuitBreakers } from "../../lib/proxy/circuit_breaker.ts";
import { clientAddress } from "../../lib/http.ts";

/** The breaker of a key as the API shows it. */
export function circuitView(breakers: CircuitBreakers, accessKeyId: string) {
  const s = breakers.snapshot(accessKeyId);
  return {
    access_key_id: accessKeyId,
    state: s.state,
    failures: s.failures,
    opened_at: s.openedAt === null ? null : new Date(s.openedAt),
    reopens_at: s.reopensAt === null ? null : new Date(s.reopensAt),
  };
}

/** Adds the circuit routes to the authenticated API. */
export function circuitRoutes(
  api: Hono<ApiEnv>,
  deps: { admin: Admin; breakers: CircuitBreakers; trustForwardedFor: boolean },
): void {
  api.get("/access-keys/:id/circuit", async (c) => {
    const key = await deps.admin.getKey(c.req.param("id"));
    return c.json(circuitView(deps.breakers, key.id));
  });
  api.post("/access-keys/:id/circuit/reset", async (c) => {
    const key = await deps.admin.getKey(c.req.param("id"));
    deps.breakers.reset(key.id);
    await deps.admin.recordAudit(
      { actor: c.get("actor"), clientAddress: clientAddress(c, deps.trustForwardedFor) },
      "circuit.reset",
      "access_key",
      key.id,
    );
    return c.json(circuitView(deps.breakers, key.id));
  });
}
