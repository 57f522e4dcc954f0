/**
 * Users: the list (search, status filter, Bedrock budget use this month, key count) with the create form, and a
 * user's page (profile, routing, budget, activate/deactivate, delete, usage chart, keys and issuing a key). A
 * deleted user's page stays, read-only, since its usage history is kept and other pages link to it.
 */
import type { Hono } from "hono";
import { findUserIncludingDeleted, type UserRow } from "../../lib/db/users.ts";
import { listAccessKeysOfUser } from "../../lib/db/access_keys.ts";
import type { KeyView } from "../../lib/admin/admin.ts";
import { bedrockSpendSince } from "../../lib/db/usage.ts";
import { monthWindow } from "../../lib/usage/budget_period.ts";
import { parseReportQuery, rawRowsSince, usageReport } from "../../lib/usage/report.ts";
import { Layout, PageHeader } from "../../components/Layout.tsx";
import { Card, Facts, StatCard } from "../../components/Card.tsx";
import { Badge, CircuitBadge, KeyStatusBadge, UserStatusBadge } from "../../components/Badge.tsx";
import { BudgetBar } from "../../components/BudgetBar.tsx";
import { EmptyState } from "../../components/EmptyState.tsx";
import {
  CsrfField,
  Field,
  FormError,
  type FormState,
  formState,
  keepChoice,
  SelectField,
} from "../../components/Form.tsx";
import { Island } from "../../components/Island.tsx";
import { Pager, PastTheEnd, Table } from "../../components/Table.tsx";
import { fmtCompact, fmtDateTime, fmtInt, fmtUsd } from "../../components/format.ts";
import { urls, withQuery } from "../../components/urls.ts";
import { fillSeries, tokensChart } from "./charts.ts";
import { newKeyFlow } from "./keys.tsx";
import {
  actionCtx,
  type AdminContext,
  type AdminDeps,
  type AdminEnv,
  allTokens,
  ConfirmPage,
  formNumber,
  isUuid,
  keep,
  noticeFrom,
  readForm,
  render,
  sessionView,
  stateFromError,
} from "./shared.tsx";

const PAGE_SIZE = 25;
const STRATEGIES: Array<[string, string]> = [
  ["plan_first", "Anthropic first, Bedrock fallback"],
  ["bedrock_only", "Bedrock only"],
];

/** Form values → the admin service's user input (empty optional fields become null). */
function userInput(form: Record<string, string>, forUpdate: boolean): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  if (!forUpdate) input.email = form.email ?? "";
  const name = (form.name ?? "").trim();
  input.name = name === "" ? null : name;
  input.monthly_budget_usd = formNumber(form.monthly_budget_usd);
  if (form.routing_strategy) input.routing_strategy = form.routing_strategy;
  return input;
}

