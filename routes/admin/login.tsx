/**
 * The sign-in page: user name and password, the login form's CSRF token, and where to go afterwards.
 */
import { Layout, type Notice } from "../../components/Layout.tsx";
import { CsrfField, Field, FormError, type FormState } from "../../components/Form.tsx";
import { urls } from "../../components/urls.ts";

/** Props of {@link LoginPage}. */
export interface LoginPageProps {
  csrf: string;
  next: string | null;
  state: FormState;
  notice?: Notice | null;
  /** Seconds until sign-in may be tried again (throttled). */
  retryAfter?: number;
}

/** The sign-in page. */
export function LoginPage(p: LoginPageProps) {
  return (
    <Layout title="Sign in" notice={p.notice} narrow>
      <div class="pt-6 sm:pt-12">
        <h1 class="text-2xl font-semibold tracking-tight text-slate-900">Sign in to the console</h1>
        <p class="mt-1 text-sm text-slate-500">Manage users, access keys, Bedrock credentials and usage.</p>
        <form method="post" action={urls.login} class="card mt-6 space-y-4" data-login-form>
          <CsrfField token={p.csrf} />
          {p.next && <input type="hidden" name="next" value={p.next} />}
          <FormError state={p.state} />
          {p.retryAfter !== undefined && (
            <p class="text-xs text-slate-500" data-retry-after={p.retryAfter}>
              Sign-in is paused for this address and user name after repeated failures.
            </p>
          )}
          <Field
            idPrefix="login"
            name="username"
            label="User name"
            state={p.state}
            autocomplete="username"
            required
            autofocus={!p.state.values.username}
          />
          <Field
            idPrefix="login"
            name="password"
            label="Password"
            type="password"
            state={p.state}
            autocomplete="current-password"
            required
            secret
            autofocus={!!p.state.values.username}
          />
          <button type="submit" class="btn btn-primary w-full">Sign in</button>
        </form>
        <p class="mt-4 text-xs text-slate-400">
          The user name is <code>PROXY_ADMIN_USERNAME</code>; the password's hash is{" "}
          <code>PROXY_ADMIN_PASSWORD_HASH</code>.
        </p>
      </div>
    </Layout>
  );
}
