/**
 * Access keys: a key's page (details, Bedrock credentials register/replace/remove, circuit-breaker state and
 * reset, rotate, revoke, recent requests) and the page that shows a new key once.
 */
import type { Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createSealedNotes } from "../../lib/auth/sealed_note.ts";
import { HttpError } from "../../lib/errors.ts";
import type { ComponentChildren } from "preact";
import { findUserIncludingDeleted, type UserRow } from "../../lib/db/users.ts";
import type { KeyView } from "../../lib/admin/admin.ts";
import type { CredentialDescription } from "../../lib/admin/bedrock_credentials.ts";
import { recentRequests } from "../../lib/db/usage.ts";
import { Layout, PageHeader } from "../../components/Layout.tsx";
import { Card, Facts } from "../../components/Card.tsx";
import { CircuitBadge, KeyStatusBadge, ProviderBadge } from "../../components/Badge.tsx";
import { EmptyState } from "../../components/EmptyState.tsx";
import { CsrfField, Field, FormError, type FormState, formState } from "../../components/Form.tsx";
import { Island } from "../../components/Island.tsx";
import { Table } from "../../components/Table.tsx";
import { fmtDateTime, fmtInt, fmtMs, fmtUsd } from "../../components/format.ts";
import { urls, withQuery } from "../../components/urls.ts";
import {
  actionCtx,
  type AdminContext,
  type AdminDeps,
  type AdminEnv,
  ConfirmPage,
  formNumber,
  keep,
  noticeFrom,
  publicOrigin,
  readForm,
  render,
  sessionView,
  stateFromError,
} from "./shared.tsx";

/** Props of {@link KeyShownPage}. */
export interface KeyShownProps {
  c: AdminContext;
  deps: AdminDeps;
  user: UserRow | null;
  keyId: string;
  secret: string;
  prefix: string;
  name: string | null;
  origin: string;
  /** After a rotation: the previous key and until when it keeps working. */
  previous?: { id: string; expiresAt: Date };
  hasBedrockCredentials?: boolean;
}

/** A key just issued or rotated, to show once. */
export interface NewKey {
  keyId: string;
  secret: string;
  prefix: string;
  name: string | null;
  userId: string;
  previous?: { id: string; expiresAt: Date };
  hasBedrockCredentials?: boolean;
}

const NEW_KEY_COOKIE = "new_key";
/** Long enough for a slow redirect; the page itself is what the admin copies from. */
const NEW_KEY_TTL_SECONDS = 120;

/**
 * Post/redirect/get for the page that shows a new key once. The POST that issues or rotates a key answers with a
 * redirect and the key in a sealed note (a cookie only the page's own path receives, encrypted under
 * `PROXY_JWT_SECRET`, bound to the session); the page opens the note and deletes it. Reloading the page, or going
 * back and forward, never posts again: rendered as the POST's own answer, a reload issued a second active key.
 */
export function newKeyFlow(deps: AdminDeps) {
  const notes = createSealedNotes(deps.config.jwtSecret, "console-new-key");
  const secure = deps.config.env === "production";
  const pagePath = (keyId: string) => `${urls.key(keyId)}/new`;
  return {
    /** The POST's answer: the redirect, with the note. */
    async redirect(c: Context<AdminEnv>, key: NewKey): Promise<Response> {
      const sealed = await notes.seal({
        ...key,
        previous: key.previous && { id: key.previous.id, expiresAt: key.previous.expiresAt.toISOString() },
        sid: c.get("session").sid,
      }, NEW_KEY_TTL_SECONDS);
      setCookie(c, NEW_KEY_COOKIE, sealed, {
        path: pagePath(key.keyId),
        httpOnly: true,
        sameSite: "Strict",
        secure,
        maxAge: NEW_KEY_TTL_SECONDS,
      });
      return c.redirect(pagePath(key.keyId), 303);
    },
    /** The key the note holds for this page, deleting the note; null when there is none (any more). */
    async take(c: Context<AdminEnv>, keyId: string): Promise<NewKey | null> {
      const note = await notes.open(getCookie(c, NEW_KEY_COOKIE));
      deleteCookie(c, NEW_KEY_COOKIE, { path: pagePath(keyId), secure });
      if (!note || note.sid !== c.get("session").sid || note.keyId !== keyId) return null;
      const previous = note.previous as { id: string; expiresAt: string } | undefined;
      return {
        keyId,
        secret: String(note.secret),
        prefix: String(note.prefix),
        name: typeof note.name === "string" ? note.name : null,
        userId: String(note.userId),
        previous: previous && { id: previous.id, expiresAt: new Date(previous.expiresAt) },
        hasBedrockCredentials: note.hasBedrockCredentials === true,
      };
    },
  };
}

