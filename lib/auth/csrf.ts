/**
 * CSRF tokens for the console's forms, derived with HMAC-SHA256 under `PROXY_JWT_SECRET` so nothing is stored:
 *
 * - signed in: the token is bound to the session's random `sid` (a token for one session is useless in another,
 *   and signing out makes it worthless);
 * - before sign-in: the login form gets a random nonce in a short-lived `HttpOnly` cookie and a token bound to
 *   that nonce, so a third-party page cannot sign a browser into the console (login CSRF).
 *
 * Tokens are compared in constant time. Purposes are domain-separated so a login token never passes as a session
 * token for the same value.
 *
 * @example
 * ```ts
 * const csrf = createCsrf(config.jwtSecret);
 * const token = await csrf.sessionToken(session.sid);       // put in every form as a hidden field
 * await csrf.verifySession(session.sid, form.get("_csrf")); // true
 * ```
 */
import { base64UrlEncode, timingSafeEqual } from "../encoding.ts";

/** Issues and checks CSRF tokens. */
export interface Csrf {
  /** The form token of a signed-in session. */
  sessionToken(sid: string): Promise<string>;
  /** Whether `token` is the form token of the session `sid`; false for anything that is not a string. */
  verifySession(sid: string, token: unknown): Promise<boolean>;
  /** A fresh random nonce for the pre-session cookie. */
  newLoginNonce(): string;
  /** The login form's token for a pre-session nonce. */
  loginToken(nonce: string): Promise<string>;
  /** Whether `token` matches the pre-session `nonce` (false when either is missing). */
  verifyLogin(nonce: string | null | undefined, token: unknown): Promise<boolean>;
}

const MAX_TOKEN_LENGTH = 128;

/** Creates the CSRF service over a secret (at least 16 characters). */
export function createCsrf(secret: string): Csrf {
  if (typeof secret !== "string" || secret.length < 16) {
    throw new RangeError("createCsrf: the secret must be at least 16 characters");
  }
  const encoder = new TextEncoder();
  const key = crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = async (purpose: string, value: string) =>
    new Uint8Array(
      await crypto.subtle.sign("HMAC", await key, encoder.encode(`csrf.v1\0${purpose}\0${value}`)),
    );
  const token = async (purpose: string, value: string) => base64UrlEncode(await mac(purpose, value));
  const check = async (purpose: string, value: string, given: unknown) => {
    if (typeof given !== "string" || given.length === 0 || given.length > MAX_TOKEN_LENGTH) return false;
    const expected = encoder.encode(await token(purpose, value));
    return timingSafeEqual(encoder.encode(given), expected);
  };

  return {
    sessionToken: (sid) => token("session", sid),
    verifySession: (sid, given) => (sid ? check("session", sid, given) : Promise.resolve(false)),
    newLoginNonce: () => base64UrlEncode(crypto.getRandomValues(new Uint8Array(24))),
    loginToken: (nonce) => token("login", nonce),
    verifyLogin: (nonce, given) =>
      typeof nonce === "string" && nonce.length >= 16 && nonce.length <= MAX_TOKEN_LENGTH
        ? check("login", nonce, given)
        : Promise.resolve(false),
  };
}
