/**
 * What the console's route modules share: dependencies and context types, rendering, form reading, turning an
 * `HttpError` into errors beside fields, flash notices, and the error and confirmation pages.
 */
import type { Context } from "hono";
import type { ComponentChildren, VNode } from "preact";
import { renderToString } from "preact-render-to-string";
import type { Config } from "../../lib/config.ts";
import type { Db } from "../../lib/db/db.ts";
import type { Logger } from "../../lib/log.ts";
import type { Services } from "../../lib/services.ts";
import type { Session } from "../../lib/auth/session.ts";
import type { ActionContext } from "../../lib/admin/admin.ts";
import { HttpError } from "../../lib/errors.ts";
import { InvalidInputError } from "../../lib/admin/schemas.ts";
import { ADMIN_BODY_TIMEOUT_MS, clientAddress, readLimited, readWithin } from "../../lib/http.ts";
import { Layout, type Notice, PageHeader, type Section } from "../../components/Layout.tsx";
import { Card } from "../../components/Card.tsx";
import { CSRF_FIELD, CsrfField, type FormState } from "../../components/Form.tsx";
import { urls } from "../../components/urls.ts";

/** What the console needs; the same objects `createApp` gets. */
export interface AdminDeps {
  config: Config;
  db: Db;
  services: Services;
  log: Logger;
}

/** Per-request variables of console requests. */
export type AdminEnv = {
  Variables: {
    requestId: string;
    log: Logger;
    session: Session;
    /** The session's CSRF token, for forms. */
    csrf: string;
    /** The parsed form of a POST (read once, bounded). */
    form: Record<string, string>;
  };
};

/** A console request's context. */
export type AdminContext = Context<AdminEnv>;

/** Largest form body accepted (the forms are small; this bounds what an unauthenticated POST can cost). */
export const MAX_FORM_BYTES = 64 * 1024;

/** Renders a page as a complete HTML document. */
export function render(
  c: Context,
  page: VNode,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return c.html("<!DOCTYPE html>" + renderToString(page), status as 200, headers);
}

/** The signed-in admin for the layout (null on public pages). */
export function sessionView(c: AdminContext): { username: string; csrf: string } | null {
  const session = c.get("session");
  return session ? { username: session.username, csrf: c.get("csrf") } : null;
}

/** Who is acting, for the audit log. */
export function actionCtx(c: AdminContext, deps: AdminDeps): ActionContext {
  return { actor: c.get("session").username, clientAddress: clientAddress(c, deps.config.trustForwardedFor) };
}

/**
 * The submitted form as strings (files and repeated fields ignored), read at most once and at most
 * {@link MAX_FORM_BYTES}; a body that is not a form reads as empty.
 */
export async function readForm(c: AdminContext): Promise<Record<string, string>> {
  const cached = c.get("form");
  if (cached) return cached;
  const declared = Number(c.req.header("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > MAX_FORM_BYTES) {
    throw new HttpError(413, "request_too_large", "the form is too large");
  }
  // Only the media type is compared without case: a multipart boundary must be kept exactly as sent.
  const contentType = c.req.header("content-type") ?? "";
  const type = contentType.toLowerCase();
  const bytes = await readWithin(
    ADMIN_BODY_TIMEOUT_MS,
    "",
    (signal) => readLimited(c.req.raw, MAX_FORM_BYTES, signal),
  ).catch((e) => {
    if (e instanceof HttpError && e.status === 413) {
      throw new HttpError(413, "request_too_large", "the form is too large");
    }
    throw e;
  });
  const form: Record<string, string> = Object.create(null);
  if (type.startsWith("application/x-www-form-urlencoded")) {
    for (const [k, v] of new URLSearchParams(new TextDecoder().decode(bytes))) if (!(k in form)) form[k] = v;
  } else if (type.startsWith("multipart/form-data")) {
    try {
      const data = await new Response(bytes as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": contentType },
      })
        .formData();
      for (const [k, v] of data) if (typeof v === "string" && !(k in form)) form[k] = v;
    } catch {
      // unreadable multipart: treated as empty, which fails the CSRF check
    }
  }
  c.set("form", form);
  return form;
}

/** A number typed into a form: the number, `null` when empty, or the text itself so validation names it. */
export function formNumber(text: string | undefined): number | string | null {
  const t = (text ?? "").trim();
  if (t === "") return null;
  return /^-?(\d+(\.\d*)?|\.\d+)$/.test(t) ? Number(t) : t;
}

/**
 * A form state from a failed action: each invalid field's error beside its field (without the `field: ` prefix the
 * API uses; every field of an {@link InvalidInputError}, not only the first), anything else as the form's message.
 * Errors other than `HttpError`s of status < 500 are rethrown.
 */
export function stateFromError(e: unknown, values: Record<string, string>, fields: string[]): FormState {
  if (!(e instanceof HttpError) || e.status >= 500) throw e;
  const state: FormState = { values: { ...values }, errors: {} };
  const byField: Record<string, string> = e instanceof InvalidInputError ? { ...e.fields } : {};
  if (e.field && !Object.hasOwn(byField, e.field)) {
    byField[e.field] = e.message.startsWith(`${e.field}: `) ? e.message.slice(e.field.length + 2) : e.message;
  }
  for (const [path, message] of Object.entries(byField)) {
    const field = path.split(".")[0];
    if (fields.includes(field) && !Object.hasOwn(state.errors, field)) {
      state.errors[field] = capitalise(message);
    }
  }
  // The first field at fault may not be one of this form's (an unknown field): say it above the form.
  const first = e.field?.split(".")[0];
  if (!first || !fields.includes(first)) state.message = capitalise(e.message);
  return state;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Values without the CSRF field and secrets, to put back into a form. */
export function keep(form: Record<string, string>, drop: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(form)) if (k !== CSRF_FIELD && !drop.includes(k)) out[k] = v;
  return out;
}

