import assert from "node:assert/strict";
import { ConfigError, type ConfigIo, describeConfig, fileConfigIo, loadConfig } from "./config.ts";
import { base64Encode } from "./encoding.ts";

function memoryIo(initial: Record<string, unknown> | null = null) {
  const files = new Map<string, unknown>();
  if (initial) files.set(".data/secrets.json", initial);
  const io: ConfigIo & { files: typeof files; writes: number } = {
    files,
    writes: 0,
    readSecrets: (path) => Promise.resolve((files.get(path) as never) ?? null),
    writeSecrets: (path, s) => {
      io.writes++;
      files.set(path, structuredClone(s));
      return Promise.resolve();
    },
    hashPassword: (p) => Promise.resolve(`pbkdf2-sha256$1$c2FsdA$${btoa(p).replace(/=/g, "")}`),
  };
  return io;
}

const strong = "kV3q9Zr2Lm8XbT1cYw6NpH4sJd0GfA7uEo5iQzRy";
const production = {
  PROXY_ENV: "production",
  PROXY_DATABASE_URL: "postgres://u:p@db:5432/proxy",
  PROXY_KEY_HASHER_SECRET: strong,
  PROXY_JWT_SECRET: strong + "y",
  PROXY_ADMIN_PASSWORD_HASH: "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918",
  PROXY_LOCAL_ENCRYPTION_KEY: "9f86d081884c7d659a2feaa0c55ad015",
};

