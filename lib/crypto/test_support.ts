/**
 * Helpers shared by this folder's tests (not used by production code).
 *
 * @module
 */

import assert from "node:assert/strict";

/** The renderings a leaked secret could take in an error: UTF-8 text, hex, base64, and the byte list. */
function renderings(secret: string | Uint8Array): string[] {
  if (typeof secret === "string") return [secret];
  let binary = "";
  for (const b of secret) binary += String.fromCharCode(b);
  const out = [
    Array.from(secret, (b) => b.toString(16).padStart(2, "0")).join(""),
    btoa(binary),
    Array.from(secret).join(","),
  ];
  const text = new TextDecoder("utf-8", { fatal: false }).decode(secret);
  if (!text.includes("\uFFFD")) out.push(text);
  return out;
}

/** Asserts that neither the message, the string form nor the own properties of `err` mention any secret. */
export function assertNoSecrets(err: unknown, secrets: (string | Uint8Array)[]): void {
  assert.ok(err instanceof Error, "expected an Error");
  const own: Record<string, unknown> = {};
  for (const key of Object.getOwnPropertyNames(err)) {
    own[key] = (err as unknown as Record<string, unknown>)[key];
  }
  const surfaces = [err.message, String(err), JSON.stringify(own)];
  for (const secret of secrets) {
    for (const rendering of renderings(secret)) {
      for (const surface of surfaces) {
        assert.ok(!surface.includes(rendering), `error exposes a secret: ${err.name}`);
      }
    }
  }
}

/** Returns a copy of `bytes` with one bit flipped at `index` (negative counts from the end). */
export function flipByte(bytes: Uint8Array, index: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[index < 0 ? copy.length + index : index] ^= 0x01;
  return copy;
}

/** True when `needle` occurs as a contiguous run inside `haystack`. */
export function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return true;
  }
  return false;
}

/** Concatenates byte arrays (e.g. every stored field of an envelope). */
export function concatBytes(...parts: (Uint8Array | null)[]): Uint8Array {
  const present = parts.filter((p): p is Uint8Array => p !== null);
  const out = new Uint8Array(present.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of present) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Awaits `promise`, asserts it rejected with an instance of `type`, and returns the error. */
export async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (err) {
    assert.ok(
      err instanceof type,
      `expected ${type.name}, got ${err instanceof Error ? err.name : String(err)}`,
    );
    return err;
  }
  assert.fail(`expected a rejection with ${type.name}`);
}
