/**
 * `deno task bench`: the proxy's overhead against calling the upstream directly, in one run (issues 4 and 8).
 *
 * Separate processes, so CPU and memory are accounted to the right one:
 * - `bench/upstream.ts`, a fake Anthropic API answering after a fixed latency with realistic JSON or SSE,
 * - the proxy, `deno run -A main.ts`, once on PGlite and once on a fresh PostgreSQL database (created and
 *   dropped here), usage recording on as always, with a user and an access key made through the JSON API,
 * - `bench/relay.ts`, a bare Deno pass-through: the floor any Deno proxy pays on this machine,
 * - `bench/load.ts`, the load generator (one process per measurement; it prints its own CPU).
 *
 * For every scenario (non-streaming and streaming × concurrency 1, 50, 200) the same load runs straight at the
 * upstream ("direct"), then through each proxy (and the bare relay at concurrency 50 and 200), one after the other, and
 * the table shows them side by side: requests/s, p50/p99 latency, time to first token, the added latency,
 * throughput as a ratio to direct, CPU seconds per 1,000 requests of the process in the middle (/proc
 * utime+stime from window start until the recorder has flushed, over the requests answered meanwhile; at
 * concurrency 1 the proxy's idle CPU, about 13 ms/s, dominates it), the same for the PostgreSQL server processes
 * serving the proxy's database ("pg cpu": its usage writes and key lookups, when the server is local), its peak RSS (VmHWM, reset per window),
 * and the usage rows the proxy recorded (`GET /api/usage/requests?limit=1` → `total`) against the requests it
 * answered. Then an open-loop pass per mode (`--rate`, `--stream-rate`): requests started at a fixed rate
 * whatever the answers, each timed from when it was due, at every target; the closed loop at concurrency 50
 * saturates these two cores, so its added latency is mostly queueing, while at a fixed rate below saturation
 * it is the proxy's own work (printed beside the targets, not judged: they are set at a concurrency). Extras
 * (issue 8): RSS while holding 1,000 open streams (slow drip; the bare relay, and a bare
 * Deno.serve that reads each body and answers the stream itself, hold them too: the runtime's own floors; the
 * proxy's JS heap and external buffer memory at that moment, from its `/metrics` and before any garbage
 * collection, tell its own share from the runtime's native connection memory), and RSS every 10k requests over
 * 100k requests. Beside the throughput target the table of
 * targets shows the bare relay's ratio and the CPU ceiling: the cores divided by the CPU one proxied request takes
 * from the load generator, the upstream and the proxy together, and at most one core for the proxy's event loop. A proxy at `PROXY_LOG_LEVEL=info` (production's per-request log line, written to /dev/null) is
 * measured beside the `warn` ones at concurrency 50. Targets are printed PASS/MISS; every figure goes to
 * `bench/results/<timestamp>.json`.
 *
 * ```sh
 * deno run -A bench/bench.ts                                # the default run: the matrix and the open loop three
 *                                                           #   times (targets judged on the medians), then the
 *                                                           #   memory scenarios; about 15 minutes on 2 cores
 * deno run -A bench/bench.ts --repeat=1                     # one pass, about 6 minutes
 * deno run -A bench/bench.ts --duration=30                  # longer windows
 * deno run -A bench/bench.ts --only=stream,50,postgres      # one scenario (tokens: stream, nonstream, 1, 50,
 *                                                           #   200, pglite, postgres, info, relay, open, flat,
 *                                                           #   rate)
 * deno run -A bench/bench.ts --only=open,flat,pglite        # only the memory scenarios, on PGlite
 * deno run -A bench/bench.ts --only=rate,postgres,relay     # only the open loop (with a mode: that mode's)
 * deno run -A bench/bench.ts --tls                          # upstream over HTTPS and HTTP/2, as api.anthropic.com:
 *                                                           #   the proxy then multiplexes its upstream streams
 *                                                           #   over PROXY_UPSTREAM_CONNECTIONS (8) connections
 * deno run -A bench/bench.ts --pin                          # proxy on CPU 1; load and upstream on CPU 0
 * ```
 *
 * Other flags: `--warmup=1` (s before each window), `--prewarm=2` (s per mode and target at concurrency 50 before
 * the first measurement, so no scenario runs on cold JIT code), `--conc=1,50,200`, `--info-conc=50` and
 * `--relay-conc=50,200` (where the info-level proxy and the bare relay are measured too; empty: nowhere),
 * `--rate=300` and `--stream-rate=25` (the open loop's requests and streams started per second; 0 skips),
 * `--relay-open=1` (the bare relay, and a bare Deno.serve that answers itself, hold the open streams too, as the runtime's floors; 0 skips),
 * `--open-streams=1000` and `--flat-requests=100000` (0 skips), `--flat-conc=200` (on PostgreSQL only, unless
 * `--only=flat,pglite`), `--latency=50`, `--interval=15` (ms between deltas), `--deltas=60`, `--body-kb=70`
 * (Claude Code sends 70 KB and more), `--settle=1.2` (s for the recorder to flush before CPU is read and rows are
 * counted), `--pg-url=postgres://postgres@127.0.0.1:5432/postgres` (where the scratch database is created),
 * `--out=<file.json>`, `--deno-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"` (extra `deno run` flags for the
 * proxies: profile them under the same load), `--logs=<dir>` (keep each proxy's stdout and stderr in
 * `<dir>/<label>.log` instead of discarding them), `--mmap-threshold=131072` (glibc's `MALLOC_MMAP_THRESHOLD_` for
 * the proxies, as the image sets it; 0 leaves glibc's default; the relay always runs with glibc's default).
 */
import { hashPassword } from "../lib/auth/password.ts";
import { openPostgres } from "../lib/db/postgres.ts";
import { sql } from "../lib/db/sql.ts";
import { cpuSeconds, type LoadConfig, type LoadResult } from "./load.ts";
import { USAGE } from "./upstream.ts";
import { makeCertificates } from "./certificates.ts";

const ROOT = new URL("../", import.meta.url);
const DENO = Deno.execPath();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------------------------------
// Flags

interface Options {
  durationS: number;
  warmupS: number;
  conc: number[];
  modes: Mode[];
  backends: Backend[];
  infoConc: number[];
  /** Concurrencies at which the bare relay (`bench/relay.ts`) is measured too. */
  relayConc: number[];
  openStreams: number;
  /** Whether the bare relay holds the open streams too (the runtime's floor for that memory). */
  relayOpen: boolean;
  flatRequests: number;
  flatConc: number;
  /** Backends of the 100k-requests scenario; by default PostgreSQL only. */
  flatBackends: Backend[] | null;
  latencyMs: number;
  intervalMs: number;
  deltas: number;
  bodyKb: number;
  settleS: number;
  prewarmS: number;
  pgUrl: string;
  pin: boolean;
  tls: boolean;
  repeat: number;
  out: string | null;
  /** Extra `deno run` flags for the proxies, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  denoFlags: string[];
  /** Where each proxy's stdout and stderr go (its log lines); by default they are discarded. */
  logsDir: string | null;
  /** glibc's `MALLOC_MMAP_THRESHOLD_` for the proxies, as the image sets it (0: glibc's own sliding threshold). */
  mmapThreshold: number;
  /** Open-loop passes: requests (or streams) started per second, whatever the answers; 0 skips a mode. */
  rates: Record<Mode, number>;
  /** Whether the bare relay runs the open-loop passes too. */
  relayRate: boolean;
  extras: { open: boolean; flat: boolean; rate: boolean };
}

