/**
 * A running proxy for end-to-end tests: the real app on a real port, in front of the fake Anthropic API, with a
 * user and an access key ready.
 */
import type { Db } from "../../lib/db/db.ts";
import { makeTestApp, type TestApp } from "./app.ts";
import {
  type FakeAnthropic,
  type FakeAnthropicOptions,
  startFakeAnthropic,
} from "../fakes/fake_anthropic.ts";
import type { ServiceOverrides } from "../../lib/services.ts";

/** A proxy, its upstream fake and a ready key. */
export interface ProxyFixture {
  t: TestApp;
  upstream: FakeAnthropic;
  /** Proxy origin, e.g. http://127.0.0.1:41234 */
  origin: string;
  /** `<origin>/ak/<key>`: what users put in ANTHROPIC_BASE_URL. */
  baseUrl: string;
  key: string;
  keyId: string;
  userId: string;
  close(): Promise<void>;
}

/** Starts the fake upstream and the proxy in front of it. */
export async function startProxy(
  db: Db,
  opts: {
    env?: Record<string, string>;
    upstream?: FakeAnthropicOptions;
    overrides?: ServiceOverrides;
    user?: Record<string, unknown>;
  } = {},
): Promise<ProxyFixture> {
  const upstream = await startFakeAnthropic(opts.upstream);
  const t = await makeTestApp(db, { PROXY_PLAN_API_URL: upstream.url, ...opts.env }, opts.overrides);
  const h = await t.auth();
  const user = (await t.call("POST", "/api/users", { email: "dev@example.com", ...opts.user }, h)).body;
  const issued = (await t.call("POST", `/api/users/${user.id}/access-keys`, { name: "test" }, h)).body;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, t.app.fetch);
  await t.services.peers.listening(server.addr.port);
  const origin = `http://127.0.0.1:${server.addr.port}`;
  return {
    t,
    upstream,
    origin,
    baseUrl: `${origin}/ak/${issued.key}`,
    key: issued.key,
    keyId: issued.id,
    userId: user.id,
    async close() {
      await server.shutdown();
      await upstream.close();
      await t.services.recorder.close(2000);
      t.services.bedrock.close();
    },
  };
}

/** Waits until `cond` holds (polling), failing after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = "condition",
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `POST <baseUrl>/v1/messages` with a JSON body and a client API key, as an SDK would send it. */
export function postMessages(
  baseUrl: string,
  body: unknown,
  init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(`${baseUrl}/v1/messages`, {
    method: "POST",
    headers: { "x-api-key": "k", "content-type": "application/json", ...init.headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: init.signal,
  });
}
