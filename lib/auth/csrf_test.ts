import assert from "node:assert/strict";
import { createCsrf } from "./csrf.ts";

const SECRET = "test-jwt-secret-0123456789abcdef0123456789";

Deno.test("a session token verifies for its own session only", async () => {
  const csrf = createCsrf(SECRET);
  const token = await csrf.sessionToken("sid-1");
  assert.match(token, /^[\w-]{43}$/);
  assert.equal(await csrf.sessionToken("sid-1"), token, "deterministic: no server-side state");
  assert.equal(await csrf.verifySession("sid-1", token), true);
  assert.equal(await csrf.verifySession("sid-2", token), false);
  assert.equal(await csrf.verifySession("", token), false);
});

Deno.test("a token made under another secret, a tampered token or a non-string is refused", async () => {
  const csrf = createCsrf(SECRET);
  const other = await createCsrf("another-secret-entirely-0123456789").sessionToken("sid-1");
  assert.equal(await csrf.verifySession("sid-1", other), false);
  const token = await csrf.sessionToken("sid-1");
  const tampered = (token[0] === "A" ? "B" : "A") + token.slice(1);
  assert.equal(await csrf.verifySession("sid-1", tampered), false);
  assert.equal(await csrf.verifySession("sid-1", token + "x"), false);
  for (const bad of [undefined, null, "", 42, [token], { token }, "x".repeat(5000)]) {
    assert.equal(await csrf.verifySession("sid-1", bad), false, String(bad));
  }
});

Deno.test("login tokens are bound to the pre-session nonce and never pass as session tokens", async () => {
  const csrf = createCsrf(SECRET);
  const nonce = csrf.newLoginNonce();
  assert.match(nonce, /^[\w-]{32}$/);
  assert.notEqual(csrf.newLoginNonce(), nonce);
  const token = await csrf.loginToken(nonce);
  assert.equal(await csrf.verifyLogin(nonce, token), true);
  assert.equal(await csrf.verifyLogin(csrf.newLoginNonce(), token), false);
  assert.equal(await csrf.verifyLogin(undefined, token), false);
  assert.equal(await csrf.verifyLogin("short", await csrf.loginToken("short")), false);
  assert.equal(await csrf.verifySession(nonce, token), false, "purposes are domain-separated");
  assert.equal(await csrf.verifyLogin(nonce, await csrf.sessionToken(nonce)), false);
});

Deno.test("a short secret is refused", () => {
  assert.throws(() => createCsrf("short"), RangeError);
});
