/** CDK context (`-c key=value`) → typed {@link ProxyStackProps}. Every problem is reported at once. */
import { type DeployEnvironment, ENV_DEFAULTS, isCidr, type ProxyStackProps } from "./proxy_stack.ts";

export const DEFAULT_REGION = "ap-northeast-2";

/** Context keys this app reads. */
export const CONTEXT_KEYS = [
  "region",
  "environment",
  "desiredCount",
  "maxCount",
  "cpu",
  "memoryMiB",
  "dbInstanceClass",
  "domainName",
  "certificateArn",
  "adminAllowedCidrs",
  "alarmEmail",
  "logLevel",
  "timezone",
  "bedrockRegion",
  "bedrockUseDefaultCredentials",
  "clientSocketWatch",
  "allowPlainHttp",
] as const;

export type ContextKey = typeof CONTEXT_KEYS[number];

export interface StackSettings {
  readonly stackName: string;
  readonly props: ProxyStackProps;
}

function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const s = String(value).trim();
  return s === "" ? undefined : s;
}

/** Fargate's CPU units and, for each, the memory sizes (MiB) it can have. */
const FARGATE_MEMORY: Record<number, (memoryMiB: number) => boolean> = {
  256: (m) => [512, 1024, 2048].includes(m),
  512: (m) => m >= 1024 && m <= 4096 && m % 1024 === 0,
  1024: (m) => m >= 2048 && m <= 8192 && m % 1024 === 0,
  2048: (m) => m >= 4096 && m <= 16384 && m % 1024 === 0,
  4096: (m) => m >= 8192 && m <= 30720 && m % 1024 === 0,
  8192: (m) => m >= 16384 && m <= 61440 && m % 4096 === 0,
  16384: (m) => m >= 32768 && m <= 122880 && m % 8192 === 0,
};

/**
 * Reads the app's settings from CDK context; throws one error naming every invalid value. `given`: the keys
 * set on the command line, so a misspelt one (`-c enviroment=prod`) is refused instead of ignored.
 */
