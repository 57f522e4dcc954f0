/**
 * Small byte helpers shared by the auth and crypto code.
 *
 * @example
 * ```ts
 * base64UrlEncode(new Uint8Array([255])); // "_w"
 * ```
 */

/**
 * Encodes bytes as padded standard base64. (`Uint8Array.prototype.toBase64` does the same from Deno 2.5, whose
 * type definitions lack it.)
 */
export function base64Encode(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary);
}

/** Decodes standard base64, padded or not; throws on characters outside the alphabet. */
export function base64Decode(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text + "=".repeat((4 - (text.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Encodes bytes as unpadded base64url. */
export function base64UrlEncode(bytes: Uint8Array): string {
  return base64Encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes unpadded (or padded) base64url; throws on characters outside the alphabet. */
export function base64UrlDecode(text: string): Uint8Array {
  return base64Decode(text.replace(/-/g, "+").replace(/_/g, "/"));
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
  return out;
}

/** Compares two byte arrays without an early exit, so timing does not reveal where they differ. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  const length = Math.max(a.length, b.length);
  let diff = a.length ^ b.length;
  for (let i = 0; i < length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** Joins chunks into one array; a single chunk is returned as is, without a copy. */
export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
