/**
 * Configuration: every `PROXY_*` variable is read here, once, validated with zod and frozen.
 * Nothing else in the program reads `Deno.env`.
 *
 * In production a missing or weak secret stops start-up; in development missing secrets are generated and kept
 * under the data dir so restarts keep sessions, access keys and encrypted credentials valid.
 *
 * @example
 * ```ts
 * const config = await loadConfig(Deno.env.toObject());
 * console.log(config.port); // 8000
 * ```
 */
import { z } from "zod";
import { join } from "node:path";
import { type ModelPrice, parsePricingJson } from "./usage/pricing.ts";
import { isCidr } from "./net/cidr.ts";
import { APP_ROLE_NAME } from "./db/app_role.ts";
import { base64Decode } from "./encoding.ts";

/** The frozen, validated configuration the whole program reads. */
export interface Config {
  readonly env: "development" | "production" | "test";
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly databaseUrl: string;
  readonly databasePoolSize: number;
  /**
   * The application's own database role, which `migrate` creates or updates and grants row access to (the app
   * then connects as it, without the owner's rights); null when not used.
   */
  readonly databaseAppRole: { readonly user: string; readonly password: string } | null;
  readonly keyHasherSecret: string;
  readonly jwtSecret: string;
  readonly jwtTtlSeconds: number;
  readonly adminUsername: string;
  readonly adminPasswordHash: string;
  readonly localEncryptionKey: Uint8Array;
  readonly planApiKey: string;
  readonly planApiUrl: string;
  readonly bedrockRegion: string;
  readonly bedrockDefaultModel: string;
  readonly bedrockEndpoint: string;
  readonly bedrockUseDefaultCredentials: boolean;
  readonly bedrockModelMap: Readonly<Record<string, string>>;
  readonly bedrockAllowedBetas: readonly string[] | null;
  readonly bedrockAllowedFields: readonly string[] | null;
  readonly bedrockDroppedFields: readonly string[] | null;
  readonly modelPricing: Readonly<Record<string, ModelPrice>>;
  readonly kmsKeyId: string;
  readonly kmsEndpoint: string;
  readonly circuitFailureThreshold: number;
  readonly circuitFailureWindow: number;
  readonly circuitResetTimeout: number;
  readonly accessKeyCacheTtl: number;
  readonly bedrockKeyCacheTtl: number;
  readonly timezone: string;
  readonly logLevel: LogLevelName;
  readonly maxBodyBytes: number;
  /** The time a request body may take to arrive whole (a client trickling it holds a request open). */
  readonly requestBodyTimeoutMs: number;
  readonly upstreamConnectTimeoutMs: number;
  /** Streams: until the first event. */
  readonly upstreamFirstByteTimeoutMs: number;
  /** Non-streaming calls: until the answer, which Anthropic sends whole (its headers come with it). */
  readonly upstreamResponseTimeoutMs: number;
  /**
   * Connections the requests to each upstream (the Anthropic API, Bedrock) are spread over: an HTTP/2 server
   * caps the streams of one connection, and requests past the cap wait for a stream to end.
   */
  readonly upstreamConnections: number;
  /** An HTTP(S)_PROXY is set: fetch goes through it, so a direct TCP probe of the upstream says nothing. */
  readonly egressProxy: boolean;
  readonly shutdownDrainSeconds: number;
  readonly usageFlushIntervalMs: number;
  readonly usageQueueMax: number;
  readonly trustForwardedFor: boolean;
  readonly metricsToken: string;
  readonly usageRetentionDays: number;
  readonly adminAllowedCidrs: readonly string[] | null;
  /** Secrets that were generated in development this start (names only), to warn about. */
  readonly generatedSecrets: readonly string[];
  /** The admin password when it was generated this start: printed once, never logged. */
  readonly generatedAdminPassword: string | null;
}

/** Log level names accepted by `PROXY_LOG_LEVEL`. */
export type LogLevelName = "debug" | "info" | "warn" | "error";

/** Thrown when configuration is invalid; the message lists every problem, one per line. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

const SECRET_MIN_LENGTH = 32;
/**
 * The longest admin user name, in UTF-16 code units (JavaScript's `length`). Sign-in refuses a longer one before
 * counting it as a failure, so made-up names cannot make the throttle hold megabytes; the configured name is held
 * to the same bound so the admin can always sign in.
 */
export const MAX_ADMIN_USERNAME_LENGTH = 256;
const PLACEHOLDER_SECRETS = new Set([
  "dev-secret-key-for-local-development",
  "dev-jwt-secret-for-local-development",
  "changeme",
  "secret",
  "0123456789abcdef0123456789abcdef", // this repository's test key
]);

/**
 * Marks a `PROXY_LOCAL_ENCRYPTION_KEY` given as base64: 32 random bytes, the full 256 bits of the AES key. Without
 * it the value's own 32 bytes are the key, and text typed or generated as characters carries fewer bits
 * (`openssl rand -base64 24` gives 192).
 */
export const BASE64_KEY_PREFIX = "base64:";

/** The largest `PROXY_MAX_BODY_BYTES` (256 MiB). */
export const MAX_BODY_BYTES_LIMIT = 256 * 1024 * 1024;

/** The bytes of a `base64:` key, or null when what follows the prefix is not standard padded base64. */
function decodeBase64Key(value: string): Uint8Array<ArrayBuffer> | null {
  const text = value.slice(BASE64_KEY_PREFIX.length).trim();
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  return base64Decode(text);
}

const intIn = (min: number, max: number) =>
  z.string().trim().regex(/^-?\d+$/, `expected an integer between ${min} and ${max}`).transform(Number)
    .refine((n) => n >= min && n <= max, `expected an integer between ${min} and ${max}`);

