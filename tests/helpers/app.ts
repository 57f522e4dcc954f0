/**
 * Builds the real application for tests with an explicit configuration, a captured log and injected seams.
 */
import { type Config, loadConfig } from "../../lib/config.ts";
import type { Db } from "../../lib/db/db.ts";
import { createLogger } from "../../lib/log.ts";
import { createServices, type ServiceOverrides, type Services } from "../../lib/services.ts";
import { createApp } from "../../app.ts";
import { hashPassword } from "../../lib/auth/password.ts";

/** The admin password every test app accepts. */
export const ADMIN_PASSWORD = "correct horse battery staple";
const adminHash = hashPassword(ADMIN_PASSWORD, 1000); // few iterations: tests, not production

/** A test application with its services and captured log lines. */
export interface TestApp {
  app: ReturnType<typeof createApp>;
  config: Config;
  services: Services;
  logs: string[];
  /** Signs in and returns `Authorization` headers for the JSON API. */
  auth(): Promise<Record<string, string>>;
  /** JSON request helper: returns status, parsed body and headers. */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{
    status: number;
    // deno-lint-ignore no-explicit-any
    body: any;
    headers: Headers;
  }>;
}

/** Creates the application over `db` with test secrets and `env` overrides. */
export async function makeTestApp(
  db: Db,
  env: Record<string, string> = {},
  overrides: ServiceOverrides = {},
): Promise<TestApp> {
  const config = await loadConfig({
    PROXY_ENV: "test",
    PROXY_KEY_HASHER_SECRET: "test-key-hasher-secret-0123456789abcdef",
    PROXY_JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789",
    PROXY_LOCAL_ENCRYPTION_KEY: "0123456789abcdef0123456789abcdef",
    PROXY_ADMIN_PASSWORD_HASH: await adminHash,
    PROXY_DATA_DIR: await Deno.makeTempDir({ prefix: "proxy-test-" }),
    ...env,
  }, {
    readSecrets: () => Promise.resolve(null),
    writeSecrets: () => Promise.resolve(),
    hashPassword: (p) => hashPassword(p, 1000),
  });
  const logs: string[] = [];
  const log = createLogger({ level: "debug", sink: (l) => logs.push(l) });
  const services = await createServices(config, db, log, overrides);
  const app = createApp({ config, db, log, services });
  let token: string | null = null;
  const t: TestApp = {
    app,
    config,
    services,
    logs,
    async auth() {
      if (!token) {
        const res = await t.call("POST", "/api/auth/login", { username: "admin", password: ADMIN_PASSWORD });
        if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
        token = res.body.access_token as string;
      }
      return { authorization: `Bearer ${token}` };
    },
    async call(method, path, body, headers = {}) {
      const res = await app.request(path, {
        method,
        headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch { /* not JSON */ }
      return { status: res.status, body: parsed, headers: res.headers };
    },
  };
  return t;
}
