/**
 * Admin password hashing: PBKDF2-SHA256 (Web Crypto) in a self-describing format
 * `pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>`, and the seed's bare SHA-256 hex for compatibility.
 *
 * @example
 * ```ts
 * const stored = await hashPassword("correct horse");
 * await verifyPassword("correct horse", stored); // true
 * ```
 */
import { base64UrlDecode, base64UrlEncode, timingSafeEqual } from "../encoding.ts";

/** OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256. */
export const PBKDF2_ITERATIONS = 600_000;
const HASH_BYTES = 32;

/** Hashes a password with a fresh random salt. */
export async function hashPassword(password: string, iterations = PBKDF2_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await pbkdf2(password, salt, iterations);
  return `pbkdf2-sha256$${iterations}$${base64UrlEncode(salt)}$${base64UrlEncode(hash)}`;
}

/** True when the stored hash uses the weak legacy format (bare SHA-256), which deserves a start-up warning. */
export function isLegacySha256(stored: string): boolean {
  return /^[0-9a-fA-F]{64}$/.test(stored);
}

/** Checks a password against a stored hash in constant time; an unrecognised format never matches. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (isLegacySha256(stored)) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(password)));
    const expected = hexToBytes(stored.toLowerCase());
    return timingSafeEqual(digest, expected);
  }
  const parts = stored.split("$");
  if (parts.length !== 4 || parts[0] !== "pbkdf2-sha256") return false;
  const iterations = Number(parts[1]);
  if (!Number.isInteger(iterations) || iterations < 1) return false;
  const salt = base64UrlDecode(parts[2]);
  const expected = base64UrlDecode(parts[3]);
  const actual = await pbkdf2(password, salt, iterations);
  return timingSafeEqual(actual, expected);
}

async function pbkdf2(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as BufferSource, iterations },
    key,
    HASH_BYTES * 8,
  );
  return new Uint8Array(bits);
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