async function problemsOf(env: Record<string, string>): Promise<string[]> {
  try {
    await loadConfig(env, memoryIo());
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.problems;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("defaults match the seed specification", async () => {
  const c = await loadConfig({}, memoryIo());
  assert.equal(c.env, "development");
  assert.equal(c.host, "127.0.0.1", "development serves this machine only");
  assert.equal(c.port, 8000);
  assert.equal(c.dataDir, ".data");
  assert.equal(c.databaseUrl, "");
  assert.equal(c.adminUsername, "admin");
  assert.equal(c.planApiKey, "");
  assert.equal(c.planApiUrl, "https://api.anthropic.com");
  assert.equal(c.bedrockRegion, "ap-northeast-2");
  assert.equal(c.bedrockDefaultModel, "global.anthropic.claude-sonnet-4-5-20250929-v1:0");
  assert.equal(c.kmsKeyId, "");
  assert.equal(c.circuitFailureThreshold, 3);
  assert.equal(c.circuitFailureWindow, 60);
  assert.equal(c.circuitResetTimeout, 1800);
  assert.equal(c.accessKeyCacheTtl, 60);
  assert.equal(c.bedrockKeyCacheTtl, 300);
  assert.equal(c.timezone, "UTC");
  assert.equal(c.maxBodyBytes, 32 * 1024 * 1024);
  assert.equal(c.requestBodyTimeoutMs, 300_000);
  assert.equal(c.upstreamFirstByteTimeoutMs, 300_000);
  assert.equal(c.upstreamResponseTimeoutMs, 600_000, "the Anthropic SDKs' own 10-minute timeout");
  assert.equal(c.egressProxy, false);
  assert.ok(Object.isFrozen(c));
});

Deno.test("an HTTPS_PROXY (any spelling fetch honours) turns the direct connect probe off", async () => {
  for (const name of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY"]) {
    assert.equal((await loadConfig({ [name]: "http://egress:3128" }, memoryIo())).egressProxy, true, name);
  }
  assert.equal((await loadConfig({ HTTPS_PROXY: " " }, memoryIo())).egressProxy, false);
});

Deno.test("each bad value is reported with the variable, the problem and what is expected", async () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PROXY_PORT: "eighty" }, /^PROXY_PORT: expected an integer between 0 and 65535 \(got "eighty"\)/],
    [{ PROXY_PORT: "70000" }, /^PROXY_PORT: expected an integer between 0 and 65535/],
    [{ PROXY_ENV: "staging" }, /^PROXY_ENV: expected development or production/],
    [{ PROXY_PLAN_API_URL: "ftp://x" }, /^PROXY_PLAN_API_URL: expected an http\(s\) URL/],
    [{ PROXY_DATABASE_URL: "mysql://x" }, /^PROXY_DATABASE_URL: expected postgres:\/\//],
    [
      { PROXY_DATABASE_URL: "postgres://u@db.internal/proxy?sslmode=verify-ca" },
      /^PROXY_DATABASE_URL: has an sslmode \(or ssl\) the proxy does not support; expected sslmode=disable, prefer, require or verify-full/,
    ],
    [
      { PROXY_DATABASE_URL: "postgres://u@db.internal/proxy?sslmode=requir" },
      /^PROXY_DATABASE_URL: has an sslmode/,
    ],
    [
      { PROXY_DATABASE_URL: "postgres://u@db.internal/proxy?ssl=true" },
      /^PROXY_DATABASE_URL: has an sslmode \(or ssl\)/,
    ],
    [
      { PROXY_DATABASE_URL: "postgres://u@db.internal/proxy?sslmode=require&sslrootcert=rds" },
      /^PROXY_DATABASE_URL: has sslrootcert without sslmode=verify-full; expected sslmode=verify-full&sslrootcert=/,
    ],
    [
      { PROXY_DB_HOST: "db.internal", PROXY_DB_SSLMODE: "require", PROXY_DB_SSLROOTCERT: "rds" },
      /^PROXY_DB_SSLROOTCERT: is read only with PROXY_DB_SSLMODE=verify-full, not require/,
    ],
    [
      { PROXY_DATABASE_URL: "postgres://u@db.internal/proxy?sslmode=require", PROXY_DB_SSLROOTCERT: "rds" },
      /^PROXY_DB_SSLROOTCERT: is read only with the URL in parts \(PROXY_DB_HOST…\), not with PROXY_DATABASE_URL/,
    ],
    [{ PROXY_TIMEZONE: "Mars/Olympus" }, /^PROXY_TIMEZONE: expected an IANA time zone/],
    [{ PROXY_LOG_LEVEL: "loud" }, /^PROXY_LOG_LEVEL: expected debug, info, warn or error/],
    [
      { PROXY_CIRCUIT_FAILURE_THRESHOLD: "0" },
      /^PROXY_CIRCUIT_FAILURE_THRESHOLD: expected an integer between 1/,
    ],
    [{ PROXY_CIRCUIT_RESET_TIMEOUT: "-5" }, /^PROXY_CIRCUIT_RESET_TIMEOUT: expected an integer/],
    [{ PROXY_ACCESS_KEY_CACHE_TTL: "1.5" }, /^PROXY_ACCESS_KEY_CACHE_TTL: expected an integer/],
    [
      // A body must fit in one JavaScript string to be checked as JSON: 256 MiB is the most.
      { PROXY_MAX_BODY_BYTES: String(256 * 1024 * 1024 + 1) },
      /^PROXY_MAX_BODY_BYTES: expected an integer between 1024 and 268435456/,
    ],
    [{ PROXY_BEDROCK_REGION: "Seoul" }, /^PROXY_BEDROCK_REGION: expected an AWS region/],
    [{ PROXY_BEDROCK_MODEL_MAP: "{not json" }, /^PROXY_BEDROCK_MODEL_MAP: not valid JSON/],
    [{ PROXY_BEDROCK_MODEL_MAP: '{"a":1}' }, /^PROXY_BEDROCK_MODEL_MAP: entry "a" is invalid/],
    [{ PROXY_BEDROCK_USE_DEFAULT_CREDENTIALS: "maybe" }, /expected true or false/],
    [
      { PROXY_LOCAL_ENCRYPTION_KEY: "short" },
      /^PROXY_LOCAL_ENCRYPTION_KEY: is 5 bytes; expected exactly 32 bytes/,
    ],
    [
      { PROXY_LOCAL_ENCRYPTION_KEY: `base64:${base64Encode(new Uint8Array(24).fill(7))}` },
      /^PROXY_LOCAL_ENCRYPTION_KEY: decodes to 24 bytes; expected exactly 32/,
    ],
    [
      { PROXY_LOCAL_ENCRYPTION_KEY: "base64:not*base64" },
      /^PROXY_LOCAL_ENCRYPTION_KEY: is not base64 after "base64:"; expected 44 characters/,
    ],
    [{ PROXY_ADMIN_PASSWORD_HASH: "plaintext" }, /^PROXY_ADMIN_PASSWORD_HASH: unrecognised format/],
    [
      { PROXY_ADMIN_USERNAME: "a".repeat(257) },
      /^PROXY_ADMIN_USERNAME: expected at most 256 characters \(sign-in refuses longer user names\)/,
    ],
    [
      { PROXY_MODEL_PRICING: '{"claude-sonnet-4-5":{"input":-1,"output":15}}' },
      /^PROXY_MODEL_PRICING: .*input/,
    ],
    [
      { PROXY_MODEL_PRICING: "[1]" },
      /^PROXY_MODEL_PRICING: expected a JSON object of model → \{.*\} \(got "\[1\]"\)$/,
    ],
  ];
  for (const [env, pattern] of cases) {
    const problems = await problemsOf(env);
    assert.equal(problems.length, 1, `${JSON.stringify(env)} → ${problems.join("; ")}`);
    assert.match(problems[0], pattern);
  }
});