const bool = z.string().trim().toLowerCase().refine(
  (v) => ["true", "false", "1", "0", "yes", "no", ""].includes(v),
  "expected true or false",
).transform((v) => v === "true" || v === "1" || v === "yes");

const httpUrl = z.string().trim().refine((v) => {
  try {
    const u = new URL(v);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}, "expected an http(s) URL such as https://api.anthropic.com").transform((v) => v.replace(/\/+$/, ""));

const optionalUrl = z.string().trim().refine((v) => {
  if (v === "") return true;
  try {
    const u = new URL(v);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}, "expected an http(s) URL or empty").transform((v) => v.replace(/\/+$/, ""));

/** The `sslmode` values the PostgreSQL connection understands (see `lib/db/postgres.ts`). */
const SSL_MODES = ["disable", "prefer", "require", "verify-full"] as const;

const databaseUrl = z.string().trim().refine(
  (v) => {
    if (v === "") return true;
    try {
      const u = new URL(v);
      return u.protocol === "postgres:" || u.protocol === "postgresql:";
    } catch {
      return false;
    }
  },
  "expected postgres://user:password@host:5432/dbname, with / ? # @ : in the password percent-encoded (or empty for the embedded database)",
).refine(
  (v) => {
    if (!URL.canParse(v)) return true; // the check above says what is wrong
    const params = new URL(v).searchParams;
    const mode = params.get("sslmode");
    // `ssl=true` (another driver's spelling) used to connect in the clear without a word.
    return !params.has("ssl") && (mode === null || (SSL_MODES as readonly string[]).includes(mode));
  },
  // Any other value used to mean no TLS at all, a typo included.
  "has an sslmode (or ssl) the proxy does not support; expected sslmode=disable, prefer, require or verify-full (verify-full checks the certificate and the host name; verify-ca and allow are not supported)",
).refine(
  (v) => {
    if (!URL.canParse(v)) return true;
    const params = new URL(v).searchParams;
    return !params.has("sslrootcert") || params.get("sslmode") === "verify-full";
  },
  // With any other mode the certificate would look checked and not be.
  "has sslrootcert without sslmode=verify-full; expected sslmode=verify-full&sslrootcert=<PEM file or rds>",
);

const timeZone = z.string().trim().refine((tz) => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, "expected an IANA time zone such as UTC, Europe/Berlin or Asia/Seoul");

const jsonObjectOf = (valueCheck: (v: unknown) => boolean, what: string) =>
  z.string().trim().transform((text, ctx) => {
    if (text === "") return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: `not valid JSON (${(e as Error).message}); expected ${what}` });
      return z.NEVER;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      ctx.addIssue({ code: "custom", message: `expected ${what}` });
      return z.NEVER;
    }
    for (const [k, v] of Object.entries(parsed)) {
      if (!valueCheck(v)) {
        ctx.addIssue({ code: "custom", message: `entry "${k}" is invalid; expected ${what}` });
        return z.NEVER;
      }
    }
    return parsed as Record<string, string>;
  });

const csvList = z.string().trim().transform((v) =>
  v === "" ? null : v.split(",").map((s) => s.trim()).filter((s) => s !== "")
);

/** The admin password hash formats: `deno task hash-password`'s, and a legacy bare SHA-256. */
const ADMIN_HASH_FORMATS = [/^pbkdf2-sha256\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/, /^[0-9a-fA-F]{64}$/];

/**
 * Whether a URL takes `host` as its host name. The setter ignores what it cannot take (a port, a space) and
 * leaves the one before: a database URL built from it would connect to localhost by mistake.
 */
function hostSurvivesUrl(host: string): boolean {
  const u = new URL("postgres://localhost");
  u.hostname = host;
  const bare = (h: string) => h.replace(/^\[|\]$/g, "").toLowerCase();
  return bare(u.hostname) === bare(host);
}