/**
 * The one page that shows a key's secret: rendered once, from the sealed note of the POST that made the key
 * (see {@link newKeyFlow}), and never cached.
 */
export function KeyShownPage(p: KeyShownProps) {
  const tz = p.deps.config.timezone;
  const baseUrl = `ANTHROPIC_BASE_URL=${p.origin}/ak/${p.secret}`;
  return (
    <Layout title="Copy the new access key" section="users" session={sessionView(p.c)} timeZone={tz}>
      <div class="mx-auto max-w-3xl">
        <PageHeader
          title="Copy the new access key now"
          subtitle={p.user ? `For ${p.user.email}${p.name ? ` · ${p.name}` : ""}` : undefined}
        />
        <div
          role="alert"
          class="mb-6 rounded-lg border border-amber-200 bg-amber-50 px-4 py-3 text-sm text-amber-900"
        >
          This is the only time the key is shown. The proxy keeps only a hash of it; if it is lost, rotate the
          key or issue a new one.
        </div>
        <Card>
          <div class="space-y-6">
            <div>
              <p class="label" id="new-key-label">Access key</p>
              <div class="flex flex-wrap items-start gap-2 sm:flex-nowrap">
                <code
                  class="block min-w-0 flex-1 select-all break-all rounded-lg border border-slate-300 bg-slate-50 px-3 py-2 text-sm text-slate-900"
                  aria-labelledby="new-key-label"
                  data-new-key
                >
                  {p.secret}
                </code>
                <Island name="CopyButton" props={{ text: p.secret, label: "Copy key" }} />
              </div>
            </div>
            <div>
              <p class="label" id="base-url-label">Point Claude Code at the proxy</p>
              <div class="flex flex-wrap items-start gap-2 sm:flex-nowrap">
                <code
                  class="block min-w-0 flex-1 select-all break-all rounded-lg border border-slate-300 bg-slate-50 px-3 py-2 text-xs text-slate-900"
                  aria-labelledby="base-url-label"
                  data-base-url
                >
                  {baseUrl}
                </code>
                <Island name="CopyButton" props={{ text: baseUrl, label: "Copy line" }} />
              </div>
              <p class="mt-2 text-xs text-slate-500">
                Put it in the shell profile (<code>export ANTHROPIC_BASE_URL=…</code>) or in the{" "}
                <code>env</code> of Claude Code's{" "}
                <code>settings.json</code>. Developers keep their own Anthropic credentials.
              </p>
            </div>
            {p.previous && (
              <p class="text-sm text-slate-600" data-previous-key>
                The previous key keeps working until{" "}
                <strong>{fmtDateTime(p.previous.expiresAt, tz, true)}</strong>, then stops.
                {p.hasBedrockCredentials && " Its Bedrock credentials were carried over."}
              </p>
            )}
          </div>
        </Card>
        <div class="mt-6 flex flex-wrap gap-3">
          <a class="btn btn-primary" href={urls.key(p.keyId)}>
            {p.hasBedrockCredentials ? "Open the key's page" : "Next: register Bedrock credentials →"}
          </a>
          {p.user && <a class="btn btn-secondary" href={urls.user(p.user.id)}>Back to {p.user.email}</a>}
        </div>
      </div>
    </Layout>
  );
}

