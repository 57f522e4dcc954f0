/**
 * Admin sessions: HS256 JWTs signed with `PROXY_JWT_SECRET` through `jose`, with issuer, audience and expiry.
 *
 * @example
 * ```ts
 * const sessions = createSessions({ secret: "…", ttlSeconds: 43200 });
 * const { token } = await sessions.issue("admin");
 * (await sessions.verify(token))?.username; // "admin"
 * ```
 */
import { jwtVerify, SignJWT } from "jose";

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
  /** The session, or null when the token is missing, forged, expired or for another audience. */
  verify(token: string): Promise<Session | null>;
}

/** Creates the session service; `now` is injectable for expiry tests. */
export function createSessions(
  opts: { secret: string; ttlSeconds: number; now?: () => Date },
): Sessions {
  const key = new TextEncoder().encode(opts.secret);
  const now = opts.now ?? (() => new Date());
  return {
    async issue(username) {
      const iat = Math.floor(now().getTime() / 1000);
      const token = await new SignJWT({ sid: crypto.randomUUID() })
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
          typeof payload.exp !== "number"
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