const schema = z.object({
  PROXY_ENV: z.enum(["development", "production", "test"], {
    error: "expected development or production",
  }).default("development"),
  PROXY_HOST: z.string().trim().regex(
    // A name or IPv4 address, or an IPv6 one (two colons at least: `0.0.0.0:80` is an address and a port).
    /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|(?=(?:[^:]*:){2})[0-9A-Fa-f:.]+)$/,
    "expected a host name or address to listen on, such as 0.0.0.0, 127.0.0.1 or :: (the port goes in PROXY_PORT)",
  ).optional(),
  PROXY_PORT: intIn(0, 65535).default(8000),
  PROXY_DATA_DIR: z.string().trim().min(1, "expected a directory path").default(".data"),
  PROXY_DATABASE_URL: databaseUrl.default(""),
  PROXY_DB_HOST: z.string().trim().refine(
    (v) => v === "" || hostSurvivesUrl(v),
    "is not a host name or address; expected e.g. db.internal or 10.0.3.7 (the port goes in PROXY_DB_PORT)",
  ).default(""),
  PROXY_DB_PORT: intIn(1, 65535).default(5432),
  PROXY_DB_NAME: z.string().trim().default("postgres"),
  PROXY_DB_USER: z.string().trim().default("postgres"),
  PROXY_DB_PASSWORD: z.string().default(""),
  PROXY_DB_SSLMODE: z.enum(SSL_MODES, {
    error: "expected disable, prefer, require or verify-full",
  }).default("prefer"),
  PROXY_DB_SSLROOTCERT: z.string().trim().default(""),
  PROXY_DATABASE_POOL_SIZE: intIn(1, 200).default(10),
  PROXY_DB_APP_USER: z.string().trim().regex(
    APP_ROLE_NAME,
    "expected a role name of lowercase letters, digits and _, not a reserved one (public, user, pg_…), e.g. proxy_app",
  ).or(z.literal("")).default(""),
  PROXY_DB_APP_PASSWORD: z.string().refine(
    (v) => v === "" || /^[\x20-\x7e]+$/.test(v),
    "must be printable ASCII (migrate sends PostgreSQL a SCRAM verifier of it, not the password itself)",
  ).default(""),
  PROXY_KEY_HASHER_SECRET: z.string().default(""),
  PROXY_JWT_SECRET: z.string().default(""),
  PROXY_JWT_TTL_SECONDS: intIn(60, 7 * 24 * 3600).default(12 * 3600),
  PROXY_ADMIN_USERNAME: z.string().trim().min(1, "expected a user name").max(
    MAX_ADMIN_USERNAME_LENGTH,
    `expected at most ${MAX_ADMIN_USERNAME_LENGTH} characters (sign-in refuses longer user names)`,
  ).default("admin"),
  PROXY_ADMIN_PASSWORD_HASH: z.string().trim().refine(
    (v) => v === "" || ADMIN_HASH_FORMATS.some((f) => f.test(v)),
    "unrecognised format; expected pbkdf2-sha256$<iterations>$<salt>$<hash> from `deno task hash-password` " +
      "(or a 64-hex SHA-256)",
  ).default(""),
  PROXY_LOCAL_ENCRYPTION_KEY: z.string().superRefine((v, ctx) => {
    if (v === "") return;
    if (v.startsWith(BASE64_KEY_PREFIX)) {
      const decoded = decodeBase64Key(v);
      if (decoded === null) {
        ctx.addIssue({
          code: "custom",
          message: `is not base64 after "${BASE64_KEY_PREFIX}"; expected 44 characters of standard base64 ` +
            "(e.g. `openssl rand -base64 32`)",
        });
      } else if (decoded.length !== 32) {
        ctx.addIssue({
          code: "custom",
          message:
            `decodes to ${decoded.length} bytes; expected exactly 32 (\`openssl rand -base64 32\` gives them)`,
        });
      }
      return;
    }
    const bytes = new TextEncoder().encode(v).length;
    if (bytes !== 32) {
      ctx.addIssue({
        code: "custom",
        message: `is ${bytes} bytes; expected exactly 32 bytes (e.g. 32 ASCII characters), or ` +
          `${BASE64_KEY_PREFIX} and 32 bytes in base64`,
      });
    }
  }).default(""),
  PROXY_PLAN_API_KEY: z.string().trim().default(""),
  PROXY_PLAN_API_URL: httpUrl.default("https://api.anthropic.com"),
  PROXY_UPSTREAM_CONNECTIONS: intIn(1, 256).default(8),
  PROXY_BEDROCK_REGION: z.string().trim().regex(
    /^[a-z]{2}(-[a-z]+)+-\d$/,
    "expected an AWS region such as ap-northeast-2",
  )
    .default("ap-northeast-2"),
  PROXY_BEDROCK_DEFAULT_MODEL: z.string().trim().min(1, "expected a Bedrock model id").default(
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
  ),
  PROXY_BEDROCK_ENDPOINT: optionalUrl.default(""),
  PROXY_BEDROCK_USE_DEFAULT_CREDENTIALS: bool.default(false),
  PROXY_BEDROCK_MODEL_MAP: jsonObjectOf(
    (v) => typeof v === "string" && v.length > 0,
    'a JSON object of requested model name to Bedrock model id, e.g. {"claude-sonnet-4-5":"global.anthropic.claude-sonnet-4-5-20250929-v1:0"}',
  ).default({}),
  PROXY_BEDROCK_ALLOWED_BETAS: csvList.default(null),
  PROXY_BEDROCK_ALLOWED_FIELDS: csvList.default(null),
  PROXY_BEDROCK_DROPPED_FIELDS: csvList.default(null),
  PROXY_MODEL_PRICING: z.string().trim().superRefine((v, ctx) => {
    if (v === "") return;
    try {
      parsePricingJson(v);
    } catch (e) {
      // The value itself is shown after the message ("got …"): not twice.
      const message = (e as Error).message.replace(/^PROXY_MODEL_PRICING: /, "")
        .replace(/^(expected a JSON object\b.*), got .*$/s, "$1");
      ctx.addIssue({ code: "custom", message });
    }
  }).default(""),
  PROXY_KMS_KEY_ID: z.string().trim().default(""),
  PROXY_KMS_ENDPOINT: optionalUrl.default(""),
  PROXY_CIRCUIT_FAILURE_THRESHOLD: intIn(1, 1000).default(3),
  PROXY_CIRCUIT_FAILURE_WINDOW: intIn(1, 86400).default(60),
  PROXY_CIRCUIT_RESET_TIMEOUT: intIn(1, 7 * 86400).default(1800),
  PROXY_ACCESS_KEY_CACHE_TTL: intIn(0, 86400).default(60),
  PROXY_BEDROCK_KEY_CACHE_TTL: intIn(0, 86400).default(300),
  PROXY_TIMEZONE: timeZone.default("UTC"),
  PROXY_LOG_LEVEL: z.string().trim().toLowerCase().pipe(
    z.enum(["debug", "info", "warn", "error"], { error: "expected debug, info, warn or error" }),
  ).default("info"),
  // At most 256 MiB: a body must fit in one JavaScript string (V8's largest is 2^29 - 24 characters) to be
  // checked as JSON and translated for Bedrock; past that the body scan's answer and JSON.parse's would differ.
  PROXY_MAX_BODY_BYTES: intIn(1024, MAX_BODY_BYTES_LIMIT).default(32 * 1024 * 1024),
  PROXY_REQUEST_BODY_TIMEOUT_MS: intIn(100, 3_600_000).default(300_000),
  PROXY_UPSTREAM_CONNECT_TIMEOUT_MS: intIn(100, 600_000).default(10_000),
  PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS: intIn(100, 3_600_000).default(300_000),
  PROXY_UPSTREAM_RESPONSE_TIMEOUT_MS: intIn(100, 3_600_000).default(600_000),
  PROXY_SHUTDOWN_DRAIN_SECONDS: intIn(0, 3600).default(25),
  PROXY_USAGE_FLUSH_INTERVAL_MS: intIn(10, 60_000).default(1000),
  PROXY_USAGE_QUEUE_MAX: intIn(100, 10_000_000).default(50_000),
  PROXY_TRUST_FORWARDED_FOR: bool.default(false),
  PROXY_METRICS_TOKEN: z.string().trim().default(""),
  PROXY_USAGE_RETENTION_DAYS: intIn(0, 36500).default(90),
  PROXY_ADMIN_ALLOWED_CIDRS: csvList.refine(
    (list) => list === null || list.length > 0,
    "lists no network (only commas), which would refuse every address; expected CIDR blocks, or leave it empty to allow any",
  ).refine(
    (list) => list === null || list.every(isCidr),
    "expected a comma list of CIDR blocks such as 10.0.0.0/8,192.168.1.7/32,2001:db8::/32",
  ).default(null),
});