type Mode = "nonstream" | "stream";
export type Backend = "pglite" | "postgres";

function parseFlags(args: string[]): Options {
  const flags = new Map<string, string>();
  for (const a of args) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unknown argument ${a}; see the doc comment of bench/bench.ts`);
    flags.set(m[1], m[2] ?? "true");
  }
  const num = (name: string, fallback: number) => {
    const v = flags.get(name);
    flags.delete(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a number, got ${v}`);
    return n;
  };
  const list = (name: string, fallback: string) => {
    const v = flags.get(name) ?? fallback;
    flags.delete(name);
    return v.split(",").map((s) => s.trim()).filter((s) => s !== "");
  };
  const o: Options = {
    durationS: num("duration", 5),
    warmupS: num("warmup", 1),
    conc: list("conc", "1,50,200").map(Number),
    modes: ["nonstream", "stream"],
    backends: ["pglite", "postgres"],
    infoConc: list("info-conc", "50").map(Number),
    relayConc: list("relay-conc", "50,200").map(Number),
    openStreams: num("open-streams", 1000),
    relayOpen: num("relay-open", 1) > 0,
    flatRequests: num("flat-requests", 100_000),
    flatConc: num("flat-conc", 200),
    flatBackends: null,
    latencyMs: num("latency", 50),
    intervalMs: num("interval", 15),
    deltas: num("deltas", 60),
    bodyKb: num("body-kb", 70),
    settleS: num("settle", 1.2),
    prewarmS: num("prewarm", 2),
    pgUrl: flags.get("pg-url") ?? "postgres://postgres@127.0.0.1:5432/postgres",
    pin: flags.get("pin") === "true",
    tls: flags.get("tls") === "true",
    repeat: Math.max(1, num("repeat", 3)),
    out: flags.get("out") ?? null,
    logsDir: flags.get("logs") ?? null,
    denoFlags: (flags.get("deno-flags") ?? "").split(" ").filter((s) => s !== ""),
    mmapThreshold: num("mmap-threshold", IMAGE_MMAP_THRESHOLD),
    rates: { nonstream: num("rate", 300), stream: num("stream-rate", 25) },
    relayRate: true,
    extras: { open: true, flat: true, rate: true },
  };
  const only = list("only", "");
  for (const name of ["pg-url", "pin", "tls", "out", "deno-flags", "logs"]) flags.delete(name);
  if (flags.size > 0) throw new Error(`unknown flag(s): ${[...flags.keys()].map((k) => `--${k}`).join(" ")}`);
  if (only.length > 0) {
    const modes = only.filter((t) => t === "stream" || t === "nonstream") as Mode[];
    const concs = only.filter((t) => /^\d+$/.test(t)).map(Number);
    const backends = only.map((t) => (t === "pg" ? "postgres" : t)).filter((t) =>
      t === "pglite" || t === "postgres"
    ) as Backend[];
    const known = new Set([
      "stream",
      "nonstream",
      "pglite",
      "postgres",
      "pg",
      "info",
      "relay",
      "open",
      "flat",
      "rate",
    ]);
    const bad = only.filter((t) => !known.has(t) && !/^\d+$/.test(t));
    if (bad.length > 0) throw new Error(`--only: unknown token(s) ${bad.join(", ")}`);
    const extras = only.filter((t) => t === "open" || t === "flat" || t === "rate");
    // A mode names the matrix's scenarios, unless the open loop is asked for without a concurrency: then it
    // names the open loop's.
    const rateOnly = only.includes("rate") && concs.length === 0;
    const matrix = !rateOnly && (modes.length + concs.length > 0 || extras.length === 0);
    if (modes.length > 0) o.modes = modes;
    if (concs.length > 0) o.conc = concs;
    if (backends.length > 0) o.backends = o.flatBackends = backends;
    if (!only.includes("info")) o.infoConc = o.infoConc.filter((c) => o.conc.includes(c) && concs.length > 0);
    if (!only.includes("relay")) {
      o.relayConc = o.relayConc.filter((c) => o.conc.includes(c) && concs.length > 0);
      o.relayOpen = false;
      o.relayRate = false;
    }
    if (!matrix) o.conc = [];
    o.extras = {
      open: extras.includes("open"),
      flat: extras.includes("flat"),
      rate: extras.includes("rate"),
    };
  }
  if (o.rates.nonstream === 0 && o.rates.stream === 0) o.extras.rate = false;
  if (o.openStreams === 0) o.extras.open = false;
  if (o.flatRequests === 0) o.extras.flat = false;
  return o;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

export interface Proc {
  child: Deno.ChildProcess;
  pid: number;
  name: string;
  stderrTail: () => string;
}

function pinned(cpu: number | null, cmd: string, args: string[]): [string, string[]] {
  return cpu === null ? [cmd, args] : ["taskset", ["-c", String(cpu), cmd, ...args]];
}

export function spawn(
  name: string,
  cpu: number | null,
  args: string[],
  env: Record<string, string>,
  stdout: "piped" | "null",
  logFile: string | null = null,
): Proc {
  let [cmd, full] = pinned(cpu, DENO, args);
  if (logFile) [cmd, full] = ["sh", ["-c", 'exec "$@" >"$0" 2>&1', logFile, cmd, ...full]];
  const child = new Deno.Command(cmd, {
    args: full,
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout,
    stderr: "piped",
  }).spawn();
  let tail = "";
  (async () => {
    for await (const chunk of child.stderr) tail = (tail + decoder.decode(chunk)).slice(-4000);
  })().catch(() => {});
  return { child, pid: child.pid, name, stderrTail: () => tail };
}

/** JSON lines of a child's stdout. */
export async function* lines(child: Deno.ChildProcess): AsyncGenerator<Record<string, unknown>> {
  let buf = "";
  for await (const chunk of child.stdout) {
    buf += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line.startsWith("{")) yield JSON.parse(line);
    }
  }
}