Deno.test("every problem is reported at once, and secret values are never echoed", async () => {
  const problems = await problemsOf({ PROXY_PORT: "x", PROXY_TIMEZONE: "Nowhere", PROXY_LOG_LEVEL: "loud" });
  assert.equal(problems.length, 3);
  const secretProblems = await problemsOf({ ...production, PROXY_JWT_SECRET: "tiny-secret-value" });
  assert.ok(secretProblems.every((p) => !p.includes("tiny-secret-value")));
  // A refused database URL is shown without its password, in a scheme the proxy does not take too.
  for (
    const url of [
      "postgresql+asyncpg://proxy:S3cretDbPass@db.internal:5432/proxy",
      "mysql://u:S3cretDbPass@h/d",
    ]
  ) {
    const [problem] = await problemsOf({ PROXY_DATABASE_URL: url });
    assert.match(problem, /^PROXY_DATABASE_URL: expected postgres/);
    assert.ok(!problem.includes("S3cretDbPass"), problem);
    assert.match(problem, /\*\*\*@/);
  }
  // Endpoints are URLs too, and any value that looks like one loses its userinfo.
  for (
    const [name, url] of [
      ["PROXY_BEDROCK_ENDPOINT", "ftp://ak:BedrockPw1@h/"],
      ["PROXY_KMS_ENDPOINT", "https://x:KmsPw1@/"],
      ["PROXY_ADMIN_ALLOWED_CIDRS", "http://u:CidrPw1@h/"],
      ["PROXY_PLAN_API_URL", "ftp://host/?a=1&token=KmsPw1&X-Amz-Signature=CidrPw1"],
    ]
  ) {
    const [problem] = await problemsOf({ [name]: url });
    assert.match(problem, new RegExp(`^${name}: `));
    assert.ok(!/BedrockPw1|KmsPw1|CidrPw1/.test(problem), problem);
  }
  // A password holding / or @ unencoded (an `openssl rand -base64` one) is why such a URL does not parse:
  // none of it may show, and the message says to percent-encode.
  for (
    const url of ["postgres://app:Ab3/xYz+9q@db.internal:5432/proxy"]
  ) {
    const [problem] = await problemsOf({ PROXY_DATABASE_URL: url });
    assert.match(problem, /percent-encoded/);
    for (const part of ["Ab3", "xYz"]) assert.ok(!problem.includes(part), problem);
  }
});

