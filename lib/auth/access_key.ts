/**
 * Access keys: `ak_` + 32 random bytes in base64url, shown once, stored only as HMAC-SHA256 under
 * `PROXY_KEY_HASHER_SECRET` (Web Crypto).
 *
 * @example
 * ```ts
 * const hasher = await createKeyHasher("server secret");
 * const { key, prefix } = generateAccessKey();
 * const hash = await hasher.hash(key); // 64 hex characters, what the database keeps
 * ```
 */
import { base64UrlEncode, toHex } from "../encoding.ts";

const KEY_PATTERN = /^ak_[A-Za-z0-9_-]{43}$/;

/** A freshly generated access key and its display prefix. */
export function generateAccessKey(): { key: string; prefix: string } {
  const key = `ak_${base64UrlEncode(crypto.getRandomValues(new Uint8Array(32)))}`;
  return { key, prefix: displayPrefix(key) };
}

/** The part of a key that may be shown and logged: `ak_` and five characters. */
export function displayPrefix(key: string): string {
  return key.slice(0, 8);
}

/** True when `key` has the shape of an access key; anything else is refused without a lookup. */
export function isWellFormedKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** HMAC-SHA256 with the server secret; the CryptoKey is imported once. */
export interface KeyHasher {
  hash(key: string): Promise<string>;
}

/** Imports the HMAC key once for all later hashing. */
export async function createKeyHasher(secret: string): Promise<KeyHasher> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return {
    async hash(key) {
      const mac = await crypto.subtle.sign("HMAC", cryptoKey, new TextEncoder().encode(key));
      return toHex(new Uint8Array(mac));
    },
  };
}
