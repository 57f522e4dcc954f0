/**
 * `GET /api/usage`, `/api/usage/top-users`, `/api/usage/requests`: reports over the recorded usage.
 */
import type { Hono } from "hono";
import type { ApiEnv } from "./mod.ts";
import type { Db } from "../../lib/db/db.ts";
import {
  parseReportQuery,
  parseTimeRange,
  parseUsageFilters,
  rawRowsSince,
  usageReport,
} from "../../lib/usage/report.ts";
import { isRequestOrder, recentRequests, REQUEST_ORDERS, topUsers } from "../../lib/db/usage.ts";
import { paging } from "../../lib/http.ts";
import { HttpError } from "../../lib/errors.ts";

/** Adds the usage routes to the authenticated API. */
export function usageRoutes(
  api: Hono<ApiEnv>,
  deps: { db: Db; timeZone: string; now: () => Date; retentionDays: number },
): void {
  api.get("/usage", async (c) => {
    const now = deps.now();
    const q = parseReportQuery(c.req.query(), now, deps.timeZone);
    return c.json(await usageReport(deps.db, q, deps.timeZone, 10, rawRowsSince(now, deps.retentionDays)));
  });
  api.get("/usage/top-users", async (c) => {
    const q = parseReportQuery(c.req.query(), deps.now(), deps.timeZone);
    const { limit, offset } = paging(c, 100);
    const items = await topUsers(deps.db, q, q.granularity, limit, offset);
    return c.json({ from: q.from, to: q.to, items });
  });
  api.get("/usage/requests", async (c) => {
    const params = c.req.query();
    const { limit, offset } = paging(c);
    const status = params.status;
    if (status && status !== "ok" && status !== "error") {
      throw new HttpError(400, "invalid_request_error", "status: expected ok or error", {}, "status");
    }
    const order = params.sort || "newest";
    if (!isRequestOrder(order)) {
      throw new HttpError(
        400,
        "invalid_request_error",
        `sort: expected one of ${REQUEST_ORDERS.join(", ")}`,
        {},
        "sort",
      );
    }
    const range = parseTimeRange(params, deps.timeZone); // not rounded: a list of requests has no buckets
    const page = await recentRequests(deps.db, {
      from: range.from,
      to: range.to,
      ...parseUsageFilters(params),
      status: status as "ok" | "error" | undefined,
      order,
      limit,
      offset,
    });
    return c.json({ items: page.items, total: page.total, limit, offset });
  });
}