type Parsed = z.infer<typeof schema>;

/** Development secrets persisted under the data dir so that restarts keep everything valid. */
interface DevSecrets {
  keyHasherSecret?: string;
  jwtSecret?: string;
  localEncryptionKey?: string;
  adminPasswordHash?: string;
}

/** Hooks `loadConfig` uses for what is not pure parsing; tests replace them. */
export interface ConfigIo {
  readSecrets(path: string): Promise<DevSecrets | null>;
  writeSecrets(path: string, secrets: DevSecrets): Promise<void>;
  hashPassword(password: string): Promise<string>;
}

/** How {@link loadConfig} reads the environment. */
export interface LoadOptions {
  /**
   * Only the database is used (`main.ts migrate`, `main.ts replay-usage`): in production the secrets only the
   * server uses (the key hasher's, the JWT's, the encryption key, the admin password hash) may be absent, so the
   * container that migrates, or whoever replays usage, is not handed them. Set, they are still checked.
   */
  databaseOnly?: boolean;
}

/**
 * Parses and validates the environment; in development fills missing secrets from (or into) the data dir.
 * Throws a {@link ConfigError} that names every problem at once.
 */
export async function loadConfig(
  env: Record<string, string | undefined>,
  io: ConfigIo,
  opts: LoadOptions = {},
): Promise<Config> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined) input[key] = value;
  }
  const result = schema.safeParse(input);
  // A misspelt name would otherwise be ignored without a word, and its setting left at the default: a
  // PROXY_ADMIN_ALLOWED_CIDR (no S) left /admin open to everyone.
  const problems: string[] = unknownVariables(env);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const name = String(issue.path[0] ?? "?");
      const raw = env[name];
      const shown = raw === undefined ? "" : ` (got ${describeValue(name, raw)})`;
      problems.push(`${name}: ${issue.message}${shown}`);
    }
    // The secrets are checked below, once the values parse; their absence and their weakness are known already,
    // and an operator should not learn of them only after fixing everything else and starting again.
    if (env.PROXY_ENV?.trim() === "production") {
      problems.push(
        ...missingProductionSecrets(env, opts.databaseOnly === true),
        ...weakProductionSecrets(env, new Set(result.error.issues.map((issue) => String(issue.path[0])))),
      );
    }
    throw new ConfigError(problems);
  }
  const p: Parsed = result.data;
  const production = p.PROXY_ENV === "production";

  const secretsPath = join(p.PROXY_DATA_DIR, "secrets.json");
  let devSecrets: DevSecrets | null = null;
  const generated: string[] = [];
  let generatedAdminPassword: string | null = null;

  const needsDev = !production &&
    (p.PROXY_KEY_HASHER_SECRET === "" || p.PROXY_JWT_SECRET === "" || p.PROXY_LOCAL_ENCRYPTION_KEY === "" ||
      p.PROXY_ADMIN_PASSWORD_HASH === "");
  // With the misspelt names found so far: they may be why the data dir is the wrong one.
  const dataDirProblem = (e: unknown) =>
    new ConfigError([
      ...problems,
      `PROXY_DATA_DIR: ${(e as Error).message}; expected a directory this process may write`,
    ]);
  if (needsDev) {
    devSecrets = (await io.readSecrets(secretsPath).catch((e) => Promise.reject(dataDirProblem(e)))) ?? {};
  }
  let devChanged = false;

  const secret = (name: string, value: string, field: keyof DevSecrets, make: () => string): string => {
    if (value !== "") {
      const weak = production ? weakSecret(name, value) : null;
      if (weak) problems.push(weak);
      return value;
    }
    if (production) {
      if (!opts.databaseOnly) problems.push(MISSING.secret(name));
      return "";
    }
    const stored = devSecrets?.[field];
    if (stored) return stored;
    const made = make();
    devSecrets![field] = made;
    devChanged = true;
    generated.push(name);
    return made;
  };

  const keyHasherSecret = secret(
    "PROXY_KEY_HASHER_SECRET",
    p.PROXY_KEY_HASHER_SECRET,
    "keyHasherSecret",
    randomSecret,
  );
  const jwtSecret = secret("PROXY_JWT_SECRET", p.PROXY_JWT_SECRET, "jwtSecret", randomSecret);

  // Empty when unset in production with KMS: old local-scheme rows are then unreadable rather than readable
  // under a guessable all-zero key.
  let localEncryptionKey = new Uint8Array(0);
  const rawLocalKey = p.PROXY_LOCAL_ENCRYPTION_KEY;
  if (rawLocalKey !== "") {
    const bytes = localKeyBytes(rawLocalKey)!; // 32 bytes either way: checked with the other values
    if (production && weakLocalKey(rawLocalKey)) problems.push(WEAK_LOCAL_KEY);
    else localEncryptionKey = bytes;
  } else if (production) {
    if (p.PROXY_KMS_KEY_ID === "" && !opts.databaseOnly) {
      problems.push(MISSING.localKey);
    }
  } else {
    const stored = devSecrets?.localEncryptionKey;
    if (stored) localEncryptionKey = new TextEncoder().encode(stored);
    else {
      const made = randomSecret().slice(0, 32);
      devSecrets!.localEncryptionKey = made;
      devChanged = true;
      generated.push("PROXY_LOCAL_ENCRYPTION_KEY");
      localEncryptionKey = new TextEncoder().encode(made);
    }
  }

  let adminPasswordHash = p.PROXY_ADMIN_PASSWORD_HASH;
  if (adminPasswordHash === "") {
    if (production) {
      if (!opts.databaseOnly) problems.push(MISSING.adminHash);
    } else if (devSecrets?.adminPasswordHash) {
      adminPasswordHash = devSecrets.adminPasswordHash;
    } else {
      generatedAdminPassword = randomSecret().slice(0, 20);
      adminPasswordHash = await io.hashPassword(generatedAdminPassword);
      devSecrets!.adminPasswordHash = adminPasswordHash;
      devChanged = true;
      generated.push("PROXY_ADMIN_PASSWORD_HASH");
    }
  }

  let databaseUrlValue = p.PROXY_DATABASE_URL;
  if (databaseUrlValue === "" && p.PROXY_DB_HOST !== "") {
    const u = new URL("postgres://localhost");
    u.hostname = p.PROXY_DB_HOST; // checked with the other values: see hostSurvivesUrl
    u.port = String(p.PROXY_DB_PORT);
    u.pathname = `/${encodeURIComponent(p.PROXY_DB_NAME)}`;
    u.username = encodeURIComponent(p.PROXY_DB_USER);
    u.password = encodeURIComponent(p.PROXY_DB_PASSWORD);
    u.searchParams.set("sslmode", p.PROXY_DB_SSLMODE);
    if (p.PROXY_DB_SSLROOTCERT !== "") {
      if (p.PROXY_DB_SSLMODE !== "verify-full") {
        problems.push(
          `PROXY_DB_SSLROOTCERT: is read only with PROXY_DB_SSLMODE=verify-full, not ${p.PROXY_DB_SSLMODE} (the ` +
            "certificate would not be checked); expected PROXY_DB_SSLMODE=verify-full",
        );
      }
      u.searchParams.set("sslrootcert", p.PROXY_DB_SSLROOTCERT);
    }
    databaseUrlValue = u.toString();
  }
  if (production && databaseUrlValue === "") {
    problems.push(MISSING.database);
  }
  if (p.PROXY_DB_SSLROOTCERT !== "" && p.PROXY_DATABASE_URL !== "") {
    // Ignored, it would leave the certificate unchecked under a setting that says it is checked.
    problems.push(
      "PROXY_DB_SSLROOTCERT: is read only with the URL in parts (PROXY_DB_HOST…), not with PROXY_DATABASE_URL; " +
        "expected sslmode=verify-full&sslrootcert=<PEM file or rds> in PROXY_DATABASE_URL instead",
    );
  }
  // Optional (empty leaves /metrics open, for a private network), but when set it guards an unthrottled route.
  const weakMetricsToken = production && p.PROXY_METRICS_TOKEN !== ""
    ? weakSecret("PROXY_METRICS_TOKEN", p.PROXY_METRICS_TOKEN)
    : null;
  if (weakMetricsToken) problems.push(weakMetricsToken);
  if (p.PROXY_DB_APP_PASSWORD !== "" && p.PROXY_DB_APP_USER === "") {
    problems.push(
      "PROXY_DB_APP_USER: missing; expected the role PROXY_DB_APP_PASSWORD is for, e.g. proxy_app",
    );
  }
  if (p.PROXY_DB_APP_USER !== "" && p.PROXY_DB_APP_PASSWORD === "") {
    problems.push(
      "PROXY_DB_APP_PASSWORD: missing; expected the password `migrate` gives the role named in PROXY_DB_APP_USER",
    );
  }

  // Checked with the other values.
  const modelPricing: Record<string, ModelPrice> = p.PROXY_MODEL_PRICING === ""
    ? {}
    : parsePricingJson(p.PROXY_MODEL_PRICING);

  if (problems.length > 0) throw new ConfigError(problems);
  if (devChanged && devSecrets) {
    await io.writeSecrets(secretsPath, devSecrets).catch((e) => Promise.reject(dataDirProblem(e)));
  }

  return Object.freeze({
    env: p.PROXY_ENV,
    // Development serves this machine only (a laptop on shared Wi-Fi must not offer its console to the room);
    // production, in its container, every interface.
    host: p.PROXY_HOST ?? (production ? "0.0.0.0" : "127.0.0.1"),
    port: p.PROXY_PORT,
    dataDir: p.PROXY_DATA_DIR,
    databaseUrl: databaseUrlValue,
    databasePoolSize: p.PROXY_DATABASE_POOL_SIZE,
    databaseAppRole: p.PROXY_DB_APP_USER === ""
      ? null
      : Object.freeze({ user: p.PROXY_DB_APP_USER, password: p.PROXY_DB_APP_PASSWORD }),
    keyHasherSecret,
    jwtSecret,
    jwtTtlSeconds: p.PROXY_JWT_TTL_SECONDS,
    adminUsername: p.PROXY_ADMIN_USERNAME,
    adminPasswordHash,
    localEncryptionKey,
    planApiKey: p.PROXY_PLAN_API_KEY,
    planApiUrl: p.PROXY_PLAN_API_URL,
    upstreamConnections: p.PROXY_UPSTREAM_CONNECTIONS,
    bedrockRegion: p.PROXY_BEDROCK_REGION,
    bedrockDefaultModel: p.PROXY_BEDROCK_DEFAULT_MODEL,
    bedrockEndpoint: p.PROXY_BEDROCK_ENDPOINT,
    bedrockUseDefaultCredentials: p.PROXY_BEDROCK_USE_DEFAULT_CREDENTIALS,
    bedrockModelMap: Object.freeze({ ...p.PROXY_BEDROCK_MODEL_MAP }),
    bedrockAllowedBetas: p.PROXY_BEDROCK_ALLOWED_BETAS,
    bedrockAllowedFields: p.PROXY_BEDROCK_ALLOWED_FIELDS,
    bedrockDroppedFields: p.PROXY_BEDROCK_DROPPED_FIELDS,
    modelPricing: Object.freeze(modelPricing),
    kmsKeyId: p.PROXY_KMS_KEY_ID,
    kmsEndpoint: p.PROXY_KMS_ENDPOINT,
    circuitFailureThreshold: p.PROXY_CIRCUIT_FAILURE_THRESHOLD,
    circuitFailureWindow: p.PROXY_CIRCUIT_FAILURE_WINDOW,
    circuitResetTimeout: p.PROXY_CIRCUIT_RESET_TIMEOUT,
    accessKeyCacheTtl: p.PROXY_ACCESS_KEY_CACHE_TTL,
    bedrockKeyCacheTtl: p.PROXY_BEDROCK_KEY_CACHE_TTL,
    timezone: p.PROXY_TIMEZONE,
    logLevel: p.PROXY_LOG_LEVEL,
    maxBodyBytes: p.PROXY_MAX_BODY_BYTES,
    requestBodyTimeoutMs: p.PROXY_REQUEST_BODY_TIMEOUT_MS,
    upstreamConnectTimeoutMs: p.PROXY_UPSTREAM_CONNECT_TIMEOUT_MS,
    upstreamFirstByteTimeoutMs: p.PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS,
    upstreamResponseTimeoutMs: p.PROXY_UPSTREAM_RESPONSE_TIMEOUT_MS,
    egressProxy: ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
      .some((name) => (env[name] ?? "").trim() !== ""),
    shutdownDrainSeconds: p.PROXY_SHUTDOWN_DRAIN_SECONDS,
    usageFlushIntervalMs: p.PROXY_USAGE_FLUSH_INTERVAL_MS,
    usageQueueMax: p.PROXY_USAGE_QUEUE_MAX,
    trustForwardedFor: p.PROXY_TRUST_FORWARDED_FOR,
    metricsToken: p.PROXY_METRICS_TOKEN,
    usageRetentionDays: p.PROXY_USAGE_RETENTION_DAYS,
    adminAllowedCidrs: p.PROXY_ADMIN_ALLOWED_CIDRS,
    generatedSecrets: Object.freeze(generated),
    generatedAdminPassword,
  });
}