export async function stop(p: Proc): Promise<void> {
  try {
    p.child.kill("SIGTERM");
  } catch { /* already gone */ }
  const killer = setTimeout(() => {
    try {
      p.child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 10_000);
  await p.child.status;
  clearTimeout(killer);
}

function rssMb(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * The peak RSS of `pid` from now until stopped: the kernel's high-water mark (VmHWM), reset first by writing
 * 5 to `/proc/<pid>/clear_refs`, so a spike between samples counts too; VmRSS sampled every `everyMs` where the
 * reset is not allowed.
 */
function rssSampler(pid: number, everyMs = 100): { stop: () => number; samples: number[] } {
  const samples: number[] = [];
  let hwmReset = false;
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    hwmReset = true;
  } catch { /* not ours to reset: the samples stand alone */ }
  const take = () => {
    const v = rssMb(pid);
    if (!Number.isNaN(v)) samples.push(v);
  };
  take();
  const t = setInterval(take, everyMs);
  return {
    samples,
    stop: () => {
      clearInterval(t);
      take();
      const hwm = hwmReset ? rssMb(pid, "VmHWM") : NaN;
      return Math.max(...samples, ...(Number.isNaN(hwm) ? [] : [hwm]));
    },
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function clockTicks(): Promise<number> {
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output();
    const n = Number(decoder.decode(out.stdout).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The request body: shaped like Claude Code's (system prompt, tool definitions, a conversation), `kb` long.

export function requestBody(stream: boolean, kb: number): Uint8Array {
  const para = "Use the tools available to you to assist the user with software engineering tasks. " +
    "Read files before editing them, keep changes minimal, and run the tests after every change. ";
  // About a third of a big body is tool definitions, as in Claude Code's; a small body has none.
  const tools = Array.from({ length: Math.min(16, Math.floor(kb / 4)) }, (_, i) => ({
    name: `Tool${i}`,
    description: para.repeat(6),
    input_schema: {
      type: "object",
      properties: {
        file_path: { type: "string", description: "The absolute path to the file" },
        content: { type: "string", description: "The content to write" },
        limit: { type: "number", description: "How many lines to read" },
      },
      required: ["file_path"],
      additionalProperties: false,
    },
  }));
  const body = {
    stream,
    model: "claude-sonnet-4-5-20250929",
    max_tokens: 32000,
    system: [{ type: "text", text: "You are Claude Code.", cache_control: { type: "ephemeral" } }, {
      type: "text",
      text: para.repeat(Math.min(10, Math.floor(kb / 2))),
    }],
    tools,
    messages: [{ role: "user", content: [{ type: "text", text: "Fix the failing test." }] }] as unknown[],
    metadata: { user_id: "user_bench_account__session_0000" },
  };
  // Fill with conversation turns until the body reaches the size asked for.
  for (let turn = 1; JSON.stringify(body).length < kb * 1024 - 300; turn++) {
    const text = `turn ${turn}: ` + para.repeat(3);
    body.messages.push({ role: turn % 2 === 0 ? "user" : "assistant", content: [{ type: "text", text }] });
  }
  if (body.messages.length % 2 === 0) body.messages.push({ role: "user", content: "continue" });
  return new TextEncoder().encode(JSON.stringify(body));
}

// ---------------------------------------------------------------------------------------------------------------
// The proxy under test

export interface ProxyUnderTest {
  label: string;
  backend: Backend;
  logLevel: "warn" | "info";
  proc: Proc;
  origin: string;
  messagesUrl: string;
  token: string;
  /** Responses the load generators got from this proxy, to compare with the usage rows. */
  answered: number;
  idleRssMb: number;
  /** Its PostgreSQL database's name (null on PGlite). */
  database: string | null;
}

const SECRETS = {
  PROXY_KEY_HASHER_SECRET: "bench-key-hasher-secret-0123456789abcdef",
  PROXY_JWT_SECRET: "bench-jwt-secret-0123456789abcdef-0123456789",
  PROXY_LOCAL_ENCRYPTION_KEY: "bench-local-encryption-key-32chr",
};
export const ADMIN_PASSWORD = "bench-admin-password";

/** Added to every child's environment (`DENO_CERT` with `--tls`). */
const extraEnv: Record<string, string> = {};

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!k.startsWith("PROXY_") && k !== "MALLOC_MMAP_THRESHOLD_") env[k] = v;
  }
  return { ...env, ...extraEnv };
}

/**
 * The Dockerfile's `MALLOC_MMAP_THRESHOLD_` (a test keeps the two equal). glibc then maps every allocation of
 * 128 KiB or more on its own and unmaps it when freed; without it, connection buffers are carved from the main
 * heap, whose freed middle glibc keeps: 1,000 open streams took 10 % more RSS. (64 KiB saved a little more but
 * cost the proxy 6-9 % more CPU per request.)
 */
export const IMAGE_MMAP_THRESHOLD = 131072;

/** The environment of the proxies under test: the image's allocator setting. */
function testedEnv(o: Options): Record<string, string> {
  const env = baseEnv();
  if (o.mmapThreshold > 0) env.MALLOC_MMAP_THRESHOLD_ = String(o.mmapThreshold);
  return env;
}

async function api(
  origin: string,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(origin + path, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

export async function startProxy(a: {
  label: string;
  backend: Backend;
  logLevel: "warn" | "info";
  upstreamUrl: string;
  databaseUrl: string;
  dataDir: string;
  passwordHash: string;
  cpu: number | null;
  denoFlags: string[];
  logsDir: string | null;
  /** The base environment; `PROXY_*` variables are set here. */
  env: Record<string, string>;
}): Promise<ProxyUnderTest> {
  const port = freePort();
  const env = {
    ...a.env,
    ...SECRETS,
    PROXY_ENV: "development",
    PROXY_HOST: "127.0.0.1",
    PROXY_PORT: String(port),
    PROXY_DATA_DIR: a.dataDir,
    PROXY_PLAN_API_URL: a.upstreamUrl,
    PROXY_LOG_LEVEL: a.logLevel,
    PROXY_ADMIN_PASSWORD_HASH: a.passwordHash,
    ...(a.databaseUrl ? { PROXY_DATABASE_URL: a.databaseUrl } : {}),
  };
  const logFile = a.logsDir ? `${a.logsDir}/${a.label}.log` : null;
  const proc = spawn(a.label, a.cpu, ["run", "-A", ...a.denoFlags, "main.ts"], env, "null", logFile);
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    const status = await Promise.race([proc.child.status, new Promise((r) => setTimeout(r, 100, null))]);
    if (status) throw new Error(`proxy ${a.label} exited during start-up:\n${proc.stderrTail()}`);
    try {
      const res = await fetch(`${origin}/health`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`proxy ${a.label} did not start:\n${proc.stderrTail()}`);
  }
  const login = await api(origin, "POST", "/api/auth/login", null, {
    username: "admin",
    password: ADMIN_PASSWORD,
  });
  const token = String(login.access_token);
  const user = await api(origin, "POST", "/api/users", token, { email: `bench-${a.label}@example.com` });
  const key = await api(origin, "POST", `/api/users/${user.id}/access-keys`, token, { name: "bench" });
  return {
    label: a.label,
    backend: a.backend,
    logLevel: a.logLevel,
    proc,
    origin,
    messagesUrl: `${origin}/ak/${key.key}/v1/messages`,
    token,
    answered: 0,
    idleRssMb: rssMb(proc.pid),
    database: null,
  };
}

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

/** Counts the usage rows through the API, waiting (up to 10 s) until every answered request has its row. */
async function usageRows(p: ProxyUnderTest): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const page = await api(p.origin, "GET", "/api/usage/requests?limit=1", p.token);
    const total = Number(page.total);
    if (total >= p.answered || Date.now() > deadline) return total;
    await new Promise((r) => setTimeout(r, 250));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One measurement

interface Measurement {
  repeat: number;
  mode: Mode;
  /** Closed loop: requests in flight. Open loop: 0, and `rate` is set. */
  concurrency: number;
  /** Open loop: requests started per second. */
  rate: number | null;
  target: string;
  load: LoadResult;
  proxyCpuPer1k: number | null;
  upstreamCpuPer1k: number;
  /**
   * CPU of the PostgreSQL server processes serving this proxy's database (its usage writes, key lookups): a
   * cost of the proxy the process's own CPU leaves out. Null off PostgreSQL, or when the server is not local.
   */
  pgCpuPer1k: number | null;
  proxyPeakRssMb: number | null;
  usageRows: number | null;
  requestsAnswered: number | null;
}

interface Ctx {
  o: Options;
  ticks: number;
  upstream: Proc;
  upstreamUrl: string;
  bodyFiles: Record<Mode, string>;
  loadCpu: number | null;
  /** The PostgreSQL server processes serving `database` (none when they cannot be listed). */
  pgBackends: (database: string) => Promise<number[]>;
}

/** Total CPU seconds of the processes still alive, by pid. */
function cpuOf(pids: number[], ticks: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      out.set(pid, cpuSeconds(pid, ticks));
    } catch { /* gone, or not on this machine */ }
  }
  return out;
}

async function runLoad(
  ctx: Ctx,
  cfg: LoadConfig,
  on: { start?: () => void; end?: () => void; progress?: (done: number) => void; ready?: () => void },
): Promise<LoadResult> {
  const proc = spawn(
    "load",
    ctx.loadCpu,
    ["run", "-A", "bench/load.ts", JSON.stringify(cfg)],
    baseEnv(),
    "piped",
  );
  let result: LoadResult | null = null;
  for await (const line of lines(proc.child)) {
    if (line.type === "start") on.start?.();
    else if (line.type === "end") on.end?.();
    else if (line.type === "progress") on.progress?.(Number(line.done));
    else if (line.type === "ready") on.ready?.();
    else if (line.type === "result") result = line as unknown as LoadResult;
  }
  const status = await proc.child.status;
  if (!result || !status.success) throw new Error(`load generator failed:\n${proc.stderrTail()}`);
  return result;
}

/** A window lasts `--duration` and at least this many requests: a stream at concurrency 1 takes a second. */
const MIN_REQUESTS = 10;

/** Where a scenario's load goes: the upstream itself ("direct"), the bare relay, or a proxy. */
interface Target {
  label: string;
  url: string;
  /** The process whose CPU and memory are measured (none for direct). */
  pid: number | null;
  proxy: ProxyUnderTest | null;
}

/** The load of one scenario: Claude Code's headers and body, at `target`. */
function loadConfig(
  ctx: Ctx,
  mode: Mode,
  target: Target,
  concurrency: number,
  rate: number | null = null,
): LoadConfig {
  return {
    url: target.url,
    headers: {
      "content-type": "application/json",
      "x-api-key": "sk-ant-api03-bench",
      "anthropic-version": "2023-06-01",
      "anthropic-beta":
        "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
      "user-agent": "claude-cli/2.0.0 (external, cli)",
      "x-app": "cli",
    },
    bodyFile: ctx.bodyFiles[mode],
    stream: mode === "stream",
    concurrency,
    ...(rate ? { rate } : {}),
    warmupS: ctx.o.warmupS,
    durationS: ctx.o.durationS,
    minRequests: MIN_REQUESTS,
    clockTicks: ctx.ticks,
  };
}

async function measure(
  ctx: Ctx,
  repeat: number,
  mode: Mode,
  concurrency: number,
  target: Target,
  rate: number | null = null,
): Promise<Measurement> {
  const { o, ticks } = ctx;
  const { proxy, pid } = target;
  const cfg = loadConfig(ctx, mode, target, concurrency, rate);
  let cpu0 = { proxy: 0, upstream: 0 };
  let pg0 = new Map<number, number>();
  const database = proxy?.database ?? null;
  // Listed before the window (the reading at its start must not wait on a query); a backend that starts during
  // the window is found after it, and all its CPU is the window's.
  const pgBefore = database ? await ctx.pgBackends(database) : [];
  let rss: ReturnType<typeof rssSampler> | null = null;
  const cpuNow = () => ({
    proxy: pid ? cpuSeconds(pid, ticks) : 0,
    upstream: cpuSeconds(ctx.upstream.pid, ticks),
  });
  const load = await runLoad(ctx, cfg, {
    start: () => {
      cpu0 = cpuNow();
      pg0 = cpuOf(pgBefore, ticks);
      if (pid) rss = rssSampler(pid);
    },
    end: () => {
      // RSS is only sampled in the window; CPU runs on until the recorder has flushed.
    },
  });
  const peak = rss ? (rss as { stop: () => number }).stop() : null;
  // The recorder flushes within a second: its work belongs to these requests. Rows are counted after the CPU
  // reading, so the count query is not charged to them.
  await sleep(proxy ? o.settleS : 0.3);
  const cpu1 = cpuNow();
  const pg1 = cpuOf(database ? await ctx.pgBackends(database) : [], ticks);
  let pgCpu = 0;
  for (const [p, c] of pg1) pgCpu += c - (pg0.get(p) ?? 0);
  let rows: number | null = null;
  if (proxy) {
    proxy.answered += load.total;
    rows = await usageRows(proxy);
  }
  const per1k = (s: number) => Math.round((s / Math.max(1, load.sinceStart)) * 1000 * 1000) / 1000;
  return {
    repeat,
    mode,
    concurrency,
    rate,
    target: target.label,
    load,
    proxyCpuPer1k: pid ? per1k(cpu1.proxy - cpu0.proxy) : null,
    upstreamCpuPer1k: per1k(cpu1.upstream - cpu0.upstream),
    pgCpuPer1k: pg1.size > 0 ? per1k(pgCpu) : null,
    proxyPeakRssMb: peak,
    usageRows: rows,
    requestsAnswered: proxy ? proxy.answered : null,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Extras (issue 8)

interface OpenStreamsResult {
  target: string;
  streams: number;
  errors: number;
  errorSamples: string[];
  idleRssMb: number;
  rssAtReadyMb: number | null;
  /** The proxy's own view of its memory with every stream open (from `/metrics`): where the RSS goes. */
  heapAtReadyMb: HeapMb | null;
  peakRssMb: number;
  ttftP50: number | null;
  proxyCpuS: number;
}

/** `Deno.memoryUsage()` of a proxy, in MB. */
interface HeapMb {
  heapUsed: number;
  heapTotal: number;
  external: number;
}

/** Reads a proxy's JavaScript heap and external memory from its `/metrics` (null when it cannot). */
async function proxyHeap(origin: string): Promise<HeapMb | null> {
  try {
    const text = await (await fetch(`${origin}/metrics`)).text();
    const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN) / 1e6;
    const heap = {
      heapUsed: read("deno_heap_used_bytes"),
      heapTotal: read("deno_heap_total_bytes"),
      external: read("deno_external_memory_bytes"),
    };
    return Object.values(heap).every(Number.isFinite) ? heap : null;
  } catch {
    return null;
  }
}

/** The label of the open-streams floor: a bare Deno.serve (the fake upstream, fresh) holding the streams itself. */
const SERVE_FLOOR = "deno-serve-floor";

async function openStreams(ctx: Ctx, target: Target & { pid: number }): Promise<OpenStreamsResult> {
  const n = ctx.o.openStreams;
  const pid = target.pid;
  const idle = rssMb(pid);
  const rss = rssSampler(pid, 200);
  const cpu0 = cpuSeconds(pid, ctx.ticks);
  let atReady: number | null = null;
  let heap: Promise<HeapMb | null> = Promise.resolve(null);
  const load = await runLoad(ctx, {
    url: target.url,
    headers: {
      "content-type": "application/json",
      "x-api-key": "sk-ant-api03-bench",
      "anthropic-version": "2023-06-01",
      // A slow drip: the streams stay open about 10 s, every one of them at once.
      "x-bench-deltas": "20",
      "x-bench-interval-ms": "500",
    },
    bodyFile: ctx.bodyFiles.stream,
    stream: true,
    concurrency: n,
    warmupS: 0,
    hold: true,
    clockTicks: ctx.ticks,
  }, {
    ready: () => {
      atReady = rssMb(pid);
      if (target.proxy) heap = proxyHeap(target.proxy.origin);
    },
  });
  const peak = rss.stop();
  if (target.proxy) target.proxy.answered += load.total;
  return {
    target: target.label,
    streams: n,
    errors: load.errors,
    errorSamples: load.errorSamples,
    idleRssMb: idle,
    rssAtReadyMb: atReady,
    peakRssMb: peak,
    heapAtReadyMb: await heap,
    ttftP50: load.ttft?.p50 ?? null,
    proxyCpuS: cpuSeconds(pid, ctx.ticks) - cpu0,
  };
}

interface FlatResult {
  target: string;
  requests: number;
  concurrency: number;
  rps: number;
  errors: number;
  rssEvery10kMb: number[];
  /** (max − min) / first sample, over the samples from 10k on. */
  spread: number;
  usageRows: number;
  requestsAnswered: number;
}

async function flatRss(ctx: Ctx, proxy: ProxyUnderTest): Promise<FlatResult> {
  const every = Math.max(1, Math.round(ctx.o.flatRequests / 10));
  const marks: number[] = [];
  const load = await runLoad(ctx, {
    url: proxy.messagesUrl,
    headers: {
      "content-type": "application/json",
      "x-api-key": "sk-ant-api03-bench",
      "anthropic-version": "2023-06-01",
    },
    bodyFile: ctx.bodyFiles.nonstream,
    stream: false,
    concurrency: ctx.o.flatConc,
    warmupS: ctx.o.warmupS,
    requests: ctx.o.flatRequests,
    progressEvery: every,
    clockTicks: ctx.ticks,
  }, {
    progress: (done) => {
      const v = rssMb(proxy.proc.pid);
      marks.push(Math.round(v * 10) / 10);
      console.log(`    ${proxy.label}: ${done} requests, RSS ${v.toFixed(1)} MB`);
    },
  });
  proxy.answered += load.total;
  await sleep(ctx.o.settleS);
  const rows = await usageRows(proxy);
  const spread = marks.length > 0 ? (Math.max(...marks) - Math.min(...marks)) / marks[0] : NaN;
  return {
    target: proxy.label,
    requests: load.completed,
    concurrency: ctx.o.flatConc,
    rps: load.rps,
    errors: load.errors,
    rssEvery10kMb: marks,
    spread,
    usageRows: rows,
    requestsAnswered: proxy.answered,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Report

const f = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined || Number.isNaN(v) ? "-" : v.toFixed(digits);
const signed = (v: number | null, digits = 1) =>
  v === null || Number.isNaN(v) ? "-" : `${v >= 0 ? "+" : ""}${v.toFixed(digits)}`;

/** The median (the mean of the middle two for an even count). */
function median(vs: number[]): number {
  const s = [...vs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** A latency delta is signed (+1.20 ms); a ratio is not (0.93×). */
function signedOrPlain(v: number, digits: number, unit: string): string {
  return unit === "×" ? f(v, digits) : signed(v, digits);
}

interface Row {
  m: Measurement;
  direct: Measurement | undefined;
  addedP50: number | null;
  addedP99: number | null;
  addedTtft: number | null;
  ratio: number | null;
}

/** "nonstream c=50", or "stream @25/s" for the open loop. */
function scenarioOf(m: Measurement): string {
  return `${m.mode} ${m.rate !== null ? `@${m.rate}/s` : `c=${m.concurrency}`}`;
}

/** The line printed as a measurement ends. */
function progressLine(m: Measurement): string {
  const l = m.load;
  return `  ${scenarioOf(m).padEnd(15)} ${m.target.padEnd(13)} ${f(l.rps).padStart(7)} req/s  ` +
    `p50 ${f(l.latency.p50)} ms  p99 ${f(l.latency.p99)} ms` +
    (l.ttft ? `  ttft ${f(l.ttft.p50)} ms` : "") +
    (m.proxyCpuPer1k !== null ? `  proxy ${f(m.proxyCpuPer1k, 2)} cpu-s/1k` : "") +
    (m.pgCpuPer1k !== null ? `  postgres ${f(m.pgCpuPer1k, 2)} cpu-s/1k` : "") +
    `  upstream ${f(m.upstreamCpuPer1k, 2)} cpu-s/1k` +
    `  load cpu ${(l.cpuShare * 100).toFixed(0)}%` +
    (l.errors ? `  ERRORS ${l.errors} ${l.errorSamples.join("; ")}` : "") +
    (m.usageRows !== null ? `  rows ${m.usageRows}/${m.requestsAnswered}` : "");
}

function rows(all: Measurement[]): Row[] {
  return all.map((m) => {
    const direct = all.find((d) =>
      d.target === "direct" && d.repeat === m.repeat && d.mode === m.mode &&
      d.concurrency === m.concurrency &&
      d.rate === m.rate
    );
    const proxied = m.target !== "direct" && direct;
    return {
      m,
      direct,
      addedP50: proxied ? m.load.latency.p50 - direct.load.latency.p50 : null,
      addedP99: proxied ? m.load.latency.p99 - direct.load.latency.p99 : null,
      addedTtft: proxied && m.load.ttft && direct.load.ttft ? m.load.ttft.p50 - direct.load.ttft.p50 : null,
      ratio: proxied ? m.load.rps / direct.load.rps : null,
    };
  });
}

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

interface Goal {
  name: string;
  scenario: string;
  value: string;
  pass: boolean;
}

/**
 * The most requests/s the process in the middle could reach in this run, given what it costs per request: the
 * machine's `cpus` divided by the CPU one proxied request takes from the load generator, the upstream and the
 * process together, and at most one core's worth for the process itself (its event loop is one thread).
 * Loopback tests share the cores with both ends; production does not.
 */
function cpuCeilingRps(m: Measurement, cpus: number): number | null {
  if (m.proxyCpuPer1k === null || m.proxyCpuPer1k === 0 || m.load.rps === 0) return null;
  const perRequest = m.load.cpuShare / m.load.rps + m.upstreamCpuPer1k / 1000 + m.proxyCpuPer1k / 1000 +
    (m.pgCpuPer1k ?? 0) / 1000;
  return Math.min(cpus / perRequest, 1000 / m.proxyCpuPer1k);
}

/** A proxy's usage totals (from its aggregates), to check the tokens recorded against the fake's fixed usage. */
interface TokenTotals {
  requests: number;
  errors: number;
  input_tokens: number;
  cache_read_tokens: number;
  cache_creation_tokens: number;
}

/** Reads a proxy's all-time usage totals through `GET /api/usage` (null when it cannot). */
async function tokenTotals(p: ProxyUnderTest): Promise<TokenTotals | null> {
  try {
    const report = await api(
      p.origin,
      "GET",
      "/api/usage?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&granularity=day",
      p.token,
    );
    return report.totals as TokenTotals;
  } catch {
    return null;
  }
}

function targets(
  rs: Row[],
  open: OpenStreamsResult[],
  flat: FlatResult[],
  cpus: number,
  tokens: Map<string, TokenTotals | null> = new Map(),
): Goal[] {
  const out: Goal[] = [];
  // With --repeat, each target is judged on the median over the repeats, its range printed beside it: one
  // window on a shared machine can be well off either way.
  const groups = new Map<string, Row[]>();
  for (const r of rs) {
    if (r.addedP50 === null || r.m.rate !== null) continue; // the open loop is printed, not judged
    const k = `${r.m.mode} c=${r.m.concurrency} ${r.m.target}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const judged = (vs: number[], digits: number, unit: string) => {
    const m = median(vs);
    const shown = `${signedOrPlain(m, digits, unit)}${unit}`;
    if (vs.length < 2) return { m, shown };
    const lo = Math.min(...vs), hi = Math.max(...vs);
    return {
      m,
      shown: `${shown} (median of ${vs.length}: ${signedOrPlain(lo, digits, unit)} to ${
        signedOrPlain(hi, digits, unit)
      })`,
    };
  };
  for (const [scenario, group] of groups) {
    const { mode, concurrency, target } = group[0].m;
    if (target.endsWith("+info") || target === "bare-relay") continue;
    if (concurrency === 50) {
      const p50 = judged(group.map((r) => r.addedP50!), 2, " ms");
      out.push({ name: "added p50 ≤ 1 ms", scenario, value: p50.shown, pass: p50.m <= 1 });
      const p99 = judged(group.map((r) => r.addedP99!), 2, " ms");
      out.push({ name: "added p99 ≤ 5 ms", scenario, value: p99.shown, pass: p99.m <= 5 });
    }
    const ttfts = group.map((r) => r.addedTtft).filter((v) => v !== null);
    if (ttfts.length > 0 && concurrency <= 50) {
      const ttft = judged(ttfts, 2, " ms");
      out.push({ name: "TTFT overhead p50 ≤ 2 ms", scenario, value: ttft.shown, pass: ttft.m <= 2 });
    }
    if (concurrency === 200) {
      // Context for a miss: what a bare Deno relay reached in the same run, and the CPU ceiling of the machine.
      const relays = rs.filter((x) =>
        x.m.target === "bare-relay" && x.m.mode === mode && x.m.concurrency === concurrency &&
        x.m.rate === null && x.ratio !== null
      );
      const ceilings = group.flatMap((r) => {
        const c = cpuCeilingRps(r.m, cpus);
        return c !== null && r.direct ? [Math.min(1, c / r.direct.load.rps)] : [];
      });
      const context = [
        relays.length ? `bare relay ${f(median(relays.map((x) => x.ratio!)), 2)}×` : null,
        ceilings.length ? `CPU ceiling ${f(median(ceilings), 2)}×` : null,
      ].filter((x) => x !== null);
      const ratio = judged(group.map((r) => r.ratio!), 2, "×");
      out.push({
        name: "throughput ≥ 0.8 × direct",
        scenario,
        value: `${ratio.shown}${context.length ? ` (${context.join(", ")})` : ""}`,
        pass: ratio.m >= 0.8,
      });
    }
  }
  const relayHeld = open.find((o) => o.target === "bare-relay");
  const floorHeld = open.find((o) => o.target === SERVE_FLOOR);
  const floors = [
    ...(relayHeld ? [`bare relay ${f(relayHeld.peakRssMb)} MB`] : []),
    ...(floorHeld ? [`Deno.serve alone ${f(floorHeld.peakRssMb)} MB`] : []),
  ];
  for (const o of open) {
    // The target is for 1,000 streams; other counts are printed with the scenario, not judged.
    if (o.target === "bare-relay" || o.target === SERVE_FLOOR || o.streams !== 1000) continue;
    out.push({
      name: "RSS ≤ 150 MB at open streams",
      scenario: `${o.streams} streams ${o.target}`,
      value: `${f(o.peakRssMb)} MB${o.errors ? ` (${o.errors} errors)` : ""}${
        floors.length ? ` (${floors.join(", ")})` : ""
      }`,
      pass: o.peakRssMb <= 150 && o.errors === 0,
    });
  }
  // Every request a proxy answered has exactly one usage row by the end (the counts are cumulative, so the
  // last measurement of each proxy holds them all): none lost, none counted twice.
  const lastOf = new Map<string, Measurement>();
  for (const r of rs) {
    if (r.m.usageRows !== null && r.m.requestsAnswered !== null) lastOf.set(r.m.target, r.m);
  }
  for (const [target, m] of lastOf) {
    out.push({
      name: "one usage row per request",
      scenario: target,
      value: `${m.usageRows} rows for ${m.requestsAnswered} requests`,
      pass: m.usageRows === m.requestsAnswered,
    });
    // Every answer of the fake upstream reports the same input and cache tokens: the aggregates must hold
    // exactly that many per successful request (a tap that missed or double-counted an event would show).
    const t = tokens.get(target);
    if (t) {
      const ok = t.requests - t.errors;
      const expected = [
        ok * USAGE.input_tokens,
        ok * USAGE.cache_read_input_tokens,
        ok *
        USAGE.cache_creation_input_tokens,
      ];
      const got = [t.input_tokens, t.cache_read_tokens, t.cache_creation_tokens];
      out.push({
        name: "tokens recorded exactly",
        scenario: target,
        value: `input ${got[0]}, cache read ${got[1]}, cache write ${got[2]} for ${ok} answers`,
        pass: got.every((g, i) => g === expected[i]),
      });
    }
  }
  for (const fl of flat) {
    out.push({
      name: "RSS flat (±10%) over requests",
      scenario: `${fl.requests} requests ${fl.target}`,
      value: `${fl.rssEvery10kMb.join(" → ")} MB (spread ${(fl.spread * 100).toFixed(1)}%)`,
      pass: fl.spread <= 0.1 && fl.errors === 0,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseFlags(Deno.args);
  const ticks = await clockTicks();
  const cpus = navigator.hardwareConcurrency;
  const pin = o.pin && cpus >= 2;
  const started = new Date();
  const tmp = await Deno.makeTempDir({ prefix: "proxy-bench-" });
  const cleanup: Array<() => Promise<void>> = [async () => await Deno.remove(tmp, { recursive: true })];
  const procs: Proc[] = [];
  const proxies: ProxyUnderTest[] = [];
  const measurements: Measurement[] = [];
  const open: OpenStreamsResult[] = [];
  const flat: FlatResult[] = [];
  const notes: string[] = [];
  try {
    if (o.logsDir) await Deno.mkdir(o.logsDir, { recursive: true });
    const bodyFiles = {} as Record<Mode, string>;
    for (const mode of ["nonstream", "stream"] as const) {
      bodyFiles[mode] = `${tmp}/body-${mode}.json`;
      await Deno.writeFile(bodyFiles[mode], requestBody(mode === "stream", o.bodyKb));
    }

    const tlsArgs: string[] = [];
    if (o.tls) {
      const certs = await makeCertificates(tmp);
      extraEnv.DENO_CERT = certs.ca;
      tlsArgs.push(`--cert=${certs.cert}`, `--key=${certs.key}`);
    }
    const upstream = spawn(
      "upstream",
      pin ? 0 : null,
      [
        "run",
        "-A",
        "bench/upstream.ts",
        `--latency=${o.latencyMs}`,
        `--interval=${o.intervalMs}`,
        `--deltas=${o.deltas}`,
        ...tlsArgs,
      ],
      baseEnv(),
      "piped",
    );
    procs.push(upstream);
    const first = await lines(upstream.child).next();
    if (first.done) throw new Error(`upstream did not start:\n${upstream.stderrTail()}`);
    const upstreamUrl = String(first.value.url);

    const needProxies = o.conc.length > 0 || o.extras.open || o.extras.flat || o.extras.rate;
    const passwordHash = await hashPassword(ADMIN_PASSWORD, 1000);
    const wanted: Array<{ label: string; backend: Backend; logLevel: "warn" | "info" }> = [];
    if (needProxies) {
      for (const b of o.backends) wanted.push({ label: b, backend: b, logLevel: "warn" });
      if (o.infoConc.length > 0 && o.conc.some((c) => o.infoConc.includes(c))) {
        const b = o.backends.includes("postgres") ? "postgres" : o.backends[0];
        if (b) wanted.push({ label: `${b}+info`, backend: b, logLevel: "info" });
      }
    }
    const admin = openPostgres({ url: o.pgUrl, max: 1 });
    let pgOk = true;
    if (wanted.some((w) => w.backend === "postgres")) {
      try {
        await admin.ping();
      } catch (e) {
        pgOk = false;
        notes.push(`PostgreSQL at ${o.pgUrl} unreachable (${(e as Error).message}): postgres skipped`);
        console.log(`! ${notes.at(-1)}`);
      }
    }
    cleanup.push(() => admin.close());
    // Started side by side: a fresh PGlite takes seconds to initialise.
    const starting = wanted.filter((w) => w.backend !== "postgres" || pgOk).map(async (w) => {
      let databaseUrl = "";
      if (w.backend === "postgres") {
        const name = `proxy_bench_${started.getTime()}_${w.logLevel}`;
        await admin.exec(`CREATE DATABASE ${name}`);
        cleanup.push(async () => await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
        const u = new URL(o.pgUrl);
        u.pathname = `/${name}`;
        databaseUrl = u.toString();
      }
      const t0 = performance.now();
      const p = await startProxy({
        ...w,
        upstreamUrl,
        databaseUrl,
        dataDir: `${tmp}/data-${w.label}`,
        passwordHash,
        cpu: pin ? 1 : null,
        denoFlags: o.denoFlags,
        logsDir: o.logsDir,
        env: testedEnv(o),
      });
      procs.push(p.proc);
      if (w.backend === "postgres") p.database = new URL(databaseUrl).pathname.slice(1);
      console.log(
        `proxy ${p.label}: pid ${p.proc.pid}, ready in ${((performance.now() - t0) / 1000).toFixed(1)} s, ` +
          `idle RSS ${f(p.idleRssMb)} MB`,
      );
      return p;
    });
    proxies.push(...await Promise.all(starting));

    const pgLocal = ["127.0.0.1", "localhost", "[::1]"].includes(new URL(o.pgUrl).hostname);
    const ctx: Ctx = {
      o,
      ticks,
      upstream,
      upstreamUrl,
      bodyFiles,
      loadCpu: pin ? 0 : null,
      pgBackends: async (database) => {
        if (!pgLocal || !pgOk) return [];
        const rows = await admin.query<{ pid: number }>(
          sql`SELECT pid FROM pg_stat_activity WHERE datname = ${database}`,
        );
        return rows.map((r) => Number(r.pid));
      },
    };
    const direct: Target = { label: "direct", url: `${upstreamUrl}/v1/messages`, pid: null, proxy: null };
    const proxyTarget = (p: ProxyUnderTest): Target => ({
      label: p.label,
      url: p.messagesUrl,
      pid: p.proc.pid,
      proxy: p,
    });
    let relay: Target | null = null;
    if (
      o.conc.some((c) => o.relayConc.includes(c)) || (o.extras.open && o.relayOpen) ||
      (o.extras.rate && o.relayRate)
    ) {
      const proc = spawn(
        "relay",
        pin ? 1 : null,
        ["run", "-A", "bench/relay.ts", `--upstream=${upstreamUrl}`],
        // glibc's default: the floor is the plain runtime, untuned (a 64 KiB threshold cost its `req.bytes()`
        // chunks +30 % CPU per request).
        baseEnv(),
        "piped",
      );
      procs.push(proc);
      const first = await lines(proc.child).next();
      if (first.done) throw new Error(`relay did not start:\n${proc.stderrTail()}`);
      relay = { label: "bare-relay", url: `${first.value.url}/v1/messages`, pid: proc.pid, proxy: null };
    }
    console.log(
      `upstream ${upstreamUrl}: ${o.latencyMs} ms to headers, ${o.deltas} deltas every ${o.intervalMs} ms; ` +
        `body ${o.bodyKb} KB; ${o.warmupS} s warm-up + ${o.durationS} s per measurement; ` +
        `${cpus} CPUs${pin ? " (proxy pinned to CPU 1, load and upstream to CPU 0)" : ""}; ` +
        `proxies with MALLOC_MMAP_THRESHOLD_=${
          o.mmapThreshold || "glibc's default"
        }, relay with glibc's default`,
    );
    if (o.prewarmS > 0 && (o.conc.length > 0 || o.extras.rate)) {
      // Every process JIT-compiles its hot path before the first measurement, so the first scenario (c=1) is not
      // measured on cold code.
      for (const mode of o.modes) {
        for (const t of [direct, ...(relay ? [relay] : []), ...proxies.map(proxyTarget)]) {
          const load = await runLoad(ctx, {
            ...loadConfig(ctx, mode, t, 50),
            warmupS: 0,
            durationS: o.prewarmS,
          }, {});
          if (t.proxy) t.proxy.answered += load.total;
        }
      }
      console.log(`  warmed every target up: ${o.prewarmS} s per mode at concurrency 50`);
    }
    for (let repeat = 1; repeat <= o.repeat; repeat++) {
      for (const mode of o.modes) {
        for (const c of o.conc) {
          const targetsHere = [
            direct,
            ...(relay && o.relayConc.includes(c) ? [relay] : []),
            ...proxies.filter((p) => p.logLevel === "warn" || o.infoConc.includes(c)).map(proxyTarget),
          ];
          // Every other repeat in reverse, so drift on a shared machine (and a growing usage table) does not
          // always fall on the same targets.
          for (const t of repeat % 2 === 0 ? [...targetsHere].reverse() : targetsHere) {
            const m = await measure(ctx, repeat, mode, c, t);
            measurements.push(m);
            console.log(progressLine(m));
          }
        }
      }
      if (o.extras.rate) {
        // The open loop: the same arrival rate at every target, so the added latency is the proxy's own work and
        // not queueing behind a machine the closed loop keeps saturated.
        for (const mode of o.modes) {
          const rate = o.rates[mode];
          if (rate === 0) continue;
          const targetsHere = [
            direct,
            ...(relay && o.relayRate ? [relay] : []),
            ...proxies.filter((p) => p.logLevel === "warn").map(proxyTarget),
          ];
          for (const t of repeat % 2 === 0 ? [...targetsHere].reverse() : targetsHere) {
            const m = await measure(ctx, repeat, mode, 0, t, rate);
            measurements.push(m);
            console.log(progressLine(m));
          }
        }
      }
    }
    if (o.extras.flat) {
      // One backend by default (PostgreSQL, production's), to keep the default run short; name one with --only.
      const flatOn = o.flatBackends ??
        [proxies.some((p) => p.backend === "postgres") ? "postgres" : "pglite"];
      for (const p of proxies.filter((p) => p.logLevel === "warn" && flatOn.includes(p.backend))) {
        console.log(`  ${o.flatRequests} requests through ${p.label} at concurrency ${o.flatConc}…`);
        const r = await flatRss(ctx, p);
        flat.push(r);
        console.log(`    rows ${r.usageRows}/${r.requestsAnswered}, ${f(r.rps)} req/s`);
      }
    }

    if (o.extras.open) {
      const holders = [
        ...proxies.filter((p) => p.logLevel === "warn").map(proxyTarget),
        ...(relay && o.relayOpen ? [relay] : []),
      ];
      for (const p of holders) {
        console.log(`  holding ${o.openStreams} open streams through ${p.label}…`);
        const r = await openStreams(ctx, p as Target & { pid: number });
        open.push(r);
        console.log(
          `    ${p.label}: idle ${f(r.idleRssMb)} MB, all open ${f(r.rssAtReadyMb)} MB, peak ${
            f(r.peakRssMb)
          } MB, ` +
            `errors ${r.errors}${r.errors ? ` (${r.errorSamples.join("; ")})` : ""}` +
            (r.heapAtReadyMb
              ? `; JS heap ${f(r.heapAtReadyMb.heapUsed)} of ${f(r.heapAtReadyMb.heapTotal)} MB, buffers ${
                f(r.heapAtReadyMb.external)
              } MB (before GC)`
              : ""),
        );
      }
      if (o.relayOpen) {
        // The runtime's own floor for this memory: a fresh fake upstream is a bare Deno.serve that reads each
        // request body whole and holds a stream open, with no fetch and no proxy code at all.
        const floorProc = spawn(
          "serve-floor",
          null,
          [
            "run",
            "-A",
            "bench/upstream.ts",
            "--latency=0",
            `--interval=${o.intervalMs}`,
            `--deltas=${o.deltas}`,
          ],
          baseEnv(),
          "piped",
        );
        procs.push(floorProc);
        const first = await lines(floorProc.child).next();
        if (first.done) throw new Error(`serve floor did not start:\n${floorProc.stderrTail()}`);
        const floor = {
          label: SERVE_FLOOR,
          url: `${first.value.url}/v1/messages`,
          pid: floorProc.pid,
          proxy: null,
        };
        console.log(`  holding ${o.openStreams} open streams in a bare Deno.serve (no fetch, no proxy)…`);
        const r = await openStreams(ctx, floor);
        open.push(r);
        console.log(
          `    ${SERVE_FLOOR}: idle ${f(r.idleRssMb)} MB, all open ${f(r.rssAtReadyMb)} MB, peak ${
            f(r.peakRssMb)
          } MB`,
        );
      }
    }
    // -- report
    const rs = rows(measurements);
    const header = [
      "scenario",
      "target",
      "#",
      "req/s",
      "p50 ms",
      "p99 ms",
      "ttft50",
      "+p50",
      "+p99",
      "+ttft50",
      "×direct",
      "cpu-s/1k",
      "pg cpu",
      "rss MB",
      "load cpu",
      "usage rows",
    ];
    const body = rs.map((r) => [
      scenarioOf(r.m),
      r.m.target,
      String(r.m.repeat),
      f(r.m.load.rps),
      f(r.m.load.latency.p50),
      f(r.m.load.latency.p99),
      f(r.m.load.ttft?.p50),
      signed(r.addedP50, 2),
      signed(r.addedP99, 2),
      signed(r.addedTtft, 2),
      f(r.ratio, 2),
      f(r.m.proxyCpuPer1k, 2),
      f(r.m.pgCpuPer1k, 2),
      f(r.m.proxyPeakRssMb, 0),
      `${(r.m.load.cpuShare * 100).toFixed(0)}%`,
      r.m.usageRows === null
        ? "-"
        : `${r.m.usageRows}/${r.m.requestsAnswered}${r.m.load.errors ? ` err ${r.m.load.errors}` : ""}`,
    ]);
    console.log("\n" + table(header, body));
    const tokens = new Map<string, TokenTotals | null>();
    for (const p of proxies) tokens.set(p.label, await tokenTotals(p));
    const ts = targets(rs, open, flat, cpus, tokens);
    if (ts.length > 0) {
      console.log("\nTargets");
      console.log(table(
        ["target", "scenario", "", "value", "result"],
        ts.map((t) => [t.name, t.scenario, "", t.value, t.pass ? "PASS" : "MISS"]),
      ));
    }
    if (o.repeat > 1) {
      console.log("\nNoise across repeats (min–max as % of the median)");
      const groups = new Map<string, Measurement[]>();
      for (const m of measurements) {
        const k = `${scenarioOf(m)} ${m.target}`;
        groups.set(k, [...(groups.get(k) ?? []), m]);
      }
      for (const [k, ms] of groups) {
        const spread = (vs: number[]) => {
          const s = [...vs].sort((a, b) => a - b);
          const med = s[Math.floor(s.length / 2)];
          return `${f(med)} (${f(((s[s.length - 1] - s[0]) / med) * 100, 0)}%)`;
        };
        console.log(
          `  ${k.padEnd(30)} req/s ${spread(ms.map((m) => m.load.rps))}  p50 ${
            spread(ms.map((m) => m.load.latency.p50))
          }  p99 ${spread(ms.map((m) => m.load.latency.p99))}`,
        );
      }
    }
    for (const p of proxies) {
      console.log(`proxy ${p.label}: VmHWM ${f(rssMb(p.proc.pid, "VmHWM"))} MB over the whole run`);
    }

    const out = o.out ??
      new URL(`results/${started.toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url).pathname;
    await Deno.mkdir(out.slice(0, out.lastIndexOf("/")), { recursive: true });
    const git = await new Deno.Command("git", {
      args: ["rev-parse", "--short", "HEAD"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "null",
    })
      .output().then((r) => decoder.decode(r.stdout).trim()).catch(() => "");
    await Deno.writeTextFile(
      out,
      JSON.stringify(
        {
          startedAt: started.toISOString(),
          durationS: (Date.now() - started.getTime()) / 1000,
          git,
          deno: Deno.version.deno,
          cpus,
          loadavg: Deno.loadavg(),
          clockTicks: ticks,
          options: o,
          notes,
          proxies: proxies.map((p) => ({
            label: p.label,
            backend: p.backend,
            logLevel: p.logLevel,
            idleRssMb: p.idleRssMb,
            vmHwmMb: rssMb(p.proc.pid, "VmHWM"),
          })),
          measurements: rs.map((r) => ({
            ...r.m,
            addedP50: r.addedP50,
            addedP99: r.addedP99,
            addedTtftP50: r.addedTtft,
            ratioToDirect: r.ratio,
          })),
          openStreams: open,
          flat,
          targets: ts,
        },
        null,
        2,
      ),
    );
    console.log(`\nwrote ${out} (${((Date.now() - started.getTime()) / 1000).toFixed(0)} s)`);
  } finally {
    for (const p of procs.reverse()) await stop(p);
    for (const c of cleanup.reverse()) {
      await c().catch((e) => console.error(`cleanup: ${(e as Error).message}`));
    }
  }
}

if (import.meta.main) await main();
