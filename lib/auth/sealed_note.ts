/**
 * Short-lived notes a server hands its browser sealed (encrypted and authenticated, as a compact JWE with
 * `dir` + `A256GCM`) under a key derived from `PROXY_JWT_SECRET`: any replica can open what another sealed,
 * nothing is stored, and the browser can neither read nor alter the note. The console uses one to show a new
 * access key once after a redirect (post/redirect/get), so reloading the page never issues another key.
 *
 * @example
 * ```ts
 * const notes = createSealedNotes(config.jwtSecret, "new-key");
 * const sealed = await notes.seal({ keyId: "k1", secret: "ak_…" }, 120);
 * await notes.open(sealed); // { keyId: "k1", secret: "ak_…" }, or null once expired or tampered with
 * ```
 */
import { EncryptJWT, jwtDecrypt } from "jose";

/** Seals and opens notes of one purpose. */
export interface SealedNotes {
  /** `payload` sealed for `ttlSeconds`. */
  seal(payload: Record<string, unknown>, ttlSeconds: number): Promise<string>;
  /** The payload, or null when the note is missing, expired, altered, or sealed for another purpose or key. */
  open(sealed: string | null | undefined): Promise<Record<string, unknown> | null>;
}

/** Creates the notes of `purpose` under `secret` (at least 16 characters). */
export function createSealedNotes(secret: string, purpose: string): SealedNotes {
  if (typeof secret !== "string" || secret.length < 16) {
    throw new RangeError("createSealedNotes: the secret must be at least 16 characters");
  }
  // Domain-separated from the session's signing key and from every other purpose.
  const key = crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`sealed-note\u0000${purpose}\u0000${secret}`),
  )
    .then((bytes) => new Uint8Array(bytes));
  return {
    async seal(payload, ttlSeconds) {
      return await new EncryptJWT(payload)
        .setProtectedHeader({ alg: "dir", enc: "A256GCM" })
        .setIssuedAt()
        .setExpirationTime(`${ttlSeconds}s`)
        .encrypt(await key);
    },
    async open(sealed) {
      if (typeof sealed !== "string" || sealed === "" || sealed.length > 8192) return null;
      try {
        const { payload } = await jwtDecrypt(sealed, await key);
        const { iat: _iat, exp: _exp, ...rest } = payload;
        return rest;
      } catch {
        return null;
      }
    },
  };
}