Deno.test("a database host the URL cannot take, a blank CIDR list or a bad listen host is refused", async () => {
  for (const host of ["nonexistent.invalid:5432", "db server.internal"]) {
    const problems = await problemsOf({ PROXY_DB_HOST: host });
    assert.equal(problems.length, 1, problems.join("; "));
    assert.match(problems[0], /^PROXY_DB_HOST: is not a host name or address; .*PROXY_DB_PORT.*\(got "/);
  }
  for (const host of ["db.internal", "10.0.3.7", "[fd00::7]"]) {
    const c = await loadConfig({ PROXY_DB_HOST: host }, memoryIo());
    assert.ok(c.databaseUrl.includes(host.toLowerCase()), c.databaseUrl);
  }
  const [cidrs] = await problemsOf({ PROXY_ADMIN_ALLOWED_CIDRS: " , " });
  assert.match(cidrs, /^PROXY_ADMIN_ALLOWED_CIDRS: lists no network/);
  assert.equal((await loadConfig({ PROXY_ADMIN_ALLOWED_CIDRS: "" }, memoryIo())).adminAllowedCidrs, null);
  const [listen] = await problemsOf({ PROXY_HOST: "not a host!!" });
  assert.match(listen, /^PROXY_HOST: expected a host name or address to listen on/);
  const [withPort] = await problemsOf({ PROXY_HOST: "0.0.0.0:80" });
  assert.match(withPort, /^PROXY_HOST: .*the port goes in PROXY_PORT/);
  for (const host of ["0.0.0.0", "::", "localhost", "proxy-1.internal"]) {
    assert.equal((await loadConfig({ PROXY_HOST: host }, memoryIo())).host, host);
  }
});

/** What production needs set, sorted. */
const PRODUCTION_SECRETS = [
  "PROXY_ADMIN_PASSWORD_HASH",
  "PROXY_DATABASE_URL",
  "PROXY_JWT_SECRET",
  "PROXY_KEY_HASHER_SECRET",
  "PROXY_LOCAL_ENCRYPTION_KEY",
];

Deno.test("production refuses a weak metrics token as it does other secrets; an empty one is allowed", async () => {
  for (const token of ["a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]) {
    const problems = await problemsOf({ ...production, PROXY_METRICS_TOKEN: token });
    assert.equal(problems.length, 1, problems.join("; "));
    assert.match(problems[0], /^PROXY_METRICS_TOKEN: (too short|is blank or repeats)/);
    assert.ok(!problems[0].includes(`"${token}"`), "the value is not echoed");
  }
  const strong = "Zk3v8QpL2mN7xR4tW9yB6cF1hJ5sD0gA";
  assert.equal(
    (await loadConfig({ ...production, PROXY_METRICS_TOKEN: strong }, memoryIo())).metricsToken,
    strong,
  );
  assert.equal((await loadConfig({ ...production }, memoryIo())).metricsToken, "");
  assert.equal((await loadConfig({ PROXY_METRICS_TOKEN: "a" }, memoryIo())).metricsToken, "a", "development");
});

Deno.test("production refuses missing secrets, naming each", async () => {
  const problems = await problemsOf({ PROXY_ENV: "production" });
  assert.deepEqual(problems.map((p) => p.split(":")[0]).sort(), PRODUCTION_SECRETS);
});

Deno.test("production lists its missing secrets beside a malformed value, in the same message", async () => {
  const problems = await problemsOf({ PROXY_ENV: "production", PROXY_PORT: "x" });
  assert.deepEqual(problems.map((p) => p.split(":")[0]).sort(), [...PRODUCTION_SECRETS, "PROXY_PORT"]);
  // With the secrets given, only the malformed value is reported.
  assert.deepEqual(
    (await problemsOf({ ...production, PROXY_PORT: "x" })).map((p) => p.split(":")[0]),
    ["PROXY_PORT"],
  );
});

Deno.test("production refuses weak and published example secrets", async () => {
  const problems = await problemsOf({
    ...production,
    PROXY_KEY_HASHER_SECRET: "dev-secret-key-for-local-development",
    PROXY_JWT_SECRET: "short",
  });
  assert.match(problems.join("\n"), /PROXY_KEY_HASHER_SECRET: is a published example value/);
  assert.match(problems.join("\n"), /PROXY_JWT_SECRET: too short \(5 characters\); expected at least 32/);
  for (const weak of [" ".repeat(40), "a".repeat(40), "abab".repeat(10)]) {
    for (const name of ["PROXY_KEY_HASHER_SECRET", "PROXY_JWT_SECRET"]) {
      const found = await problemsOf({ ...production, [name]: weak });
      assert.match(found.join("\n"), new RegExp(`${name}: is blank or repeats a few characters`), name);
      assert.ok(!found.join("\n").includes(weak.trim() || "\u0000"), "the value is never echoed");
    }
  }
  for (const weak of ["0123456789abcdef0123456789abcdef", "a".repeat(32), "abcd".repeat(8)]) {
    const local = await problemsOf({ ...production, PROXY_LOCAL_ENCRYPTION_KEY: weak });
    assert.match(local.join("\n"), /PROXY_LOCAL_ENCRYPTION_KEY: is a published example or repeats/, weak);
    assert.ok(!local.join("\n").includes(weak), "the value is never echoed");
  }
});

Deno.test("a base64: local encryption key gives its 32 decoded bytes, all 256 bits of the AES key", async () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const c = await loadConfig(
    { ...production, PROXY_LOCAL_ENCRYPTION_KEY: `base64:${base64Encode(key)}` },
    memoryIo(),
  );
  assert.deepEqual(c.localEncryptionKey, key);
  // The 32-character form is unchanged: its own bytes are the key.
  const plain = await loadConfig(production, memoryIo());
  assert.deepEqual(plain.localEncryptionKey, new TextEncoder().encode(production.PROXY_LOCAL_ENCRYPTION_KEY));
  // A weak key is refused in either form, and never echoed.
  const zeros = `base64:${base64Encode(new Uint8Array(32))}`;
  const found = (await problemsOf({ ...production, PROXY_LOCAL_ENCRYPTION_KEY: zeros })).join("\n");
  assert.match(found, /PROXY_LOCAL_ENCRYPTION_KEY: is a published example or repeats/);
  assert.ok(!found.includes(zeros.slice(7)), "the value is never echoed");
});

Deno.test("a value that does not parse does not hide the weak secrets: all are reported at once", async () => {
  const found = await problemsOf({
    ...production,
    PROXY_PORT: "eighty",
    PROXY_JWT_SECRET: "changeme",
    PROXY_LOCAL_ENCRYPTION_KEY: "a".repeat(32),
  });
  assert.match(found.join("\n"), /^PROXY_PORT: expected an integer/m);
  assert.match(found.join("\n"), /^PROXY_JWT_SECRET: is a published example value/m);
  assert.match(found.join("\n"), /^PROXY_LOCAL_ENCRYPTION_KEY: is a published example or repeats/m);
  // A secret refused by its own check is not called weak as well.
  const short = await problemsOf({ ...production, PROXY_PORT: "eighty", PROXY_LOCAL_ENCRYPTION_KEY: "aaaa" });
  assert.equal(short.filter((p) => p.startsWith("PROXY_LOCAL_ENCRYPTION_KEY")).length, 1, short.join("\n"));
});

Deno.test("production accepts a KMS key instead of a local encryption key", async () => {
  const { PROXY_LOCAL_ENCRYPTION_KEY: _, ...rest } = production;
  const c = await loadConfig({ ...rest, PROXY_KMS_KEY_ID: "alias/proxy" }, memoryIo());
  assert.equal(c.kmsKeyId, "alias/proxy");
});

Deno.test("production builds the database URL from its parts", async () => {
  const { PROXY_DATABASE_URL: _, ...rest } = production;
  const c = await loadConfig({
    ...rest,
    PROXY_DB_HOST: "db.internal",
    PROXY_DB_USER: "proxy",
    PROXY_DB_PASSWORD: "p@ss/word",
    PROXY_DB_NAME: "proxy",
    PROXY_DB_SSLMODE: "require",
  }, memoryIo());
  const u = new URL(c.databaseUrl);
  assert.equal(u.hostname, "db.internal");
  assert.equal(decodeURIComponent(u.password), "p@ss/word");
  assert.equal(u.searchParams.get("sslmode"), "require");
  assert.equal(u.searchParams.has("sslrootcert"), false);

  const verified = await loadConfig({
    ...rest,
    PROXY_DB_HOST: "db.internal",
    PROXY_DB_SSLMODE: "verify-full",
    PROXY_DB_SSLROOTCERT: "rds",
  }, memoryIo());
  const v = new URL(verified.databaseUrl).searchParams;
  assert.deepEqual([v.get("sslmode"), v.get("sslrootcert")], ["verify-full", "rds"]);
});

Deno.test("the application role for migrate: a valid name with a password, both reported in one message", async () => {
  const c = await loadConfig(
    { ...production, PROXY_DB_APP_USER: "proxy_app", PROXY_DB_APP_PASSWORD: "pw-1" },
    memoryIo(),
  );
  assert.deepEqual(c.databaseAppRole, { user: "proxy_app", password: "pw-1" });
  assert.equal((await loadConfig(production, memoryIo())).databaseAppRole, null, "unset: none");
  await assert.rejects(
    () =>
      loadConfig(
        { ...production, PROXY_DB_APP_USER: "Proxy-App", PROXY_DB_APP_PASSWORD: "pässword" },
        memoryIo(),
      ),
    (e: Error) => {
      assert.match(e.message, /PROXY_DB_APP_USER: expected a role name of lowercase letters, digits and _/);
      assert.match(e.message, /PROXY_DB_APP_PASSWORD: must be printable ASCII/);
      assert.ok(!e.message.includes("pässword"), "the password is not echoed");
      return true;
    },
  );
  await assert.rejects(
    () => loadConfig({ ...production, PROXY_DB_APP_USER: "proxy_app" }, memoryIo()),
    /PROXY_DB_APP_PASSWORD: missing; expected the password `migrate` gives the role named in PROXY_DB_APP_USER/,
  );
  await assert.rejects(
    () => loadConfig({ ...production, PROXY_DB_APP_PASSWORD: "pw-without-user" }, memoryIo()),
    /PROXY_DB_APP_USER: missing; expected the role PROXY_DB_APP_PASSWORD is for, e.g. proxy_app/,
  );
});

Deno.test("development generates missing secrets once and keeps them across restarts", async () => {
  const io = memoryIo();
  const first = await loadConfig({}, io);
  assert.deepEqual([...first.generatedSecrets].sort(), [
    "PROXY_ADMIN_PASSWORD_HASH",
    "PROXY_JWT_SECRET",
    "PROXY_KEY_HASHER_SECRET",
    "PROXY_LOCAL_ENCRYPTION_KEY",
  ]);
  assert.ok(first.generatedAdminPassword && first.generatedAdminPassword.length >= 16);
  assert.equal(first.localEncryptionKey.length, 32);
  assert.equal(io.writes, 1);

  const second = await loadConfig({}, io);
  assert.equal(second.keyHasherSecret, first.keyHasherSecret);
  assert.equal(second.jwtSecret, first.jwtSecret);
  assert.deepEqual(second.localEncryptionKey, first.localEncryptionKey);
  assert.equal(second.adminPasswordHash, first.adminPasswordHash);
  assert.equal(second.generatedAdminPassword, null, "the password is shown only the first time");
  assert.equal(second.generatedSecrets.length, 0);
  assert.equal(io.writes, 1);
});

Deno.test("explicit secrets win over generated ones", async () => {
  const c = await loadConfig({ PROXY_JWT_SECRET: "mine" }, memoryIo({ jwtSecret: "stored" }));
  assert.equal(c.jwtSecret, "mine");
});

Deno.test("the settings view shows no URL's password or secret-named query parameter", async () => {
  const c = await loadConfig({
    PROXY_PLAN_API_URL: "https://gw-user:gw-pass-123@gateway.example/anthropic?api_key=abc123&region=eu",
    PROXY_BEDROCK_ENDPOINT: "https://bedrock.example/?X-Amz-Signature=sig456",
    PROXY_DATABASE_URL: "postgres://app:db-pass-789@db.internal:5432/proxy?sslmode=require",
  }, memoryIo());
  const shown = describeConfig(c).map(([k, v]) => `${k}=${v}`).join("\n");
  for (const secret of ["gw-pass-123", "abc123", "sig456", "db-pass-789"]) {
    assert.ok(!shown.includes(secret), `${secret} shown:\n${shown}`);
  }
  assert.match(
    shown,
    /PROXY_PLAN_API_URL=https:\/\/gw-user:\*\*\*@gateway\.example\/anthropic\?api_key=\*\*\*&region=eu/,
  );
  assert.match(shown, /sslmode=require/);
});

Deno.test("every malformed value is reported in one message, each named once", async () => {
  const problems = await problemsOf({
    PROXY_PORT: "eighty",
    PROXY_MODEL_PRICING: '{"x":{"input":1}}',
    PROXY_LOCAL_ENCRYPTION_KEY: "short",
    PROXY_ADMIN_PASSWORD_HASH: "not-a-hash",
    PROXY_DB_HOST: "db:5432",
  });
  assert.deepEqual(problems.map((p) => p.split(":")[0]).sort(), [
    "PROXY_ADMIN_PASSWORD_HASH",
    "PROXY_DB_HOST",
    "PROXY_LOCAL_ENCRYPTION_KEY",
    "PROXY_MODEL_PRICING",
    "PROXY_PORT",
  ]);
  for (const p of problems) assert.ok(!/^(\w+): \1:/.test(p), `named twice: ${p}`);
  assert.ok(!problems.join("\n").includes("short"), "the encryption key's value is not shown");
});

Deno.test("a data dir that is a file is a configuration error naming PROXY_DATA_DIR, not a crash", async () => {
  const file = await Deno.makeTempFile();
  try {
    await assert.rejects(
      loadConfig({ PROXY_DATA_DIR: file }, fileConfigIo(() => Promise.resolve("hash"))),
      (e: unknown) =>
        e instanceof ConfigError && e.problems.length === 1 &&
        /^PROXY_DATA_DIR: cannot read development secrets at .*; expected a directory/.test(e.problems[0]),
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("the data dir development creates is the owner's only, and its secrets file too", async () => {
  const parent = await Deno.makeTempDir();
  try {
    const dataDir = `${parent}/data`;
    await loadConfig({ PROXY_DATA_DIR: dataDir }, fileConfigIo(() => Promise.resolve("hash")));
    assert.equal((await Deno.stat(dataDir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(`${dataDir}/secrets.json`)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("for migrate only the database is required in production; secrets given are still checked", async () => {
  const databaseOnly = { PROXY_ENV: "production", PROXY_DATABASE_URL: "postgres://u:p@db:5432/proxy" };
  const c = await loadConfig(databaseOnly, memoryIo(), { databaseOnly: true });
  assert.equal(c.databaseUrl, databaseOnly.PROXY_DATABASE_URL);
  assert.deepEqual(c.generatedSecrets, [], "nothing generated in production");
  // The server itself still refuses to start without them.
  await assert.rejects(() => loadConfig(databaseOnly, memoryIo()), /PROXY_KEY_HASHER_SECRET: missing/);
  await assert.rejects(
    () => loadConfig({ PROXY_ENV: "production" }, memoryIo(), { databaseOnly: true }),
    (e: ConfigError) => {
      assert.equal(e.problems.length, 1, e.problems.join("\n"));
      assert.match(e.problems[0], /PROXY_DATABASE_URL/);
      return true;
    },
  );
  await assert.rejects(
    () => loadConfig({ ...databaseOnly, PROXY_JWT_SECRET: "short" }, memoryIo(), { databaseOnly: true }),
    /PROXY_JWT_SECRET: too short/,
  );
  await assert.rejects(
    () => loadConfig({ ...databaseOnly, PROXY_PORT: "x" }, memoryIo(), { databaseOnly: true }),
    (e: ConfigError) => e.problems.length === 1 && /PROXY_PORT/.test(e.problems[0]),
    "a parse failure lists only what migrate needs among the missing",
  );
});

Deno.test("a misspelt PROXY_ variable is a configuration error that names it and the setting it resembles", async () => {
  // Ignored, PROXY_ADMIN_ALLOWED_CIDR (no S) would leave /admin open to every address.
  const problems = await problemsOf({
    PROXY_ADMIN_ALLOWED_CIDR: "10.0.0.0/8",
    PROXY_ALLOWED_ADMIN_CIDRS: "10.0.0.0/8",
    PROXY_JWT_SECRT: "a-secret-value-that-must-not-be-echoed",
    PROXY_FROBNICATE: "1",
    PROXY_PORT: "x",
  });
  assert.deepEqual(problems.filter((p) => !p.startsWith("PROXY_PORT:")), [
    "PROXY_ADMIN_ALLOWED_CIDR: not a setting of this proxy (it would be ignored); did you mean " +
    "PROXY_ADMIN_ALLOWED_CIDRS?",
    "PROXY_ALLOWED_ADMIN_CIDRS: not a setting of this proxy (it would be ignored); did you mean " +
    "PROXY_ADMIN_ALLOWED_CIDRS?",
    "PROXY_FROBNICATE: not a setting of this proxy (it would be ignored); expected one of the PROXY_* " +
    "variables listed under Configuration in README.md, or none",
    "PROXY_JWT_SECRT: not a setting of this proxy (it would be ignored); did you mean PROXY_JWT_SECRET?",
  ]);
  assert.equal(problems.length, 5, "reported with the malformed value, in one message");
  assert.ok(!problems.join("\n").includes("must-not-be-echoed"), "a misspelt secret's value is not shown");
  // Alone, too: every value that parses does not hide it.
  assert.deepEqual(await problemsOf({ PROXY_ADMIN_ALLOWED_CIDR: "10.0.0.0/8" }), [
    "PROXY_ADMIN_ALLOWED_CIDR: not a setting of this proxy (it would be ignored); did you mean " +
    "PROXY_ADMIN_ALLOWED_CIDRS?",
  ]);
  // And beside a data dir development cannot use, which the misspelling may explain.
  const file = await Deno.makeTempFile();
  try {
    await assert.rejects(
      loadConfig(
        { PROXY_DATA_DIR: file, PROXY_DATADIR: "/srv/proxy" },
        fileConfigIo(() => Promise.resolve("h")),
      ),
      (e: ConfigError) =>
        e.problems.length === 2 && /^PROXY_DATADIR: .*did you mean PROXY_DATA_DIR\?$/.test(e.problems[0]) &&
        /^PROXY_DATA_DIR: cannot read/.test(e.problems[1]),
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("the test harness's PROXY_TEST_ variables and other programs' variables are not settings to check", async () => {
  const c = await loadConfig({
    PROXY_TEST_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/postgres",
    PROXY_TEST_CLAUDE_CODE: "/tmp/cc/node_modules/.bin/claude",
    HTTP_PROXY_USER: "x",
    PATH: "/usr/bin",
  }, memoryIo());
  assert.equal(c.port, 8000);
});

Deno.test("migrate refuses a misspelt PROXY_ variable as the server does", async () => {
  const env = {
    PROXY_ENV: "production",
    PROXY_DATABASE_URL: "postgres://u:p@db:5432/proxy",
    PROXY_DB_APP_USERNAME: "proxy_app",
  };
  await assert.rejects(
    () => loadConfig(env, memoryIo(), { databaseOnly: true }),
    (e: ConfigError) => {
      assert.deepEqual(e.problems, [
        "PROXY_DB_APP_USERNAME: not a setting of this proxy (it would be ignored); did you mean PROXY_DB_APP_USER?",
      ]);
      return true;
    },
  );
  // A malformed value beside it: both in the one message, and still only the database among the missing.
  await assert.rejects(
    () => loadConfig({ ...env, PROXY_PORT: "x" }, memoryIo(), { databaseOnly: true }),
    (e: ConfigError) => e.problems.length === 2 && /PROXY_DB_APP_USERNAME/.test(e.problems[0]),
  );
});

Deno.test("development listens on this machine only, production on every interface; PROXY_HOST decides either", async () => {
  assert.equal((await loadConfig({}, memoryIo())).host, "127.0.0.1");
  assert.equal((await loadConfig(production, memoryIo())).host, "0.0.0.0");
  assert.equal((await loadConfig({ PROXY_HOST: "0.0.0.0" }, memoryIo())).host, "0.0.0.0");
  assert.equal((await loadConfig({ ...production, PROXY_HOST: "10.0.0.5" }, memoryIo())).host, "10.0.0.5");
});
