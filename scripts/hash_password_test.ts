import assert from "node:assert/strict";
import { verifyPassword } from "../lib/auth/password.ts";

async function run(stdin: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", "--allow-read", new URL("./hash_password.ts", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const out = await child.output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("hash-password reads a piped password and prints a verifiable PBKDF2 hash", async () => {
  const { code, stdout } = await run("a long enough passphrase\n");
  assert.equal(code, 0);
  const hash = stdout.trim();
  assert.match(hash, /^pbkdf2-sha256\$600000\$/);
  assert.equal(await verifyPassword("a long enough passphrase", hash), true);
});

Deno.test("hash-password refuses a short password, and says so differently when none was given", async () => {
  const short = await run("short");
  assert.equal(short.code, 1);
  assert.match(short.stderr, /password too short \(5 characters\): expected at least 12/);
  const none = await run("");
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no password given/);
});
