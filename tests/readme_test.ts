/** What README.md tells an operator to type or send, checked against the code it describes. */
import assert from "node:assert/strict";
import { REQUEST_ORDERS } from "../lib/db/usage.ts";
import { ConfigError, loadConfig } from "../lib/config.ts";
import { base64Encode } from "../lib/encoding.ts";

const README = Deno.readTextFileSync(new URL("../README.md", import.meta.url));

Deno.test("the README's admin API table names every order GET /api/usage/requests takes", () => {
  const row = README.split("\n").find((l) => l.startsWith("|") && l.includes("`GET /api/usage/requests`"));
  assert.ok(row, "README.md has a table row for GET /api/usage/requests");
  for (const order of REQUEST_ORDERS) {
    assert.ok(row.includes(`\`${order}\``), `the row lacks ${order}: ${row}`);
  }
  assert.equal(row.split("`").length % 2, 1, "every code span in the row is closed");
});

Deno.test("the README's PROXY_LOCAL_ENCRYPTION_KEY command makes a key production takes, with 256 random bits", async () => {
  const match = /PROXY_LOCAL_ENCRYPTION_KEY=(base64:)?\$\(openssl rand -base64 (\d+)\)/.exec(README);
  assert.ok(match, "README.md makes the key with `openssl rand -base64 <bytes>`");
  const [, prefix = "", count] = match;
  const random = crypto.getRandomValues(new Uint8Array(Number(count)));
  // What the command prints: the random bytes in base64, after the prefix when there is one.
  const key = prefix + base64Encode(random);
  const config = await loadConfig({
    PROXY_ENV: "production",
    PROXY_DATABASE_URL: "postgres://u:p@db:5432/proxy",
    PROXY_KEY_HASHER_SECRET: "kV3q9Zr2Lm8XbT1cYw6NpH4sJd0GfA7uEo5iQzRy",
    PROXY_JWT_SECRET: "kV3q9Zr2Lm8XbT1cYw6NpH4sJd0GfA7uEo5iQzRyy",
    PROXY_ADMIN_PASSWORD_HASH: "8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918",
    PROXY_LOCAL_ENCRYPTION_KEY: key,
  }, {
    readSecrets: () => Promise.resolve(null),
    writeSecrets: () => Promise.resolve(),
    hashPassword: () => Promise.resolve(""),
  }).catch((e: ConfigError) => assert.fail(e.message));
  // The AES key is the random bytes themselves: all 256 of its bits are random.
  assert.deepEqual(config.localEncryptionKey, random);
});