/** File-backed {@link ConfigIo}: secrets file written with mode 0600. */
export function fileConfigIo(hashPassword: (password: string) => Promise<string>): ConfigIo {
  return {
    async readSecrets(path) {
      try {
        return JSON.parse(await Deno.readTextFile(path)) as DevSecrets;
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return null;
        throw new Error(`cannot read development secrets at ${path}: ${(e as Error).message}`);
      }
    },
    async writeSecrets(path, secrets) {
      // The owner's only, as the database and spool directories in it (an existing one is left as it is).
      await Deno.mkdir(join(path, ".."), { recursive: true, mode: 0o700 });
      await Deno.writeTextFile(path, JSON.stringify(secrets, null, 2) + "\n", { mode: 0o600 });
    },
    hashPassword,
  };
}

/** Summary of the running configuration for the console's settings page: secrets masked. */
export function describeConfig(config: Config): Array<[string, string]> {
  const mask = (v: string) => (v === "" ? "(not set)" : "••••••• (set)");
  return [
    ["PROXY_ENV", config.env],
    ["PROXY_HOST / PROXY_PORT", `${config.host}:${config.port}`],
    ["PROXY_DATA_DIR", config.dataDir],
    ["PROXY_DATABASE_URL", config.databaseUrl === "" ? "(embedded PGlite)" : redactUrl(config.databaseUrl)],
    ["PROXY_DATABASE_POOL_SIZE", String(config.databasePoolSize)],
    [
      "PROXY_DB_APP_USER / PROXY_DB_APP_PASSWORD",
      config.databaseAppRole
        ? `${config.databaseAppRole.user} / ${mask(config.databaseAppRole.password)} (for migrate)`
        : "(not set)",
    ],
    ["PROXY_KEY_HASHER_SECRET", mask(config.keyHasherSecret)],
    ["PROXY_JWT_SECRET", mask(config.jwtSecret)],
    ["PROXY_JWT_TTL_SECONDS", `${config.jwtTtlSeconds} s`],
    ["PROXY_ADMIN_USERNAME", config.adminUsername],
    ["PROXY_ADMIN_PASSWORD_HASH", mask(config.adminPasswordHash)],
    ["PROXY_ADMIN_ALLOWED_CIDRS", config.adminAllowedCidrs?.join(", ") ?? "(anyone)"],
    ["PROXY_TRUST_FORWARDED_FOR", String(config.trustForwardedFor)],
    ["PROXY_METRICS_TOKEN", mask(config.metricsToken)],
    ["PROXY_LOCAL_ENCRYPTION_KEY", config.localEncryptionKey.length > 0 ? "••••••• (set)" : "(not set)"],
    ["PROXY_KMS_KEY_ID", config.kmsKeyId || "(local AES-256-GCM)"],
    ["PROXY_KMS_ENDPOINT", config.kmsEndpoint ? redactUrl(config.kmsEndpoint) : "(AWS default)"],
    ["PROXY_PLAN_API_KEY", mask(config.planApiKey)],
    ["PROXY_PLAN_API_URL", redactUrl(config.planApiUrl)],
    ["PROXY_UPSTREAM_CONNECT_TIMEOUT_MS", `${config.upstreamConnectTimeoutMs} ms`],
    ["PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT_MS", `${config.upstreamFirstByteTimeoutMs} ms`],
    ["PROXY_UPSTREAM_RESPONSE_TIMEOUT_MS", `${config.upstreamResponseTimeoutMs} ms`],
    ["PROXY_UPSTREAM_CONNECTIONS", `${config.upstreamConnections} per upstream`],
    ["PROXY_BEDROCK_REGION", config.bedrockRegion],
    ["PROXY_BEDROCK_DEFAULT_MODEL", config.bedrockDefaultModel],
    ["PROXY_BEDROCK_ENDPOINT", config.bedrockEndpoint ? redactUrl(config.bedrockEndpoint) : "(AWS default)"],
    ["PROXY_BEDROCK_USE_DEFAULT_CREDENTIALS", String(config.bedrockUseDefaultCredentials)],
    [
      "PROXY_BEDROCK_MODEL_MAP",
      `${Object.keys(config.bedrockModelMap).length} override(s): see the model map`,
    ],
    ["PROXY_BEDROCK_ALLOWED_BETAS", config.bedrockAllowedBetas?.join(", ") ?? "(built-in list)"],
    ["PROXY_BEDROCK_ALLOWED_FIELDS", config.bedrockAllowedFields?.join(", ") ?? "(built-in list)"],
    ["PROXY_BEDROCK_DROPPED_FIELDS", config.bedrockDroppedFields?.join(", ") ?? "(none)"],
    ["PROXY_MODEL_PRICING", `${Object.keys(config.modelPricing).length} override(s): see the prices`],
    ["PROXY_CIRCUIT_FAILURE_THRESHOLD", String(config.circuitFailureThreshold)],
    ["PROXY_CIRCUIT_FAILURE_WINDOW", `${config.circuitFailureWindow} s`],
    ["PROXY_CIRCUIT_RESET_TIMEOUT", `${config.circuitResetTimeout} s`],
    ["PROXY_ACCESS_KEY_CACHE_TTL", `${config.accessKeyCacheTtl} s`],
    ["PROXY_BEDROCK_KEY_CACHE_TTL", `${config.bedrockKeyCacheTtl} s`],
    ["PROXY_USAGE_FLUSH_INTERVAL_MS", `${config.usageFlushIntervalMs} ms`],
    ["PROXY_USAGE_QUEUE_MAX", String(config.usageQueueMax)],
    [
      "PROXY_USAGE_RETENTION_DAYS",
      config.usageRetentionDays === 0 ? "0 (kept for ever)" : `${config.usageRetentionDays} days`,
    ],
    ["PROXY_SHUTDOWN_DRAIN_SECONDS", `${config.shutdownDrainSeconds} s`],
    ["PROXY_TIMEZONE", config.timezone],
    ["PROXY_LOG_LEVEL", config.logLevel],
    ["PROXY_MAX_BODY_BYTES", String(config.maxBodyBytes)],
    ["PROXY_REQUEST_BODY_TIMEOUT_MS", `${config.requestBodyTimeoutMs} ms`],
  ];
}