const SECRET_FIELDS = ["aws_secret_access_key", "aws_session_token", "bedrock_api_key"];
const CREDENTIAL_FIELDS = [
  "aws_access_key_id",
  "aws_secret_access_key",
  "aws_session_token",
  "bedrock_api_key",
  "region",
];

/** Form values → the admin service's Bedrock credentials input for the chosen kind. */
function credentialsInput(form: Record<string, string>): Record<string, unknown> {
  const region = (form.region ?? "").trim();
  if (form.kind === "api_key") {
    return { bedrock_api_key: form.bedrock_api_key ?? "", region: region || null };
  }
  const token = (form.aws_session_token ?? "").trim();
  return {
    aws_access_key_id: form.aws_access_key_id ?? "",
    aws_secret_access_key: form.aws_secret_access_key ?? "",
    aws_session_token: token || null,
    region: region || null,
  };
}

/** Registers the key pages. */
export function keysRoutes(admin: Hono<AdminEnv>, deps: AdminDeps): void {
  const keyPage = async (
    c: AdminContext,
    id: string,
    forms: { credentials?: FormState; rotate?: FormState } = {},
    status = 200,
  ) => {
    const key = await deps.services.admin.getKey(id);
    // Deleted users included: their page stays, read-only, with their history.
    const user = await findUserIncludingDeleted(deps.db, key.user_id);
    const described = await deps.services.credentials.describe(id);
    const breaker = deps.services.breakers.snapshot(id);
    const recent = await recentRequests(deps.db, { accessKeyId: id, limit: 10, offset: 0 });
    const tz = deps.config.timezone;
    const csrf = c.get("csrf");
    const live = key.status === "active" || key.status === "rotating";
    const credentials = forms.credentials ??
      formState({ kind: described?.kind ?? "iam", region: described?.region ?? "" });
    const rotate = forms.rotate ?? formState({ grace_seconds: "300" });

    return render(
      c,
      <Layout
        title={`Key ${key.key_prefix}`}
        section="users"
        session={sessionView(c)}
        notice={noticeFrom(c)}
        timeZone={tz}
      >
        <nav class="mb-2 text-sm text-slate-500" aria-label="Breadcrumb">
          <a class="link" href={urls.users}>Users</a> <span aria-hidden="true">/</span>{" "}
          {user ? <UserLink user={user} /> : <span>deleted user</span>} <span aria-hidden="true">/</span>
        </nav>
        <PageHeader
          title={<span class="font-mono">{key.key_prefix}…</span>}
          subtitle={key.name ?? "Access key"}
          actions={<KeyStatusBadge status={key.status} />}
        />
        <div class="grid grid-cols-1 gap-6 lg:grid-cols-3">
          <div class="min-w-0 space-y-6 lg:col-span-2">
            <Card title="Bedrock credentials" id="bedrock">
              <CredentialsSummary described={described} tz={tz} defaultRegion={deps.config.bedrockRegion} />
              {
                // A form posted from a page loaded before the key stopped being settable: its error has no form
                // to sit in, so it is said here.
                key.status !== "active" && <FormError state={credentials} />
              }
              {key.status === "rotating" && key.rotated_to && (
                <p class="mt-3 text-sm text-slate-600">
                  This key is being replaced: set credentials on{" "}
                  <a class="link" href={urls.key(key.rotated_to)}>its replacement</a>, which holds these
                  already and keeps working after the grace period.
                </p>
              )}
              {key.status === "active" && (
                <CredentialsForm
                  action={`${urls.key(id)}/bedrock`}
                  csrf={csrf}
                  state={credentials}
                  replacing={!!described}
                  defaultRegion={deps.config.bedrockRegion}
                />
              )}
              {described && (
                <form
                  method="post"
                  action={`${urls.key(id)}/bedrock/delete`}
                  class="mt-5 border-t border-slate-100 pt-5"
                >
                  <CsrfField token={csrf} />
                  <Island
                    name="ConfirmDialog"
                    props={{
                      label: "Remove credentials",
                      title: "Remove the Bedrock credentials?",
                      message:
                        "Requests with this key can no longer fall back to Bedrock until new credentials are registered.",
                      checkboxLabel: "I understand fallback stops for this key",
                    }}
                  />
                </form>
              )}
            </Card>

            <Card
              title="Recent requests"
              actions={
                <a class="link text-sm" href={withQuery(urls.requests, { key: id })}>All requests →</a>
              }
            >
              {recent.items.length === 0
                ? (
                  <EmptyState title="No requests with this key yet">
                    <p>Requests appear here within seconds of being proxied.</p>
                  </EmptyState>
                )
                : (
                  <Table
                    head={["Time", "Model", "Provider", "Status", ["Cost", "right"], ["Latency", "right"]]}
                  >
                    {recent.items.map((r) => (
                      <tr>
                        <td class="whitespace-nowrap">{fmtDateTime(r.created_at, tz, true)}</td>
                        <td class="max-w-48 truncate">{r.model ?? "–"}</td>
                        <td>
                          <ProviderBadge provider={r.provider} />
                        </td>
                        <td class="tabular-nums">{r.status_code}</td>
                        <td class="text-right tabular-nums">
                          {fmtUsd(r.cost_usd === null ? null : Number(r.cost_usd))}
                        </td>
                        <td class="text-right tabular-nums">{fmtMs(r.latency_ms)}</td>
                      </tr>
                    ))}
                  </Table>
                )}
            </Card>
          </div>

          <div class="min-w-0 space-y-6">
            <Card title="Details">
              <KeyFacts k={key} user={user} tz={tz} />
            </Card>

            <Card title="Circuit breaker" id="circuit">
              <Facts
                items={[
                  ["State", <CircuitBadge key="state" state={breaker.state} />],
                  ["Recent failures", fmtInt(breaker.failures)],
                  ...(breaker.openedAt !== null
                    ? [["Opened", fmtDateTime(new Date(breaker.openedAt), tz, true)] as [string, string]]
                    : []),
                  ...(breaker.reopensAt !== null
                    ? [
                      ["Probes again", fmtDateTime(new Date(breaker.reopensAt), tz, true)] as [
                        string,
                        string,
                      ],
                    ]
                    : []),
                ]}
              />
              <p class="mt-3 text-xs text-slate-500">
                {breaker.state === "closed"
                  ? "Requests go to the Anthropic API first."
                  : "While open, requests go straight to Bedrock. Reset to try the Anthropic API again now."}
                {" "}
                Openings and resets are shared with every replica.
              </p>
              <form method="post" action={`${urls.key(id)}/circuit/reset`} class="mt-4">
                <CsrfField token={csrf} />
                <button
                  type="submit"
                  class="btn btn-secondary"
                  disabled={breaker.state === "closed" && breaker.failures === 0}
                >
                  Reset circuit
                </button>
              </form>
            </Card>

            {!live && rotate.message && (
              // A rotation posted from a page loaded before the key was revoked or expired.
              <Card title="Rotate">
                <FormError state={rotate} />
              </Card>
            )}

            {live && key.rotated_to && (
              // Rotating twice would orphan the first replacement; the API refuses it, so offer no form.
              <Card title="Rotate">
                <FormError state={rotate} />
                <p class="text-sm text-slate-600">
                  This key is already being replaced by{" "}
                  <a class="link" href={urls.key(key.rotated_to)}>a newer key</a>; rotate that key instead, or
                  revoke this one to stop it before its grace period ends.
                </p>
              </Card>
            )}

            {live && !key.rotated_to && (
              <Card title="Rotate">
                <p class="text-sm text-slate-600">
                  Issues a new key with the same name and credentials; this one keeps working for the grace
                  period.
                </p>
                <form method="post" action={`${urls.key(id)}/rotate`} class="mt-4 space-y-4" novalidate>
                  <CsrfField token={csrf} />
                  <FormError state={rotate} />
                  <Field
                    idPrefix="rotate"
                    name="grace_seconds"
                    label="Grace period (seconds)"
                    state={rotate}
                    inputmode="numeric"
                    hint="0 stops the old key at once; at most 30 days (2592000)."
                  />
                  <button type="submit" class="btn btn-primary">Rotate key</button>
                </form>
              </Card>
            )}

            {key.status !== "revoked" && (
              <Card title="Revoke" class="border-rose-200">
                <p class="text-sm text-slate-600">
                  Requests with this key are refused from the moment it is revoked.
                </p>
                <form method="post" action={`${urls.key(id)}/revoke`} class="mt-4">
                  <CsrfField token={csrf} />
                  <Island
                    name="ConfirmDialog"
                    props={{
                      label: "Revoke key",
                      title: `Revoke ${key.key_prefix}…?`,
                      message:
                        "Claude Code sessions using this key start failing immediately. This cannot be undone.",
                      checkboxLabel: "I understand this key stops working",
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

  admin.get("/keys/:id", (c) => keyPage(c, c.req.param("id")));

  const newKeys = newKeyFlow(deps);
  admin.get("/keys/:id/new", async (c) => {
    const id = c.req.param("id");
    const key = await newKeys.take(c, id);
    if (!key) return c.redirect(withQuery(urls.key(id), { ok: "key_shown_once" }), 303);
    const user = await findUserIncludingDeleted(deps.db, key.userId);
    return render(
      c,
      <KeyShownPage
        c={c}
        deps={deps}
        user={user}
        keyId={key.keyId}
        secret={key.secret}
        prefix={key.prefix}
        name={key.name}
        origin={publicOrigin(c, deps.config.trustForwardedFor)}
        previous={key.previous}
        hasBedrockCredentials={key.hasBedrockCredentials}
      />,
      200,
      { "cache-control": "no-store", pragma: "no-cache" },
    );
  });

  admin.post("/keys/:id/rotate", async (c) => {
    const id = c.req.param("id");
    const form = await readForm(c);
    try {
      const grace = formNumber(form.grace_seconds);
      const rotated = await deps.services.admin.rotateKey(
        actionCtx(c, deps),
        id,
        grace === null ? {} : { grace_seconds: grace },
      );
      return await newKeys.redirect(c, {
        keyId: rotated.id,
        secret: rotated.key,
        prefix: rotated.key_prefix,
        name: rotated.name,
        userId: (await deps.services.admin.getKey(rotated.id)).user_id,
        previous: { id, expiresAt: rotated.previous_key.expires_at },
        hasBedrockCredentials: rotated.has_bedrock_credentials,
      });
    } catch (e) {
      const state = stateFromError(e, keep(form), ["grace_seconds"]);
      const current = e instanceof HttpError && e.status === 409
        ? await deps.services.admin.getKey(id)
        : null;
      // A revoked or expired key keeps the API's own message, which says so.
      const rotatedTo = current?.status === "rotating" ? current.rotated_to : null;
      if (rotatedTo) {
        // The API's message names ids and UTC times; the page beside it says the same with a link, in local time.
        const replacement = await deps.services.admin.getKey(rotatedTo);
        const moments = deps.services.now().getTime() - new Date(replacement.created_at).getTime() < 60_000;
        state.message = moments
          // A second click before the first answer came: the browser shows this answer, and the new key's
          // secret went to the first, unseen. Only the replacement can give one now.
          ? "Not rotated again: this key was rotated a moment ago, perhaps by a second click, and the new key " +
            "was shown to that first request only. If you did not see it, rotate the new key to get one to copy."
          : "Not rotated: this key was rotated already, in another tab or by another admin.";
      }
      return keyPage(c, id, { rotate: state }, (e as { status: number }).status);
    }
  });

  admin.post("/keys/:id/revoke", async (c) => {
    const id = c.req.param("id");
    const form = await readForm(c);
    const key = await deps.services.admin.getKey(id);
    if (form.confirm !== "yes") {
      return render(
        c,
        <ConfirmPage
          c={c}
          section="users"
          title={`Revoke ${key.key_prefix}…?`}
          message={
            <p>Claude Code sessions using this key start failing immediately. This cannot be undone.</p>
          }
          action={`${urls.key(id)}/revoke`}
          button="Revoke key"
          checkbox="I understand this key stops working"
          cancel={urls.key(id)}
        />,
      );
    }
    await deps.services.admin.revokeKey(actionCtx(c, deps), id);
    return c.redirect(withQuery(urls.key(id), { ok: "key_revoked" }), 303);
  });

  admin.post("/keys/:id/bedrock", async (c) => {
    const id = c.req.param("id");
    const form = await readForm(c);
    try {
      await deps.services.admin.putBedrockCredentials(actionCtx(c, deps), id, credentialsInput(form));
      return c.redirect(withQuery(urls.key(id), { ok: "credentials_saved" }) + "#bedrock", 303);
    } catch (e) {
      // Secrets are never echoed back into the page; the admin types them again.
      const state = stateFromError(e, keep(form, SECRET_FIELDS), CREDENTIAL_FIELDS);
      return keyPage(c, id, { credentials: state }, (e as { status: number }).status);
    }
  });

  admin.post("/keys/:id/bedrock/delete", async (c) => {
    const id = c.req.param("id");
    const form = await readForm(c);
    const key = await deps.services.admin.getKey(id);
    if (form.confirm !== "yes") {
      return render(
        c,
        <ConfirmPage
          c={c}
          section="users"
          title={`Remove the Bedrock credentials of ${key.key_prefix}…?`}
          message={
            <p>
              Requests with this key can no longer fall back to Bedrock until new credentials are registered.
            </p>
          }
          action={`${urls.key(id)}/bedrock/delete`}
          button="Remove credentials"
          checkbox="I understand fallback stops for this key"
          cancel={urls.key(id)}
        />,
      );
    }
    await deps.services.admin.deleteBedrockCredentials(actionCtx(c, deps), id);
    return c.redirect(withQuery(urls.key(id), { ok: "credentials_removed" }) + "#bedrock", 303);
  });

  admin.post("/keys/:id/circuit/reset", async (c) => {
    const id = c.req.param("id");
    await deps.services.admin.getKey(id); // 404 for an unknown key
    deps.services.breakers.reset(id);
    await deps.services.admin.recordAudit(actionCtx(c, deps), "circuit.reset", "access_key", id);
    return c.redirect(withQuery(urls.key(id), { ok: "circuit_reset" }) + "#circuit", 303);
  });
}

/** A link to a key's user, saying so when the user is deleted. */
function UserLink({ user }: { user: UserRow }) {
  return (
    <>
      <a class="link" href={urls.user(user.id)}>{user.email}</a>
      {user.deleted_at && <span class="ml-1 text-slate-500">(deleted)</span>}
    </>
  );
}

function KeyFacts({ k, user, tz }: { k: KeyView; user: UserRow | null; tz: string }) {
  return (
    <Facts
      items={[
        ["User", user ? <UserLink key="user" user={user} /> : "deleted"],
        ["Name", k.name ?? "–"],
        ["Prefix", <code key="prefix" class="font-mono">{k.key_prefix}</code>],
        ["Created", fmtDateTime(k.created_at, tz)],
        ["Last used", k.last_used_at ? fmtDateTime(k.last_used_at, tz) : "never"],
        ...(k.expires_at ? [["Expires", fmtDateTime(k.expires_at, tz, true)] as [string, string]] : []),
        ...(k.revoked_at ? [["Revoked", fmtDateTime(k.revoked_at, tz)] as [string, string]] : []),
        ...(k.rotated_to
          ? [
            ["Replaced by", <a key="next" class="link" href={urls.key(k.rotated_to)}>newer key</a>] as [
              string,
              ComponentChildren,
            ],
          ]
          : []),
        ["Key id", <code key="id" class="text-xs">{k.id}</code>],
      ]}
    />
  );
}

function CredentialsSummary(
  { described, tz, defaultRegion }: {
    described: CredentialDescription | null;
    tz: string;
    defaultRegion: string;
  },
) {
  if (!described) {
    return (
      <div
        class="rounded-lg border border-dashed border-slate-300 px-4 py-3 text-sm text-slate-600"
        data-credentials="none"
      >
        <p class="font-medium text-slate-800">No Bedrock credentials yet</p>
        <p class="mt-1">
          Without them, this key cannot fall back to Bedrock when the Anthropic API is rate-limited or down.
          Register IAM keys or a Bedrock API key below.
        </p>
      </div>
    );
  }
  return (
    <div data-credentials={described.kind}>
      <Facts
        items={[
          ["Kind", described.kind === "iam" ? "IAM access key" : "Bedrock API key"],
          ["Key", <code key="tail" class="font-mono">{described.key_tail}</code>],
          ["Region", described.region ?? `${defaultRegion} (default)`],
          ["Encryption", described.encryption],
          ["Updated", fmtDateTime(described.updated_at, tz)],
        ]}
      />
    </div>
  );
}

function CredentialsForm(
  p: { action: string; csrf: string; state: FormState; replacing: boolean; defaultRegion: string },
) {
  const kind = p.state.values.kind === "api_key" ? "api_key" : "iam";
  return (
    <form
      method="post"
      action={p.action}
      class="mt-5 space-y-4 border-t border-slate-100 pt-5"
      novalidate
      autocomplete="off"
    >
      <CsrfField token={p.csrf} />
      <h3 class="text-sm font-semibold text-slate-900">
        {p.replacing ? "Replace credentials" : "Register credentials"}
      </h3>
      <FormError state={p.state} />
      <fieldset class="flex flex-wrap gap-4 text-sm">
        <legend class="label">Kind</legend>
        <label class="flex items-center gap-2">
          <input
            type="radio"
            name="kind"
            value="iam"
            checked={kind === "iam"}
            class="size-4 accent-indigo-600"
          />
          IAM access key
        </label>
        <label class="flex items-center gap-2">
          <input
            type="radio"
            name="kind"
            value="api_key"
            checked={kind === "api_key"}
            class="size-4 accent-indigo-600"
          />
          Bedrock API key
        </label>
      </fieldset>
      <div class="grid grid-cols-1 gap-4 sm:grid-cols-2">
        <Field
          idPrefix="credentials"
          name="aws_access_key_id"
          label="AWS access key id"
          state={p.state}
          placeholder="AKIA…"
          autocomplete="off"
        />
        <Field
          idPrefix="credentials"
          name="aws_secret_access_key"
          label="AWS secret access key"
          type="password"
          state={p.state}
          secret
        />
        <Field
          idPrefix="credentials"
          name="aws_session_token"
          label="Session token"
          type="password"
          state={p.state}
          secret
          hint="Only for temporary (ASIA…) credentials."
        />
        <Field
          idPrefix="credentials"
          name="bedrock_api_key"
          label="Bedrock API key"
          type="password"
          state={p.state}
          secret
          hint="Used when the kind is Bedrock API key."
        />
        <Field
          idPrefix="credentials"
          name="region"
          label="Region"
          state={p.state}
          placeholder={p.defaultRegion}
          hint={`Empty: ${p.defaultRegion} (PROXY_BEDROCK_REGION).`}
        />
      </div>
      <p class="text-xs text-slate-500">
        Secrets are encrypted before they are stored and are never shown again.
      </p>
      <button type="submit" class="btn btn-primary">
        {p.replacing ? "Replace credentials" : "Save credentials"}
      </button>
    </form>
  );
}
