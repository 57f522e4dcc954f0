/**
 * The console's page shell: head with the built stylesheet and islands bundle, the top bar with navigation and
 * sign-out, a flash notice, and the page. Responsive: the navigation wraps under the brand on phones.
 */
import type { ComponentChildren } from "preact";
import { assetUrls } from "../lib/islands/assets.ts";
import { CsrfField } from "./Form.tsx";
import { urls } from "./urls.ts";

/** Sections of the navigation. */
export type Section = "dashboard" | "users" | "requests" | "audit" | "settings";

/** A flash message shown above the page. */
export interface Notice {
  kind: "ok" | "error" | "info";
  text: string;
}

/** Props of {@link Layout}. */
export interface LayoutProps {
  title: string;
  section?: Section;
  /** The signed-in admin and the session's CSRF token; absent on the sign-in page. */
  session?: { username: string; csrf: string } | null;
  notice?: Notice | null;
  timeZone?: string;
  /** Narrow centred column (sign-in, confirmation pages). */
  narrow?: boolean;
  children: ComponentChildren;
}

const NAV: Array<[Section, string, string]> = [
  ["dashboard", "Dashboard", urls.dashboard],
  ["users", "Users", urls.users],
  ["requests", "Requests", urls.requests],
  ["audit", "Audit log", urls.audit],
  ["settings", "Settings", urls.settings],
];

/** The page shell; see the module documentation. */
export function Layout(props: LayoutProps) {
  const assets = assetUrls();
  return (
    <html lang="en" class="h-full bg-slate-50">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>{`${props.title} · Claude Code Proxy`}</title>
        <link rel="icon" href="/static/favicon.svg" type="image/svg+xml" />
        <link rel="stylesheet" href={assets.css} />
        <script type="module" src={assets.js}></script>
      </head>
      <body class="flex min-h-full flex-col text-slate-900 antialiased">
        <header class="bg-slate-900 text-slate-100">
          <div class="mx-auto flex max-w-7xl flex-wrap items-center gap-x-6 gap-y-2 px-4 py-3 sm:px-6">
            <a href={urls.dashboard} class="flex items-center gap-2 font-semibold tracking-tight text-white">
              <svg viewBox="0 0 24 24" class="size-6 fill-amber-400" aria-hidden="true">
                <path d="M12 2 3 7v10l9 5 9-5V7l-9-5Zm0 2.3 6.7 3.7L12 11.7 5.3 8 12 4.3ZM5 9.7l6 3.3v6.7l-6-3.3V9.7Zm8 10v-6.7l6-3.3v6.7l-6 3.3Z" />
              </svg>
              <span>Claude Code Proxy</span>
            </a>
            {props.session && (
              <nav
                aria-label="Main"
                class="order-3 -mx-1 flex w-full flex-wrap gap-1 pb-1 sm:order-none sm:w-auto sm:pb-0"
              >
                {NAV.map(([section, label, href]) => (
                  <a
                    href={href}
                    aria-current={props.section === section ? "page" : undefined}
                    class={`whitespace-nowrap rounded-md px-3 py-1.5 text-sm font-medium ${
                      props.section === section
                        ? "bg-slate-700 text-white"
                        : "text-slate-300 hover:bg-slate-800 hover:text-white"
                    }`}
                  >
                    {label}
                  </a>
                ))}
              </nav>
            )}
            {props.session && (
              <div class="ml-auto flex items-center gap-3 text-sm">
                <span class="hidden text-slate-400 sm:inline">{props.session.username}</span>
                <form method="post" action={urls.logout}>
                  <CsrfField token={props.session.csrf} />
                  <button
                    type="submit"
                    class="cursor-pointer rounded-md px-3 py-1.5 text-slate-300 ring-1 ring-slate-700 hover:bg-slate-800 hover:text-white"
                  >
                    Sign out
                  </button>
                </form>
              </div>
            )}
          </div>
        </header>
        <main class={`mx-auto w-full flex-1 px-4 py-6 sm:px-6 ${props.narrow ? "max-w-md" : "max-w-7xl"}`}>
          {props.notice && <NoticeBanner notice={props.notice} />}
          {props.children}
        </main>
        {props.timeZone && (
          <footer class="mx-auto w-full max-w-7xl px-4 pb-6 text-xs text-slate-400 sm:px-6">
            Times are shown in {props.timeZone}.
          </footer>
        )}
      </body>
    </html>
  );
}

const NOTICE_STYLES: Record<Notice["kind"], string> = {
  ok: "border-emerald-200 bg-emerald-50 text-emerald-800",
  error: "border-rose-200 bg-rose-50 text-rose-800",
  info: "border-sky-200 bg-sky-50 text-sky-800",
};

/** A flash message. */
export function NoticeBanner({ notice }: { notice: Notice }) {
  return (
    <div
      role={notice.kind === "error" ? "alert" : "status"}
      class={`mb-5 rounded-lg border px-4 py-3 text-sm ${NOTICE_STYLES[notice.kind]}`}
    >
      {notice.text}
    </div>
  );
}

/** A page's title row with optional subtitle and actions. */
export function PageHeader(
  props: { title: ComponentChildren; subtitle?: ComponentChildren; actions?: ComponentChildren },
) {
  return (
    <div class="mb-6 flex flex-wrap items-end justify-between gap-4">
      <div class="min-w-0">
        <h1 class="break-words text-2xl font-semibold tracking-tight text-slate-900">{props.title}</h1>
        {props.subtitle && <p class="mt-1 text-sm text-slate-500">{props.subtitle}</p>}
      </div>
      {props.actions && <div class="flex flex-wrap items-center gap-2">{props.actions}</div>}
    </div>
  );
}