/**
 * A URL for display and logs: its userinfo password, and query parameters named like a secret (password,
 * token, key, secret, signature), replaced.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    for (const name of [...u.searchParams.keys()]) {
      if (/pass|token|secret|key|sig/i.test(name)) u.searchParams.set(name, "***");
    }
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}

/** What production start-up says of a missing secret: the full check and the early one below say the same. */
const MISSING = {
  secret: (name: string) =>
    `${name}: missing; expected a random secret of at least ${SECRET_MIN_LENGTH} characters`,
  localKey:
    "PROXY_LOCAL_ENCRYPTION_KEY: missing and PROXY_KMS_KEY_ID is empty; expected a KMS key id, or 32 bytes " +
    "(`base64:` and the output of `openssl rand -base64 32`)",
  adminHash:
    "PROXY_ADMIN_PASSWORD_HASH: missing; expected the output of `deno task hash-password` (pbkdf2-sha256$...)",
  database:
    "PROXY_DATABASE_URL: missing in production; expected postgres://user:password@host:5432/dbname (or PROXY_DB_HOST and friends)",
};

/** The problem of a weak local encryption key, from either check. */
const WEAK_LOCAL_KEY =
  "PROXY_LOCAL_ENCRYPTION_KEY: is a published example or repeats a few characters; expected a random key " +
  "(e.g. `base64:` and the output of `openssl rand -base64 32`)";

