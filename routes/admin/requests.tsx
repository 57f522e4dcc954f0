/**
 * `GET /admin/requests`: recent proxied requests, newest first, with filters (user, key, provider, model,
 * ok/error) and paging. Times in `PROXY_TIMEZONE`.
 *
 * The user filter is a text field (`user_q`: an email, or part of an email or name) resolved here to one user,
 * deleted ones included, and carried on as `user=<id>` in links and the form: a list of every user would not scale
 * past a few hundred.
 */
import type { Hono } from "hono";
import type { Queryable } from "../../lib/db/db.ts";
import { isRequestOrder, recentRequests, type RequestOrder, type RequestRow } from "../../lib/db/usage.ts";
import { listAccessKeysOfUser } from "../../lib/db/access_keys.ts";
import { findUserIncludingDeleted, findUsersByText, type UserRow } from "../../lib/db/users.ts";
import { Layout, PageHeader } from "../../components/Layout.tsx";
import { Badge, ProviderBadge } from "../../components/Badge.tsx";
import { EmptyState } from "../../components/EmptyState.tsx";
import { Pager, PastTheEnd, Table } from "../../components/Table.tsx";
import { fmtDateTime, fmtInt, fmtMs, fmtUsd } from "../../components/format.ts";
import { urls, withQuery } from "../../components/urls.ts";
import { type AdminDeps, type AdminEnv, isUuid, render, sessionView } from "./shared.tsx";

const PAGE_SIZE = 50;
/** The orders offered, as the sort menu names them. */
const ORDER_LABELS: Record<RequestOrder, string> = {
  newest: "Newest first",
  oldest: "Oldest first",
  cost: "Most expensive",
  latency: "Slowest",
  tokens: "Most tokens",
};
/** Users offered to pick from when the typed text matches several. */
const USER_CHOICES = 10;

/** What the user filter came to: the user to filter by (null: all), the field's text, or what went wrong. */
interface UserFilter {
  user: UserRow | null;
  text: string;
  error?: string;
  /** When the text matches several users: the first few, to pick one. */
  choices?: UserRow[];
}

/**
 * Resolves the user filter from `user` (an id, as links carry it) and `user_q` (the text typed in the form). Sent
 * text wins, empty meaning all users, unless it is the chosen user's own email (the form as rendered): a deleted
 * user's email may belong to a live user by now. Otherwise an exact email, or text matching one user, names it.
 */
async function resolveUserFilter(
  db: Queryable,
  id: string | undefined,
  typed: string | undefined,
): Promise<UserFilter> {
  const chosen = id && isUuid(id) ? await findUserIncludingDeleted(db, id) : null;
  if (typed === undefined) {
    if (!id) return { user: null, text: "" };
    if (!isUuid(id)) {
      return { user: null, text: "", error: "Expected a user id (a UUID); type an email or name instead." };
    }
    if (!chosen) {
      return { user: null, text: "", error: `No user has id ${id}; type an email or name instead.` };
    }
    return { user: chosen, text: chosen.email };
  }
  const text = typed.trim().slice(0, 254);
  if (text === "") return { user: null, text };
  if (chosen && chosen.email.toLowerCase() === text.toLowerCase()) {
    return { user: chosen, text: chosen.email };
  }
  if (text.includes("\u0000")) {
    return { user: null, text: "", error: "Must not contain NUL characters; expected an email or a name." };
  }
  const found = await findUsersByText(db, text, USER_CHOICES);
  const first = found.items[0];
  if (first && (found.total === 1 || first.email.toLowerCase() === text.toLowerCase())) {
    return { user: first, text: first.email };
  }
  if (!first) {
    return {
      user: null,
      text,
      error:
        `No user's email or name contains "${text}"; check the spelling, or empty the field for all users.`,
    };
  }
  const some = found.total > USER_CHOICES ? `one of the first ${USER_CHOICES}` : "one";
  return {
    user: null,
    text,
    error: `${fmtInt(found.total)} users match "${text}"; type more of the email, or pick ${some}:`,
    choices: found.items,
  };
}

