/**
 * `GET /admin/audit`: the audit log of admin actions, newest first, paged.
 */
import type { Hono } from "hono";
import { Layout, PageHeader } from "../../components/Layout.tsx";
import { Badge, type Tone } from "../../components/Badge.tsx";
import { EmptyState } from "../../components/EmptyState.tsx";
import { Pager, PastTheEnd, Table } from "../../components/Table.tsx";
import { fmtDateTime } from "../../components/format.ts";
import { urls } from "../../components/urls.ts";
import { type AdminDeps, type AdminEnv, render, sessionView } from "./shared.tsx";

const PAGE_SIZE = 50;

function tone(action: string): Tone {
  if (/delete|revoke|reset/.test(action)) return "red";
  if (/create|put/.test(action)) return "green";
  if (/rotate/.test(action)) return "amber";
  return "gray";
}

/** Registers the audit page. */
export function auditRoutes(admin: Hono<AdminEnv>, deps: AdminDeps): void {
  admin.get("/audit", async (c) => {
    const tz = deps.config.timezone;
    const offset = Math.max(0, Math.min(1e9, Math.floor(Number(c.req.query("offset") ?? 0)) || 0));
    const page = await deps.services.admin.listAudit({ limit: PAGE_SIZE, offset });
    return render(
      c,
      <Layout title="Audit log" section="audit" session={sessionView(c)} timeZone={tz}>
        <PageHeader title="Audit log" subtitle="Every change made in the console or through the admin API." />
        <div class="card">
          {page.items.length === 0
            ? (
              Number(page.total) > 0
                ? (
                  <PastTheEnd
                    path={urls.audit}
                    params={{}}
                    total={Number(page.total)}
                    limit={PAGE_SIZE}
                    offset={offset}
                    counted="events in the log"
                  />
                )
                : (
                  <EmptyState title="Nothing has been changed yet">
                    <p>
                      Creating a user, issuing or revoking a key, and registering credentials are recorded
                      here.
                    </p>
                  </EmptyState>
                )
            )
            : (
              <>
                <Table
                  id="audit"
                  caption="Audit events"
                  head={["Time", "Actor", "Action", "Target", "Details", "Address"]}
                >
                  {page.items.map((e) => (
                    <tr>
                      <td class="whitespace-nowrap tabular-nums">{fmtDateTime(e.created_at, tz, true)}</td>
                      <td>{e.actor}</td>
                      <td>
                        <Badge tone={tone(e.action)}>{e.action}</Badge>
                      </td>
                      <td class="whitespace-nowrap">
                        {e.target_id && e.target_type === "user"
                          ? <a class="link" href={urls.user(e.target_id)}>user {e.target_id.slice(0, 8)}…</a>
                          : e.target_id && e.target_type === "access_key"
                          ? <a class="link" href={urls.key(e.target_id)}>key {e.target_id.slice(0, 8)}…</a>
                          : e.target_type ?? "–"}
                      </td>
                      <td class="max-w-md">
                        {Object.keys(e.details ?? {}).length > 0
                          ? (
                            <code
                              class="block truncate text-xs text-slate-600"
                              title={JSON.stringify(e.details)}
                            >
                              {JSON.stringify(e.details)}
                            </code>
                          )
                          : <span class="text-slate-400">–</span>}
                      </td>
                      <td class="whitespace-nowrap text-slate-500">{e.client_address ?? "–"}</td>
                    </tr>
                  ))}
                </Table>
                <Pager path={urls.audit} params={{}} total={page.total} limit={PAGE_SIZE} offset={offset} />
              </>
            )}
        </div>
      </Layout>,
    );
  });
}
