/**
 * Serialises the credential objects that get encrypted (e.g. Bedrock access key id and secret) to bytes.
 *
 * @module
 */

import { CryptoError } from "./envelope.ts";

const encoder = new TextEncoder();
// fatal: a corrupted plaintext should fail loudly rather than decode to replacement characters.
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes `value` as UTF-8 JSON bytes, ready for {@link Encryptor.encrypt}. */
export function encodeJson(value: unknown): Uint8Array {
  const text = JSON.stringify(value);
  if (text === undefined) throw new CryptoError("value cannot be encoded as JSON");
  return encoder.encode(text);
}

/**
 * Decodes UTF-8 JSON bytes produced by {@link encodeJson}. When `parse` is given (e.g. a zod schema's
 * `parse`), its result is returned. Errors never quote the bytes: they are decrypted secrets.
 */
export function decodeJson<T = unknown>(bytes: Uint8Array, parse?: (value: unknown) => T): T {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    // JSON.parse's SyntaxError quotes part of its input, which here would be the secret.
    throw new CryptoError("decrypted value is not valid UTF-8 JSON");
  }
  return parse ? parse(value) : value as T;
}
