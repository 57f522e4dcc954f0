/**
 * `deno task hash-password`: reads a password from stdin (piped) or a prompt (terminal) and prints a
 * PBKDF2-SHA256 hash for `PROXY_ADMIN_PASSWORD_HASH`.
 *
 * @example
 * ```sh
 * printf '%s' 'my long passphrase' | deno task hash-password
 * ```
 */
import { hashPassword } from "../lib/auth/password.ts";
import { readSecretLine } from "../lib/read_secret_line.ts";

/** Asks at the terminal without echoing what is typed (`prompt()` would show the password). */
async function ask(question: string): Promise<string> {
  await Deno.stderr.write(new TextEncoder().encode(question + " "));
  Deno.stdin.setRaw(true);
  let line: string | null;
  try {
    line = await readSecretLine(Deno.stdin.readable);
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(new TextEncoder().encode("\n"));
  }
  if (line === null) throw new Error("cancelled");
  return line;
}

async function readPassword(): Promise<string> {
  if (Deno.stdin.isTerminal()) {
    const first = await ask("Admin password:");
    const second = await ask("Repeat:");
    if (first !== second) throw new Error("the two passwords differ");
    return first;
  }
  const text = await new Response(Deno.stdin.readable).text();
  return text.replace(/\r?\n$/, "");
}

if (import.meta.main) {
  try {
    const password = await readPassword();
    if (password.length < 12) {
      console.error(
        password.length === 0
          ? "no password given: type one at the prompt or pipe it in (at least 12 characters)"
          : `password too short (${password.length} characters): expected at least 12`,
      );
      Deno.exit(1);
    }
    console.log(await hashPassword(password));
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
}
