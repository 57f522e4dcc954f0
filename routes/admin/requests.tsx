/**
 * `GET /admin/requests`: recent proxied requests, newest first, with filters (user, key, provider, model,
 * ok/error) and paging. Times in `PROXY_TIMEZONE`.
 */
import type { Hono } from "hono";
import { recentRequests } from "../../lib/db/usage.ts";
import { Layout, PageHeader } from "../../components/Layout.tsx";
import { Badge, ProviderBadge } from "../../components/Badge.tsx";
import { EmptyState } from "../../components/EmptyState.tsx";
import { Pager, Table } from "../../components/Table.tsx";
import { fmtDateTime, fmtInt, fmtMs, fmtUsd } from "../../components/format.ts";
import { urls } from "../../components/urls.ts";
import { type AdminDeps, type AdminEnv, isUuid, render, sessionView } from "./shared.tsx";

const PAGE_SIZE = 50;

/** Registers the requests page. */
export function requestsRoutes(admin: Hono<AdminEnv>, deps: AdminDeps): void {
  admin.get("/requests", async (c) => {
    const tz = deps.config.timezone;
    const q = c.req.query();
    const errors: Record<string, string> = {};
    const user = q.user || undefined;
    const key = q.key || undefined;
    const provider = q.provider || undefined;
    const model = (q.model ?? "").trim().slice(0, 200) || undefined;
    const status = q.status || undefined;
    if (user && !isUuid(user)) errors.user = "Unknown user; pick one from the list.";
    if (key && !isUuid(key)) errors.key = "Expected an access key id (a UUID).";
    if (provider && provider !== "anthropic" && provider !== "bedrock") {
      errors.provider = "Expected Anthropic or Bedrock.";
    }
    if (status && status !== "ok" && status !== "error") errors.status = "Expected ok or error.";
    const offset = Math.max(0, Math.min(1e9, Math.floor(Number(q.offset ?? 0)) || 0));
    const valid = Object.keys(errors).length === 0;

    const [page, users, keys] = await Promise.all([
      valid
        ? recentRequests(deps.db, {
          userId: user,
          accessKeyId: key,
          provider,
          model,
          status: status as "ok" | "error" | undefined,
          limit: PAGE_SIZE,
          offset,
        })
        : Promise.resolve({ items: [], total: 0 }),
      deps.services.admin.listUsers({ limit: 200, offset: 0 }),
      user && isUuid(user) ? deps.services.admin.listKeys(user).catch(() => []) : Promise.resolve([]),
    ]);
    const userOptions = users.items.map((u) => [u.id, u.email] as [string, string])
      .sort((a, b) => a[1].localeCompare(b[1]));
    if (user && isUuid(user) && !userOptions.some(([id]) => id === user)) {
      const found = await deps.services.admin.getUser(user).catch(() => null);
      userOptions.unshift([user, found?.email ?? `${user.slice(0, 8)}… (deleted)`]);
    }
    const filtered = !!(user || key || provider || model || status);
    const field = (name: string) =>
      errors[name] && <p class="field-error" data-field-error={name}>{errors[name]}</p>;

    return render(
      c,
      <Layout title="Requests" section="requests" session={sessionView(c)} timeZone={tz}>
        <PageHeader
          title="Requests"
          subtitle="Every proxied request with its tokens, cost and where it was served."
        />
        <form
          method="get"
          action={urls.requests}
          class="card mb-6 grid grid-cols-2 items-end gap-3 sm:grid-cols-3 lg:grid-cols-6"
        >
          <div class="col-span-2 sm:col-span-1 lg:col-span-2">
            <label class="label" for="user">User</label>
            <select id="user" name="user" class={`input ${errors.user ? "input-invalid" : ""}`}>
              <option value="">All users</option>
              {userOptions.map(([id, email]) => (
                <option key={id} value={id} selected={id === user}>{email}</option>
              ))}
            </select>
            {field("user")}
          </div>
          <div>
            <label class="label" for="key">Key</label>
            {keys.length > 0
              ? (
                <select id="key" name="key" class={`input ${errors.key ? "input-invalid" : ""}`}>
                  <option value="">All keys</option>
                  {keys.map((k) => (
                    <option value={k.id} selected={k.id === key}>
                      {k.key_prefix}…{k.name ? ` (${k.name})` : ""}
                    </option>
                  ))}
                </select>
              )
              : (
                <input
                  id="key"
                  name="key"
                  class={`input ${errors.key ? "input-invalid" : ""}`}
                  value={key ?? ""}
                  placeholder="Key id"
                  autocomplete="off"
                />
              )}
            {field("key")}
          </div>
          <div>
            <label class="label" for="provider">Provider</label>
            <select id="provider" name="provider" class={`input ${errors.provider ? "input-invalid" : ""}`}>
              <option value="">Any</option>
              <option value="anthropic" selected={provider === "anthropic"}>Anthropic</option>
              <option value="bedrock" selected={provider === "bedrock"}>Bedrock</option>
            </select>
            {field("provider")}
          </div>
          <div>
            <label class="label" for="model">Model</label>
            <input
              id="model"
              name="model"
              class="input"
              value={model ?? ""}
              placeholder="Any"
              autocomplete="off"
            />
          </div>
          <div>
            <label class="label" for="status">Outcome</label>
            <select id="status" name="status" class={`input ${errors.status ? "input-invalid" : ""}`}>
              <option value="">Any</option>
              <option value="ok" selected={status === "ok"}>OK</option>
              <option value="error" selected={status === "error"}>Error</option>
            </select>
            {field("status")}
          </div>
          <div class="col-span-2 flex gap-2 sm:col-span-3 lg:col-span-6">
            <button type="submit" class="btn btn-secondary">Filter</button>
            {filtered && (
              <a href={urls.requests} class="btn text-slate-600 hover:text-slate-900">Clear filters</a>
            )}
          </div>
        </form>

        <div class="card">
          {page.items.length === 0
            ? (
              filtered
                ? (
                  <EmptyState title="No requests match these filters">
                    <p>
                      Widen the filters or <a class="link" href={urls.requests}>clear them</a>.
                    </p>
                  </EmptyState>
                )
                : (
                  <EmptyState
                    title="No requests yet"
                    action={<a class="btn btn-primary" href={urls.users}>Go to users</a>}
                  >
                    <p>
                      Requests appear here a second or so after they pass through the proxy. Issue an access
                      key to a user and point Claude Code at{" "}
                      <code>ANTHROPIC_BASE_URL=&lt;this server&gt;/ak/&lt;key&gt;</code>.
                    </p>
                  </EmptyState>
                )
            )
            : (
              <>
                <Table
                  id="requests"
                  caption="Requests"
                  head={["Time", "User / key", "Model", "Provider", "Status", ["Tokens", "right"], [
                    "Cost",
                    "right",
                  ], [
                    "Latency",
                    "right",
                  ]]}
                >
                  {page.items.map((r) => {
                    const failed = r.status_code >= 400 || r.error_type !== null;
                    const [day, time] = fmtDateTime(r.created_at, tz, true).split(" ");
                    return (
                      <tr data-request-id={r.request_id}>
                        <td
                          class="whitespace-nowrap tabular-nums"
                          title={new Date(r.created_at).toISOString()}
                        >
                          <span class="block">{time}</span>
                          <span class="block text-xs text-slate-500">{day}</span>
                        </td>
                        <td class="max-w-48">
                          {r.user_id
                            ? (
                              <a class="link block truncate" href={urls.user(r.user_id)}>
                                {r.email ?? r.user_id.slice(0, 8)}
                              </a>
                            )
                            : <span class="block text-slate-400">deleted user</span>}
                          {r.access_key_id && r.key_prefix
                            ? (
                              <a class="link block font-mono text-xs" href={urls.key(r.access_key_id)}>
                                {r.key_prefix}…
                              </a>
                            )
                            : null}
                        </td>
                        <td class="max-w-56">
                          <span class="block truncate" title={r.model ?? undefined}>{r.model ?? "–"}</span>
                          {r.model_served && r.model_served !== r.model && (
                            <span
                              class="block truncate text-xs text-slate-500"
                              title={`served as ${r.model_served}`}
                            >
                              → {r.model_served}
                            </span>
                          )}
                        </td>
                        <td class="whitespace-nowrap">
                          <ProviderBadge provider={r.provider} />
                          {r.is_fallback && (
                            <span class="mt-1 block text-xs text-amber-700" title="fallback reason">
                              ↳ {r.fallback_reason ?? "fallback"}
                            </span>
                          )}
                        </td>
                        <td class="whitespace-nowrap">
                          <Badge tone={failed ? "red" : "green"}>{r.status_code}</Badge>
                          {r.error_type && (
                            <span class="mt-1 block text-xs text-rose-700">{r.error_type}</span>
                          )}
                        </td>
                        <td class="whitespace-nowrap text-right tabular-nums">
                          <span class="block" title="input / output">
                            {fmtInt(r.input_tokens)} in · {fmtInt(r.output_tokens)} out
                          </span>
                          <span class="block text-xs text-slate-500" title="cache read / cache write">
                            cache {fmtInt(r.cache_read_input_tokens)} r ·{" "}
                            {fmtInt(r.cache_creation_input_tokens)} w
                          </span>
                        </td>
                        <td class="whitespace-nowrap text-right tabular-nums">
                          {fmtUsd(r.cost_usd === null ? null : Number(r.cost_usd))}
                        </td>
                        <td class="whitespace-nowrap text-right tabular-nums">
                          {fmtMs(r.latency_ms)}
                          {r.time_to_first_byte_ms !== null && (
                            <span class="block text-xs text-slate-500">
                              TTFB {fmtMs(r.time_to_first_byte_ms)}
                            </span>
                          )}
                        </td>
                      </tr>
                    );
                  })}
                </Table>
                <Pager
                  path={urls.requests}
                  params={{ user, key, provider, model, status }}
                  total={page.total}
                  limit={PAGE_SIZE}
                  offset={offset}
                />
              </>
            )}
        </div>
      </Layout>,
      valid ? 200 : 400,
    );
  });
}
