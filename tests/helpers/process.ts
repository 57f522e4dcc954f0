/**
 * The proxy as a separate process (`deno run main.ts`), for tests of what only a real process shows: signals,
 * several replicas, a database outage seen from outside.
 */
import { waitFor } from "./proxy.ts";

/** A running proxy process. */
export interface ProxyProcess {
  origin: string;
  child: Deno.ChildProcess;
  /** SIGTERM, then waits for the exit status. */
  stop(): Promise<Deno.CommandStatus>;
}

/** Starts `main.ts` with `env` on a free port and a fresh data dir; resolves once `/health` answers. */
export async function spawnProxy(env: Record<string, string>): Promise<ProxyProcess> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../main.ts", import.meta.url).pathname],
    env: {
      PROXY_DATA_DIR: await Deno.makeTempDir({ prefix: "proxy-process-" }),
      ...env,
      PROXY_PORT: String(port),
      PROXY_HOST: "127.0.0.1",
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const origin = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      try {
        const r = await fetch(`${origin}/health`);
        await r.body?.cancel();
        return r.ok;
      } catch {
        return false;
      }
    },
    30_000,
    `proxy process on ${port}`,
  );
  let stopped: Promise<Deno.CommandStatus> | null = null;
  return {
    origin,
    child,
    stop() {
      stopped ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        return await child.status;
      })();
      return stopped;
    },
  };
}

/** Signs in to a proxy process's API; returns a JSON API caller. */
export async function apiClient(origin: string, password: string) {
  const login = await (await fetch(`${origin}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password }),
  })).json();
  // deno-lint-ignore no-explicit-any
  return (method: string, path: string, body?: unknown): Promise<any> =>
    fetch(`${origin}/api${path}`, {
      method,
      headers: { authorization: `Bearer ${login.access_token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then((r) => r.json());
}