const NOTICES: Record<string, Notice> = {
  user_created: { kind: "ok", text: "User created. Issue an access key below to let them use the proxy." },
  user_saved: { kind: "ok", text: "Changes saved." },
  user_activated: { kind: "ok", text: "User activated: their keys work again." },
  user_deactivated: {
    kind: "ok",
    text: "User deactivated: requests with their keys are refused until reactivated.",
  },
  user_deleted: { kind: "ok", text: "User deleted and all their keys revoked." },
  key_revoked: { kind: "ok", text: "Key revoked: requests with it are refused from now on." },
  key_shown_once: {
    kind: "info",
    text: "A new key is shown only once, on the page after it is made. If it was not copied, rotate the key.",
  },
  credentials_saved: { kind: "ok", text: "Bedrock credentials saved (encrypted at rest)." },
  credentials_removed: { kind: "ok", text: "Bedrock credentials removed." },
  circuit_reset: { kind: "ok", text: "Circuit reset: the next request tries the Anthropic API again." },
  signed_out: { kind: "info", text: "You have signed out." },
  signed_out_unstored: {
    kind: "info",
    text:
      "You have signed out of this browser. The database is unreachable, so the sign-out is not stored yet: " +
      "until this replica stores it when the database is back, other replicas of the proxy would accept a copy " +
      "of the session cookie.",
  },
  expired: { kind: "info", text: "Your session has expired. Sign in again to continue." },
};

/** The flash notice named by `?ok=` (a fixed set of messages; unknown codes show nothing). */
export function noticeFrom(c: Context): Notice | null {
  const code = c.req.query("ok");
  return code && Object.hasOwn(NOTICES, code) ? NOTICES[code] : null;
}

/**
 * Every token a total counts: input, output, cache reads and cache writes. One definition for every "Tokens" the
 * console shows, cards and tables alike (the tables once counted input and output only, beside cards that
 * counted all four).
 */
export function allTokens(t: {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
}): number {
  return Number(t.input_tokens) + Number(t.output_tokens) + Number(t.cache_read_tokens) +
    Number(t.cache_creation_tokens);
}

/** The origin clients reach the proxy at, for `ANTHROPIC_BASE_URL` (honours `X-Forwarded-Proto` when trusted). */
export function publicOrigin(c: Context, trustForwardedFor: boolean): string {
  const url = new URL(c.req.url);
  if (trustForwardedFor) {
    const proto = c.req.header("x-forwarded-proto")?.split(",")[0].trim();
    if (proto === "https" || proto === "http") url.protocol = `${proto}:`;
  }
  return url.origin;
}

/** A page that explains an error, with a way back. */
export function ErrorPage(
  props: {
    status: number;
    title: string;
    message: ComponentChildren;
    session: { username: string; csrf: string } | null;
    back?: [string, string];
  },
) {
  return (
    <Layout title={props.title} session={props.session} narrow={!props.session}>
      <div class="mx-auto max-w-xl py-10 text-center" data-error-status={props.status}>
        <p class="text-sm font-semibold text-indigo-600">{props.status}</p>
        <h1 class="mt-2 text-2xl font-semibold tracking-tight text-slate-900">{props.title}</h1>
        <div class="mt-3 text-sm text-slate-600">{props.message}</div>
        <div class="mt-6">
          <a class="btn btn-primary" href={props.back?.[0] ?? (props.session ? urls.dashboard : urls.login)}>
            {props.back?.[1] ?? (props.session ? "Back to the dashboard" : "Go to sign-in")}
          </a>
        </div>
      </div>
    </Layout>
  );
}

/** Renders an error page response. */
export function errorPage(
  c: AdminContext,
  status: number,
  title: string,
  message: ComponentChildren,
  back?: [string, string],
): Response {
  return render(
    c,
    <ErrorPage status={status} title={title} message={message} session={sessionView(c)} back={back} />,
    status,
  );
}

/**
 * The no-JavaScript confirmation step of a destructive action: what will happen, a required checkbox and the
 * button, posting `confirm=yes` back to the same action.
 */
export function ConfirmPage(
  props: {
    c: AdminContext;
    section: Section;
    title: string;
    message: ComponentChildren;
    action: string;
    button: string;
    checkbox: string;
    cancel: string;
  },
) {
  return (
    <Layout title={props.title} section={props.section} session={sessionView(props.c)}>
      <div class="mx-auto max-w-xl">
        <PageHeader title={props.title} />
        <Card>
          <div class="text-sm text-slate-700">{props.message}</div>
          <form method="post" action={props.action} class="mt-5 flex flex-wrap items-center gap-3">
            <CsrfField token={props.c.get("csrf")} />
            <label class="flex items-center gap-2 text-sm text-slate-700">
              <input type="checkbox" name="confirm" value="yes" required class="size-4 accent-rose-600" />
              {props.checkbox}
            </label>
            <button type="submit" class="btn btn-danger">{props.button}</button>
            <a href={props.cancel} class="btn btn-secondary">Cancel</a>
          </form>
        </Card>
      </div>
    </Layout>
  );
}

/** UUID check for ids in paths and filters. */
export function isUuid(s: string | undefined): s is string {
  return !!s && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
}