/** The AES key a `PROXY_LOCAL_ENCRYPTION_KEY` stands for: its base64 bytes, or its own; null when unreadable. */
function localKeyBytes(value: string): Uint8Array<ArrayBuffer> | null {
  return value.startsWith(BASE64_KEY_PREFIX) ? decodeBase64Key(value) : new TextEncoder().encode(value);
}

/** Whether a readable local key is a published example or repeats a few byte values. */
function weakLocalKey(value: string): boolean {
  const bytes = localKeyBytes(value);
  return bytes !== null && (PLACEHOLDER_SECRETS.has(value) || new Set(bytes).size < 8);
}

/**
 * The secrets set in `env` that are too weak for production, as the checks after parsing would find them; those
 * in `failing` (refused by their own check already) are left out.
 */
function weakProductionSecrets(env: Record<string, string | undefined>, failing: Set<string>): string[] {
  const set = (name: string) => !failing.has(name) && (env[name] ?? "") !== "";
  const found: string[] = [];
  for (const name of ["PROXY_KEY_HASHER_SECRET", "PROXY_JWT_SECRET"]) {
    const weak = set(name) ? weakSecret(name, env[name]!) : null;
    if (weak) found.push(weak);
  }
  if (set("PROXY_LOCAL_ENCRYPTION_KEY") && weakLocalKey(env.PROXY_LOCAL_ENCRYPTION_KEY!)) {
    found.push(WEAK_LOCAL_KEY);
  }
  return found;
}

