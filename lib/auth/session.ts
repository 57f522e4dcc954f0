/**
 * Admin sessions: HS256 JWTs signed with `PROXY_JWT_SECRET` through `jose`, with issuer, audience and expiry.
 *
 * A token is refused once its session was signed out (the revocation list), once the admin password changed (it
 * carries a fingerprint of the password hash it was issued under), and once the admin was renamed (its subject is
 * no longer `PROXY_ADMIN_USERNAME`).
 *
 * @example
 * ```ts
 * const sessions = createSessions({ secret: "…", ttlSeconds: 43200, username: "admin" });
 * const { token } = await sessions.issue("admin");
 * (await sessions.verify(token))?.username; // "admin"
 * ```
 */
import { jwtVerify, SignJWT } from "jose";
import { base64UrlEncode } from "../encoding.ts";

const ISSUER = "claude-code-proxy";
const AUDIENCE = "claude-code-proxy-admin";

/** A verified session. */
export interface Session {
  username: string;
  /** Per-session random value; the console derives its CSRF token from it. */
  sid: string;
  expiresAt: Date;
}

/** Issues and verifies admin session tokens. */
export interface Sessions {
  issue(username: string): Promise<{ token: string; expiresIn: number }>;
  /**
   * The session, or null when the token is missing, forged, expired, for another audience, signed out, or
   * issued under another admin password or to another admin user name.
   */
  verify(token: string): Promise<Session | null>;
  /** Signs the session out everywhere: its token is refused from now on. */
  revoke(session: Session): Promise<void>;
}

/** Where signed-out sessions are remembered (see `revocations.ts`). */
export interface RevocationList {
  has(sid: string): boolean;
  revoke(sid: string, expiresAt: Date): Promise<void>;
}

/** Creates the session service; `now` is injectable for expiry tests. */
export function createSessions(
  opts: {
    secret: string;
    ttlSeconds: number;
    now?: () => Date;
    /** The admin password hash: tokens issued under another one are refused. */
    passwordHash?: string;
    /**
     * The admin user name: tokens issued to another one are refused, so renaming the admin ends the sessions of
     * the old name (they would otherwise go on working, and be audited under a name that no longer signs in).
     */
    username?: string;
    revocations?: RevocationList;
  },
): Sessions {
  const key = new TextEncoder().encode(opts.secret);
  const now = opts.now ?? (() => new Date());
  // Keyed with the signing secret, so the token reveals nothing about the hash.
  const fingerprint = crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
    .then((k) => crypto.subtle.sign("HMAC", k, new TextEncoder().encode(`pwf:${opts.passwordHash ?? ""}`)))
    .then((mac) => base64UrlEncode(new Uint8Array(mac).subarray(0, 16)));
  return {
    async revoke(session) {
      if (!opts.revocations) throw new Error("sessions were created without a revocation list");
      await opts.revocations.revoke(session.sid, session.expiresAt);
    },
    async issue(username) {
      const iat = Math.floor(now().getTime() / 1000);
      const token = await new SignJWT({ sid: crypto.randomUUID(), pwf: await fingerprint })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(username)
        .setIssuedAt(iat)
        .setExpirationTime(iat + opts.ttlSeconds)
        .sign(key);
      return { token, expiresIn: opts.ttlSeconds };
    },
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, key, {
          issuer: ISSUER,
          audience: AUDIENCE,
          algorithms: ["HS256"],
          currentDate: now(),
        });
        if (
          typeof payload.sub !== "string" || typeof payload.sid !== "string" ||
          typeof payload.exp !== "number" || payload.pwf !== await fingerprint ||
          (opts.username !== undefined && payload.sub !== opts.username) ||
          opts.revocations?.has(payload.sid)
        ) {
          return null;
        }
        return { username: payload.sub, sid: payload.sid, expiresAt: new Date(payload.exp * 1000) };
      } catch {
        return null;
      }
    },
  };
}