export function settingsFromContext(
  get: (key: ContextKey) => unknown,
  given: readonly string[] = [],
): StackSettings {
  const problems: string[] = [];
  for (const key of given) {
    if ((CONTEXT_KEYS as readonly string[]).includes(key)) continue;
    const near = CONTEXT_KEYS.find((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= 2);
    problems.push(
      `unknown context key ${JSON.stringify(key)}${near ? `; did you mean ${near}?` : ""} (known: ${
        CONTEXT_KEYS.join(", ")
      })`,
    );
  }

  const integer = (key: ContextKey): number | undefined => {
    const s = text(get(key));
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n) || n <= 0) {
      problems.push(`${key} must be a positive integer, got ${JSON.stringify(s)}`);
      return undefined;
    }
    return n;
  };

  const environment = (text(get("environment")) ?? "dev") as DeployEnvironment;
  if (environment !== "dev" && environment !== "prod") {
    problems.push(`environment must be "dev" or "prod", got ${JSON.stringify(environment)}`);
  }
  const region = text(get("region")) ?? DEFAULT_REGION;
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
    problems.push(`region must be an AWS region such as ap-northeast-2, got ${JSON.stringify(region)}`);
  }

  const desiredCount = integer("desiredCount");
  if (desiredCount !== undefined && desiredCount < 2) {
    problems.push(`desiredCount must be at least 2 (two tasks across two AZs), got ${desiredCount}`);
  }

  const rawCidrs = get("adminAllowedCidrs");
  const adminAllowedCidrs =
    (Array.isArray(rawCidrs) ? rawCidrs.map(String) : (text(rawCidrs) ?? "").split(","))
      .map((c) => c.trim())
      .filter((c) => c !== "");
  for (const c of adminAllowedCidrs) {
    if (!isCidr(c)) problems.push(`adminAllowedCidrs: not a CIDR: ${JSON.stringify(c)}`);
  }

  const certificateArn = text(get("certificateArn"));
  if (certificateArn !== undefined && !certificateArn.startsWith("arn:aws")) {
    problems.push(`certificateArn must be an ACM certificate ARN, got ${JSON.stringify(certificateArn)}`);
  } else if (certificateArn !== undefined && !certificateArn.includes(`:${region}:`)) {
    problems.push(
      `certificateArn must be in the stack's region ${region} (an ALB needs a same-region certificate)`,
    );
  }

  const allowPlainHttp = text(get("allowPlainHttp"));
  if (allowPlainHttp !== undefined && allowPlainHttp !== "true" && allowPlainHttp !== "false") {
    problems.push(`allowPlainHttp must be true or false, got ${JSON.stringify(allowPlainHttp)}`);
  }
  if (environment === "prod" && get("certificateArn") === undefined && allowPlainHttp !== "true") {
    problems.push(
      "environment=prod needs certificateArn: without it access keys, API keys and the admin password cross " +
        "the internet as plain HTTP (pass -c allowPlainHttp=true to deploy without TLS anyway)",
    );
  }

  const alarmEmail = text(get("alarmEmail"));
  if (alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alarmEmail)) {
    problems.push(`alarmEmail is not an e-mail address: ${JSON.stringify(alarmEmail)}`);
  }

  // Checked here as the app checks them at start: a task that exits on bad configuration is found only after
  // a long rollback. debug or info only: the request-count and fallback alarms count the per-request `info`
  // lines, and the flush-failure alarm a `warn` line, so a quieter level would silence them.
  const logLevel = text(get("logLevel"))?.toLowerCase();
  if (logLevel !== undefined && logLevel !== "debug" && logLevel !== "info") {
    problems.push(
      `logLevel must be info or debug (the alarms count the per-request info lines), got ${
        JSON.stringify(logLevel)
      }`,
    );
  }
  const timezone = text(get("timezone"));
  if (timezone !== undefined) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    } catch {
      problems.push(`timezone must be an IANA time zone such as Asia/Seoul, got ${JSON.stringify(timezone)}`);
    }
  }
  const bedrockRegion = text(get("bedrockRegion"));
  if (bedrockRegion !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(bedrockRegion)) {
    problems.push(
      `bedrockRegion must be an AWS region such as us-east-1, got ${JSON.stringify(bedrockRegion)}`,
    );
  }

  const flag = (key: ContextKey): boolean | undefined => {
    const value = text(get(key));
    if (value !== undefined && value !== "true" && value !== "false") {
      problems.push(`${key} must be true or false, got ${JSON.stringify(value)}`);
    }
    return value === undefined ? undefined : value === "true";
  };
  const useDefault = flag("bedrockUseDefaultCredentials");
  const clientSocketWatch = flag("clientSocketWatch");

  const cpu = integer("cpu");
  const memoryMiB = integer("memoryMiB");
  const sizes = ENV_DEFAULTS[environment] ?? ENV_DEFAULTS.dev;
  if (cpu !== undefined || memoryMiB !== undefined) {
    const [c, m] = [cpu ?? sizes.cpu, memoryMiB ?? sizes.memoryMiB];
    const fits = FARGATE_MEMORY[c];
    if (!fits) {
      problems.push(`cpu must be a Fargate size (${Object.keys(FARGATE_MEMORY).join(", ")}), got ${c}`);
    } else if (!fits(m)) {
      problems.push(
        `memoryMiB ${m} is not a Fargate size for cpu ${c}; see "Task CPU and memory" in the ECS documentation`,
      );
    }
  }

  const props: ProxyStackProps = {
    env: { region },
    environment,
    desiredCount,
    maxCount: integer("maxCount"),
    cpu,
    memoryMiB,
    dbInstanceClass: text(get("dbInstanceClass"))?.replace(/^db\./, ""),
    domainName: text(get("domainName")),
    certificateArn,
    adminAllowedCidrs,
    alarmEmail,
    logLevel,
    timezone,
    bedrockRegion,
    bedrockUseDefaultCredentials: useDefault,
    clientSocketWatch,
    description: `Claude Code proxy with Amazon Bedrock fallback (${environment})`,
    terminationProtection: environment === "prod",
  };

  if (problems.length > 0) {
    throw new Error(`Invalid CDK context:\n  - ${problems.join("\n  - ")}`);
  }
  return { stackName: `ClaudeCodeProxy-${environment}`, props };
}

/** Parses `-c key=value` / `--context key=value` pairs from a command line (for `deno task synth -c ...`). */
export function contextFromArgs(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    let pair: string | undefined;
    if (arg === "-c" || arg === "--context") pair = args[++i];
    else if (arg.startsWith("--context=")) pair = arg.slice("--context=".length);
    else throw new Error(`unexpected argument ${JSON.stringify(arg)}; use -c key=value`);
    const eq = pair?.indexOf("=") ?? -1;
    if (pair === undefined || eq <= 0) throw new Error(`expected key=value after ${arg}`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Levenshtein distance, for suggesting the key a misspelt one meant. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}