/** Registers the user pages. */
export function usersRoutes(admin: Hono<AdminEnv>, deps: AdminDeps): void {
  const listPage = async (c: AdminContext, create: FormState, status = 200) => {
    const q = (c.req.query("q") ?? "").trim().slice(0, 200);
    const rawStatus = c.req.query("status");
    const userStatus = rawStatus === "active" || rawStatus === "inactive" ? rawStatus : undefined;
    const offset = Math.max(0, Math.min(1e9, Math.floor(Number(c.req.query("offset") ?? 0)) || 0));
    const page = await deps.services.admin.listUsers({
      search: q || undefined,
      status: userStatus,
      limit: PAGE_SIZE,
      offset,
    });
    const monthStart = monthWindow(deps.services.now(), deps.config.timezone).start;
    const spend = await Promise.all(page.items.map((u) => bedrockSpendSince(deps.db, u.id, monthStart)));
    const filtered = q !== "" || userStatus !== undefined;
    const listParams = { q: q || undefined, status: userStatus };

    return render(
      c,
      <Layout
        title="Users"
        section="users"
        session={sessionView(c)}
        notice={noticeFrom(c)}
        timeZone={deps.config.timezone}
      >
        <PageHeader
          title="Users"
          subtitle="Each user gets access keys; their Bedrock spend counts against their budget."
        />
        <div class="grid grid-cols-1 gap-6 lg:grid-cols-3">
          <div class="min-w-0 space-y-4 lg:col-span-2">
            <form method="get" action={urls.users} class="card flex flex-wrap items-end gap-3" role="search">
              <div class="min-w-48 flex-1">
                <label class="label" for="search-q">Search</label>
                <input
                  id="search-q"
                  name="q"
                  type="search"
                  class="input"
                  value={q}
                  placeholder="Email or name"
                />
              </div>
              <div>
                <label class="label" for="search-status">Status</label>
                <select id="search-status" name="status" class="input w-auto">
                  <option value="" selected={!userStatus}>All</option>
                  <option value="active" selected={userStatus === "active"}>Active</option>
                  <option value="inactive" selected={userStatus === "inactive"}>Inactive</option>
                </select>
              </div>
              <button type="submit" class="btn btn-secondary">Filter</button>
              {filtered && <a href={urls.users} class="btn text-slate-600 hover:text-slate-900">Clear</a>}
            </form>
            <div class="card">
              {page.items.length === 0
                ? (
                  Number(page.total) > 0
                    ? (
                      <PastTheEnd
                        path={urls.users}
                        params={listParams}
                        total={Number(page.total)}
                        limit={PAGE_SIZE}
                        offset={offset}
                        counted={filtered ? "users match" : "users"}
                      />
                    )
                    : filtered
                    ? (
                      <EmptyState title="No users match">
                        <p>
                          Try another search or status, or{" "}
                          <a class="link" href={urls.users}>show all users</a>.
                        </p>
                      </EmptyState>
                    )
                    : (
                      <EmptyState title="No users yet">
                        <p>
                          Create the first user with the form on this page, then issue them an access key to
                          use with Claude Code.
                        </p>
                      </EmptyState>
                    )
                )
                : (
                  <>
                    <Table
                      id="users"
                      caption="Users"
                      head={["User", "Status", "Bedrock budget this month", ["Keys", "right"], "Created"]}
                    >
                      {page.items.map((u, i) => (
                        <tr data-user-id={u.id}>
                          <td class="max-w-64">
                            <a class="link block truncate font-medium" href={urls.user(u.id)}>{u.email}</a>
                            {u.name && <span class="block truncate text-xs text-slate-500">{u.name}</span>}
                          </td>
                          <td>
                            <UserStatusBadge active={u.is_active} />
                            {u.routing_strategy === "bedrock_only" && (
                              <span class="ml-1 text-xs text-slate-500">Bedrock only</span>
                            )}
                          </td>
                          <td>
                            <BudgetBar
                              spent={spend[i]}
                              budget={u.monthly_budget_usd === null ? null : Number(u.monthly_budget_usd)}
                            />
                          </td>
                          <td class="text-right tabular-nums">{fmtInt(u.key_count)}</td>
                          <td class="whitespace-nowrap text-slate-500">
                            {fmtDateTime(u.created_at, deps.config.timezone)}
                          </td>
                        </tr>
                      ))}
                    </Table>
                    <Pager
                      path={urls.users}
                      params={listParams}
                      total={page.total}
                      limit={PAGE_SIZE}
                      offset={offset}
                    />
                  </>
                )}
            </div>
          </div>
          <Card title="Create a user" id="create-user">
            <form method="post" action={urls.users} class="space-y-4" novalidate>
              <CsrfField token={c.get("csrf")} />
              <FormError state={create} />
              <Field
                idPrefix="create"
                name="email"
                label="Email"
                type="email"
                state={create}
                required
                placeholder="dev@example.com"
                autocomplete="off"
              />
              <Field
                idPrefix="create"
                name="name"
                label="Name"
                state={create}
                placeholder="Optional"
                autocomplete="off"
              />
              <Field
                idPrefix="create"
                name="monthly_budget_usd"
                label="Monthly Bedrock budget (USD)"
                state={create}
                inputmode="decimal"
                placeholder="No budget"
                hint="Bedrock spend per calendar month; leave empty for no limit."
              />
              <SelectField
                idPrefix="create"
                name="routing_strategy"
                label="Routing"
                state={keepChoice(create, "routing_strategy", STRATEGIES, "plan_first")}
                options={STRATEGIES}
              />
              <button type="submit" class="btn btn-primary w-full">Create user</button>
            </form>
          </Card>
        </div>
      </Layout>,
      status,
    );
  };

  admin.get("/users", (c) => listPage(c, formState({ routing_strategy: "plan_first" })));

  admin.post("/users", async (c) => {
    const form = await readForm(c);
    try {
      const user = await deps.services.admin.createUser(actionCtx(c, deps), userInput(form, false));
      return c.redirect(withQuery(urls.user(user.id), { ok: "user_created" }), 303);
    } catch (e) {
      const state = stateFromError(e, keep(form), [
        "email",
        "name",
        "monthly_budget_usd",
        "routing_strategy",
      ]);
      return listPage(c, state, (e as { status: number }).status);
    }
  });

  /**
   * A user with its keys, for its page: a deleted one too, since its usage history is kept and the requests list,
   * the audit log and its keys' pages link to it (`getUserWithKeys` knows live users only).
   */
  const userWithKeys = async (id: string) => {
    const row = isUuid(id) ? await findUserIncludingDeleted(deps.db, id) : null;
    if (!row?.deleted_at) return await deps.services.admin.getUserWithKeys(id);
    // Each key through the admin service, so its status reads as on every other page; a user has few keys.
    const keys = await listAccessKeysOfUser(deps.db, id);
    return { ...row, access_keys: await Promise.all(keys.map((k) => deps.services.admin.getKey(k.id))) };
  };

  const userPage = async (
    c: AdminContext,
    id: string,
    forms: { profile?: FormState; issue?: FormState } = {},
    status = 200,
  ) => {
    const user = await userWithKeys(id);
    const deleted = user.deleted_at !== null;
    const tz = deps.config.timezone;
    const now = deps.services.now();
    const month = monthWindow(now, tz);
    const spend = await bedrockSpendSince(deps.db, id, month.start);
    const report = await usageReport(
      deps.db,
      parseReportQuery(
        {
          from: new Date(now.getTime() - 30 * 86400_000).toISOString(),
          to: now.toISOString(),
          granularity: "day",
          user_id: id,
        },
        now,
        tz,
      ),
      tz,
      1,
      rawRowsSince(now, deps.config.usageRetentionDays),
    );
    const profile = forms.profile
      ? keepChoice(forms.profile, "routing_strategy", STRATEGIES, user.routing_strategy)
      : formState({
        name: user.name ?? "",
        monthly_budget_usd: user.monthly_budget_usd === null ? "" : String(Number(user.monthly_budget_usd)),
        routing_strategy: user.routing_strategy,
      });
    const issue = forms.issue ?? formState();
    const csrf = c.get("csrf");
    const t = report.totals;

    return render(
      c,
      <Layout
        title={user.email}
        section="users"
        session={sessionView(c)}
        notice={noticeFrom(c)}
        timeZone={tz}
      >
        <nav class="mb-2 text-sm text-slate-500" aria-label="Breadcrumb">
          <a class="link" href={urls.users}>Users</a> <span aria-hidden="true">/</span>
        </nav>
        <PageHeader
          title={<span data-user-email>{user.email}</span>}
          subtitle={user.name ?? undefined}
          actions={deleted ? <Badge tone="red">deleted</Badge> : <UserStatusBadge active={user.is_active} />}
        />
        {user.deleted_at && (
          <div
            role="status"
            class="mb-6 rounded-lg border border-rose-200 bg-rose-50 px-4 py-3 text-sm text-rose-900"
            data-user-deleted
          >
            Deleted{" "}
            {fmtDateTime(user.deleted_at, tz)}: its access keys were revoked then, and it can no longer be
            changed. Its usage history is kept and shown below.
          </div>
        )}
        <div class="mb-6 grid grid-cols-2 gap-4 lg:grid-cols-4">
          <StatCard
            label="Requests (30 days)"
            value={fmtInt(t.requests)}
            detail={[["fallbacks", fmtInt(t.fallbacks)], ["errors", fmtInt(t.errors)]]}
          />
          <StatCard
            label="Tokens (30 days)"
            value={fmtCompact(allTokens(t))}
            detail={[["input", fmtCompact(Number(t.input_tokens))], [
              "output",
              fmtCompact(Number(t.output_tokens)),
            ]]}
          />
          <StatCard label="Cost (30 days)" value={fmtUsd(Number(t.cost_usd))} />
          <div class="card">
            <p class="text-xs font-medium uppercase tracking-wide text-slate-500">Bedrock this month</p>
            <p class="mt-1 text-2xl font-semibold tabular-nums">{fmtUsd(spend)}</p>
            <div class="mt-2">
              <BudgetBar
                spent={spend}
                budget={user.monthly_budget_usd === null ? null : Number(user.monthly_budget_usd)}
              />
            </div>
          </div>
        </div>

        <div class="grid grid-cols-1 gap-6 lg:grid-cols-3">
          <div class="min-w-0 space-y-6 lg:col-span-2">
            <Card title="Usage, last 30 days" id="user-usage">
              {t.requests === 0
                ? (
                  <EmptyState title="No requests in the last 30 days">
                    <p>
                      Once this user sends requests with one of their keys, their daily token use shows here.
                    </p>
                  </EmptyState>
                )
                : (
                  <Island
                    name="UsageChart"
                    props={tokensChart(fillSeries(report, tz), "day", tz, "Tokens per day")}
                  />
                )}
            </Card>
            <Card
              title="Access keys"
              id="keys"
              actions={<a class="link text-sm" href={withQuery(urls.requests, { user: id })}>Requests →</a>}
            >
              <KeysTable keys={user.access_keys} tz={tz} deps={deps} />
              {!deleted && user.is_active && (
                <form
                  method="post"
                  action={`${urls.user(id)}/keys`}
                  class="mt-5 flex flex-wrap items-end gap-3 border-t border-slate-100 pt-5"
                  novalidate
                >
                  <CsrfField token={csrf} />
                  <FormError state={issue} />
                  <Field
                    idPrefix="issue"
                    name="name"
                    label="New key name"
                    state={issue}
                    placeholder="e.g. laptop"
                    class="min-w-48 flex-1"
                    autocomplete="off"
                  />
                  <button type="submit" class="btn btn-primary">Issue access key</button>
                </form>
              )}
            </Card>
          </div>

          <div class="min-w-0 space-y-6">
            <Card title="Profile">
              <Facts
                items={[
                  ["Email", user.email],
                  ["Created", fmtDateTime(user.created_at, tz)],
                  ["Updated", fmtDateTime(user.updated_at, tz)],
                  ...(user.deleted_at
                    ? [["Deleted", fmtDateTime(user.deleted_at, tz)] as [string, string]]
                    : []),
                  ["User id", <code key="id" class="text-xs">{user.id}</code>],
                ]}
              />
              {!deleted && (
                <form
                  method="post"
                  action={urls.user(id)}
                  class="mt-5 space-y-4 border-t border-slate-100 pt-5"
                  novalidate
                >
                  <CsrfField token={csrf} />
                  <FormError state={profile} />
                  <Field idPrefix="profile" name="name" label="Name" state={profile} autocomplete="off" />
                  <Field
                    idPrefix="profile"
                    name="monthly_budget_usd"
                    label="Monthly Bedrock budget (USD)"
                    state={profile}
                    inputmode="decimal"
                    placeholder="No budget"
                    hint="Leave empty for no limit."
                  />
                  <SelectField
                    idPrefix="profile"
                    name="routing_strategy"
                    label="Routing"
                    state={profile}
                    options={STRATEGIES}
                  />
                  <button type="submit" class="btn btn-primary">Save changes</button>
                </form>
              )}
            </Card>

            {!deleted && (
              <Card title="Status">
                <p class="text-sm text-slate-600">
                  {user.is_active
                    ? "Active: requests with this user's keys are served."
                    : "Inactive: requests with this user's keys are refused. Nothing is deleted."}
                </p>
                <form method="post" action={`${urls.user(id)}/status`} class="mt-4">
                  <CsrfField token={csrf} />
                  <input type="hidden" name="is_active" value={user.is_active ? "false" : "true"} />
                  <button type="submit" class={`btn ${user.is_active ? "btn-secondary" : "btn-primary"}`}>
                    {user.is_active ? "Deactivate user" : "Activate user"}
                  </button>
                </form>
              </Card>
            )}

            {!deleted && (
              <Card title="Delete user" class="border-rose-200">
                <p class="text-sm text-slate-600">
                  Deleting revokes all of this user's keys at once. Usage history is kept.
                </p>
                <form method="post" action={`${urls.user(id)}/delete`} class="mt-4">
                  <CsrfField token={csrf} />
                  <Island
                    name="ConfirmDialog"
                    props={{
                      label: "Delete user",
                      title: `Delete ${user.email}?`,
                      message: deleteMessage(
                        user.access_keys.filter((k) => k.status === "active" || k.status === "rotating")
                          .length,
                      ),
                      checkboxLabel: "I understand this revokes all their keys",
                    }}
                  />
                </form>
              </Card>
            )}
          </div>
        </div>
      </Layout>,
      status,
    );
  };

  admin.get("/users/:id", (c) => userPage(c, c.req.param("id")));

  admin.post("/users/:id", async (c) => {
    const id = c.req.param("id");
    const form = await readForm(c);
    try {
      await deps.services.admin.updateUser(actionCtx(c, deps), id, userInput(form, true));
      return c.redirect(withQuery(urls.user(id), { ok: "user_saved" }), 303);
    } catch (e) {
      const state = stateFromError(e, keep(form), ["name", "monthly_budget_usd", "routing_strategy"]);
      return userPage(c, id, { profile: state }, (e as { status: number }).status);
    }
  });

  admin.post("/users/:id/status", async (c) => {
    const id = c.req.param("id");
    const form = await readForm(c);
    const active = form.is_active === "true";
    await deps.services.admin.updateUser(actionCtx(c, deps), id, { is_active: active });
    return c.redirect(withQuery(urls.user(id), { ok: active ? "user_activated" : "user_deactivated" }), 303);
  });

  admin.post("/users/:id/delete", async (c) => {
    const id = c.req.param("id");
    const form = await readForm(c);
    const user = await deps.services.admin.getUser(id);
    if (form.confirm !== "yes") {
      return render(
        c,
        <ConfirmPage
          c={c}
          section="users"
          title={`Delete ${user.email}?`}
          message={<p>All of this user's access keys stop working immediately. Usage history is kept.</p>}
          action={`${urls.user(id)}/delete`}
          button="Delete user"
          checkbox="I understand this revokes all their keys"
          cancel={urls.user(id)}
        />,
      );
    }
    await deps.services.admin.deleteUser(actionCtx(c, deps), id);
    return c.redirect(withQuery(urls.users, { ok: "user_deleted" }), 303);
  });

  const newKeys = newKeyFlow(deps);
  admin.post("/users/:id/keys", async (c) => {
    const id = c.req.param("id");
    const form = await readForm(c);
    const name = (form.name ?? "").trim();
    try {
      const issued = await deps.services.admin.issueKey(actionCtx(c, deps), id, {
        name: name === "" ? null : name,
      });
      return await newKeys.redirect(c, {
        keyId: issued.id,
        secret: issued.key,
        prefix: issued.key_prefix,
        name: issued.name,
        userId: id,
      });
    } catch (e) {
      const state = stateFromError(e, keep(form), ["name"]);
      return userPage(c, id, { issue: state }, (e as { status: number }).status);
    }
  });
}

function KeysTable({ keys, tz, deps }: { keys: KeyView[]; tz: string; deps: AdminDeps }) {
  if (keys.length === 0) {
    return (
      <EmptyState title="No access keys yet">
        <p>Issue one below. It is shown once, with the line to paste into Claude Code's environment.</p>
      </EmptyState>
    );
  }
  return (
    <Table
      id="user-keys"
      caption="Access keys"
      head={["Key", "Status", "Bedrock", "Circuit", "Last used", "Created"]}
    >
      {keys.map((k) => (
        <tr data-key-id={k.id}>
          <td>
            <a class="link font-mono" href={urls.key(k.id)}>{k.key_prefix}…</a>
            {k.name && <span class="block text-xs text-slate-500">{k.name}</span>}
          </td>
          <td>
            <KeyStatusBadge status={k.status} />
          </td>
          <td class="text-slate-600">{k.has_bedrock_credentials ? "✓ registered" : "–"}</td>
          <td>
            <CircuitBadge state={deps.services.breakers.snapshot(k.id).state} />
          </td>
          <td class="whitespace-nowrap text-slate-500">
            {k.last_used_at ? fmtDateTime(k.last_used_at, tz) : "never"}
          </td>
          <td class="whitespace-nowrap text-slate-500">{fmtDateTime(k.created_at, tz)}</td>
        </tr>
      ))}
    </Table>
  );
}

/** The user row type, re-exported for the key pages. */
export type { UserRow };

/** What deleting a user does to their keys, counting only those that still work. */
function deleteMessage(liveKeys: number): string {
  const keys = liveKeys === 0
    ? "None of their access keys works any more, so no requests are affected."
    : liveKeys === 1
    ? "Their one working access key stops working immediately."
    : `All ${liveKeys} of their working access keys stop working immediately.`;
  return `${keys} This cannot be undone.`;
}