/** The production secrets `env` lacks altogether, with the messages the full check gives. */
function missingProductionSecrets(env: Record<string, string | undefined>, databaseOnly: boolean): string[] {
  const empty = (name: string) => (env[name] ?? "").trim() === "";
  if (databaseOnly) return empty("PROXY_DATABASE_URL") && empty("PROXY_DB_HOST") ? [MISSING.database] : [];
  return [
    ...["PROXY_KEY_HASHER_SECRET", "PROXY_JWT_SECRET"].filter(empty).map(MISSING.secret),
    ...(empty("PROXY_LOCAL_ENCRYPTION_KEY") && empty("PROXY_KMS_KEY_ID") ? [MISSING.localKey] : []),
    ...(empty("PROXY_ADMIN_PASSWORD_HASH") ? [MISSING.adminHash] : []),
    ...(empty("PROXY_DATABASE_URL") && empty("PROXY_DB_HOST") ? [MISSING.database] : []),
  ];
}

/**
 * Variables of the test harness (`PROXY_TEST_DATABASE_URL`, `PROXY_TEST_CLAUDE_CODE`): the tests read them, and
 * a proxy the tests start inherits them from the test process.
 */
const HARNESS_PREFIX = "PROXY_TEST_";

/** A problem for each `PROXY_*` variable in `env` that is no setting, with the closest setting's name. */
function unknownVariables(env: Record<string, string | undefined>): string[] {
  const known = Object.keys(schema.shape);
  return Object.keys(env)
    .filter((name) => name.startsWith("PROXY_") && !name.startsWith(HARNESS_PREFIX) && !known.includes(name))
    .sort()
    .map((name) => {
      const closest = closestName(name, known);
      return `${name}: not a setting of this proxy (it would be ignored); ` +
        (closest
          ? `did you mean ${closest}?`
          : "expected one of the PROXY_* variables listed under Configuration in README.md, or none");
    });
}

/**
 * The known name `name` is most likely a misspelling of: the fewest single-character edits, within about a third
 * of the name after `PROXY_` (a name with nothing in common gets no suggestion), or the same words in another
 * order (PROXY_ALLOWED_ADMIN_CIDRS).
 */
function closestName(name: string, known: readonly string[]): string | null {
  const words = (n: string) => n.split("_").sort().join("_");
  const reordered = known.find((k) => words(k) === words(name));
  if (reordered) return reordered;
  const limit = Math.max(2, Math.floor((name.length - "PROXY_".length) / 3));
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** Levenshtein distance: insertions, deletions and substitutions of one character each. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

/** Why `value` is no secret fit for production, or null when it is. */
function weakSecret(name: string, value: string): string | null {
  if (PLACEHOLDER_SECRETS.has(value)) {
    return `${name}: is a published example value; expected a random secret`;
  }
  if (value.length < SECRET_MIN_LENGTH) {
    return `${name}: too short (${value.length} characters); expected at least ${SECRET_MIN_LENGTH}`;
  }
  if (value.trim() === "" || new Set(value).size < 8) {
    return `${name}: is blank or repeats a few characters; expected a random secret (e.g. \`openssl rand -base64 48\`)`;
  }
  return null;
}

function describeValue(name: string, raw: string): string {
  if (/SECRET|PASSWORD|TOKEN|KEY$|_KEY_|HASH/.test(name) && !/KEY_ID$|CACHE_TTL$/.test(name)) {
    return "a value (hidden)";
  }
  // A URL's password must not reach the start-up error (and so the container logs), parseable or not.
  // Everything up to the last @ goes: a password may hold / or @ itself (that is often why the URL did not parse).
  if (/_URL$|_ENDPOINT$/.test(name) || /^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    raw = raw.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/i, "$1***@");
    // Query parameters named like a secret too, as redactUrl does for a URL that parses.
    raw = raw.replace(/([?&][^=&#]*(?:pass|token|secret|key|sig)[^=&#]*=)[^&#]*/gi, "$1***");
  }
  const shown = raw.length > 60 ? `${raw.slice(0, 57)}...` : raw;
  return JSON.stringify(shown);
}

function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(
    /[+/=]/g,
    (c) => (c === "+" ? "-" : c === "/" ? "_" : ""),
  );
}