/** Registers the requests page. */
export function requestsRoutes(admin: Hono<AdminEnv>, deps: AdminDeps): void {
  admin.get("/requests", async (c) => {
    const tz = deps.config.timezone;
    const q = c.req.query();
    const errors: Record<string, string> = {};
    const userFilter = await resolveUserFilter(deps.db, q.user || undefined, q.user_q);
    if (userFilter.error) errors.user = userFilter.error;
    const user = userFilter.user?.id;
    const keys = user ? await listAccessKeysOfUser(deps.db, user) : [];
    // A key kept in the address from another user's filter would match nothing while its select shows "All
    // keys": a key that is not the chosen user's is dropped.
    const key = (q.key && (!user || keys.some((k) => k.id === q.key)) ? q.key : undefined) || undefined;
    const provider = q.provider || undefined;
    const model = (q.model ?? "").trim().slice(0, 200) || undefined;
    const status = q.status || undefined;
    if (key && !isUuid(key)) errors.key = "Expected an access key id (a UUID).";
    if (provider && provider !== "anthropic" && provider !== "bedrock") {
      errors.provider = "Expected Anthropic or Bedrock.";
    }
    if (status && status !== "ok" && status !== "error") errors.status = "Expected ok or error.";
    const sortParam = q.sort || "newest";
    const order = isRequestOrder(sortParam) ? sortParam : "newest";
    if (order !== sortParam) {
      errors.sort = `Expected one of: ${Object.values(ORDER_LABELS).join(", ").toLowerCase()}.`;
    }
    // Links keep the order, but leave the default out of them.
    const sort = order === "newest" ? undefined : order;
    // PostgreSQL refuses a NUL in text outright (a 500 otherwise); no model name holds one.
    if (model?.includes("\u0000")) errors.model = "Expected a model name (no NUL characters).";
    const offset = Math.max(0, Math.min(1e9, Math.floor(Number(q.offset ?? 0)) || 0));
    const valid = Object.keys(errors).length === 0;

    const page = valid
      ? await recentRequests(deps.db, {
        userId: user,
        accessKeyId: key,
        provider,
        model,
        status: status as "ok" | "error" | undefined,
        order,
        limit: PAGE_SIZE,
        offset,
      })
      : { items: [], total: 0 };

    const total = Number(page.total);
    const filtered = !!(user || userFilter.text || errors.user || key || provider || model || status);
    const field = (name: string) =>
      errors[name] && (
        <p id={`filter-${name}-error`} class="field-error" data-field-error={name}>{errors[name]}</p>
      );
    const invalid = (name: string) =>
      errors[name] ? { "aria-invalid": "true" as const, "aria-describedby": `filter-${name}-error` } : {};

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
            <label class="label" for="filter-user">User</label>
            <input
              id="filter-user"
              name="user_q"
              type="search"
              class={`input ${errors.user ? "input-invalid" : ""}`}
              value={userFilter.text}
              placeholder="Email or name; empty for all"
              autocomplete="off"
              {...invalid("user")}
            />
            {user && <input type="hidden" name="user" value={user} />}
            {userFilter.user?.deleted_at && <p class="mt-1 text-xs text-slate-500">A deleted user.</p>}
            {field("user")}
            {userFilter.choices && (
              <ul class="mt-1 space-y-0.5 text-sm" data-user-choices>
                {userFilter.choices.map((u) => (
                  <li key={u.id}>
                    <a
                      class="link"
                      href={withQuery(urls.requests, { user: u.id, provider, model, status, sort })}
                    >
                      {u.email}
                    </a>
                    {u.name && <span class="ml-1 text-slate-500">· {u.name}</span>}
                    {u.deleted_at && <span class="ml-1 text-slate-500">(deleted)</span>}
                  </li>
                ))}
              </ul>
            )}
          </div>
          <div>
            <label class="label" for="filter-key">Key</label>
            {keys.length > 0
              ? (
                <select
                  id="filter-key"
                  name="key"
                  class={`input ${errors.key ? "input-invalid" : ""}`}
                  {...invalid("key")}
                >
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
                  id="filter-key"
                  name="key"
                  class={`input ${errors.key ? "input-invalid" : ""}`}
                  value={key ?? ""}
                  placeholder="Key id"
                  autocomplete="off"
                  {...invalid("key")}
                />
              )}
            {field("key")}
          </div>
          <div>
            <label class="label" for="filter-provider">Provider</label>
            <select
              id="filter-provider"
              name="provider"
              class={`input ${errors.provider ? "input-invalid" : ""}`}
              {...invalid("provider")}
            >
              <option value="">Any</option>
              <option value="anthropic" selected={provider === "anthropic"}>Anthropic</option>
              <option value="bedrock" selected={provider === "bedrock"}>Bedrock</option>
            </select>
            {field("provider")}
          </div>
          <div>
            <label class="label" for="filter-model">Model</label>
            <input
              id="filter-model"
              name="model"
              class="input"
              value={model?.replaceAll("\u0000", "") ?? ""}
              placeholder="Any"
              autocomplete="off"
            />
            {field("model")}
          </div>
          <div>
            <label class="label" for="filter-status">Outcome</label>
            <select
              id="filter-status"
              name="status"
              class={`input ${errors.status ? "input-invalid" : ""}`}
              {...invalid("status")}
            >
              <option value="">Any</option>
              <option value="ok" selected={status === "ok"}>OK</option>
              <option value="error" selected={status === "error"}>Error</option>
            </select>
            {field("status")}
          </div>
          <div class="col-span-2 flex flex-wrap items-end gap-2 sm:col-span-3 lg:col-span-6">
            <div>
              <label class="label" for="filter-sort">Sort</label>
              <select
                id="filter-sort"
                name="sort"
                class={`input ${errors.sort ? "input-invalid" : ""}`}
                {...invalid("sort")}
              >
                {Object.entries(ORDER_LABELS).map(([value, label]) => (
                  <option value={value} selected={value === order}>{label}</option>
                ))}
              </select>
            </div>
            <button type="submit" class="btn btn-secondary">Apply</button>
            {filtered && (
              <a href={urls.requests} class="btn text-slate-600 hover:text-slate-900">Clear filters</a>
            )}
            <div class="basis-full">{field("sort")}</div>
          </div>
        </form>

        <div class="card">
          {page.items.length === 0
            ? (
              total > 0
                ? (
                  <PastTheEnd
                    path={urls.requests}
                    params={{ user, key, provider, model, status, sort }}
                    total={total}
                    limit={PAGE_SIZE}
                    offset={offset}
                    counted={filtered ? "requests match" : "requests"}
                  />
                )
                : filtered
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
                    const notes = priceNotes(r);
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
                            {fmtInt(r.input_tokens)} in · {r.output_estimated
                              ? (
                                <abbr
                                  data-estimated
                                  title="estimated from the text relayed: the answer was cut short before its final count"
                                >
                                  ≈{fmtInt(r.output_tokens)}
                                </abbr>
                              )
                              : fmtInt(r.output_tokens)} out
                          </span>
                          <span class="block text-xs text-slate-500" title="cache read / cache write">
                            cache {fmtInt(r.cache_read_input_tokens)} r ·{" "}
                            {fmtInt(r.cache_creation_input_tokens)} w
                          </span>
                        </td>
                        <td class="whitespace-nowrap text-right tabular-nums">
                          {fmtUsd(r.cost_usd === null ? null : Number(r.cost_usd))}
                          {notes && (
                            <span
                              data-price-notes
                              class="block text-xs text-slate-500"
                              title="what besides tokens set the price, as the answer's usage said"
                            >
                              {notes}
                            </span>
                          )}
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
                  params={{ user, key, provider, model, status, sort }}
                  total={total}
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

/**
 * What besides tokens set a request's price, in a few words: fast mode and US-only inference (billed at a
 * multiple), web searches (billed per search); "" when none. The defaults ("standard", "global") say nothing.
 */
function priceNotes(r: RequestRow): string {
  const notes: string[] = [];
  if (r.speed && r.speed !== "standard") notes.push(r.speed === "fast" ? "fast mode" : `speed ${r.speed}`);
  if (r.inference_geo && r.inference_geo !== "global") {
    notes.push(r.inference_geo === "us" ? "US-only" : `geo ${r.inference_geo}`);
  }
  if (r.web_search_requests > 0) {
    notes.push(`${fmtInt(r.web_search_requests)} web search${r.web_search_requests === 1 ? "" : "es"}`);
  }
  return notes.join(" · ");
}
