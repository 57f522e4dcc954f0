/**
 * Envelope types, typed errors and the AES-256-GCM primitives shared by the local and KMS encryptors.
 *
 * Every envelope is sealed with AES-256-GCM and the owning access key id as additional authenticated data,
 * so a row copied onto another access key fails authentication instead of silently decrypting.
 *
 * @module
 */

/** The schemes an envelope can be sealed with; stored beside the row so decryption can dispatch on it. */
export type EnvelopeScheme = "local-aes-256-gcm" | "kms-aes-256-gcm";

/** The local scheme: AES-256-GCM under a key held in the proxy's configuration. */
export const LOCAL_SCHEME = "local-aes-256-gcm" satisfies EnvelopeScheme;

/** The KMS scheme: AES-256-GCM under a per-envelope data key generated and wrapped by AWS KMS. */
export const KMS_SCHEME = "kms-aes-256-gcm" satisfies EnvelopeScheme;

/** An encrypted value as stored at rest. All byte fields are safe to persist; none is secret on its own. */
export interface Envelope {
  /** AES-256-GCM output: the encrypted bytes followed by the 16-byte authentication tag. */
  ciphertext: Uint8Array;
  /** The 12-byte GCM nonce, random per envelope. */
  iv: Uint8Array;
  /** The data key as wrapped by KMS (`kms-aes-256-gcm`); `null` for the local scheme. */
  encryptedDataKey: Uint8Array | null;
  /** Which mechanism sealed this envelope. */
  scheme: EnvelopeScheme;
  /** The KMS key (ARN as reported by KMS) that wrapped the data key; `null` for the local scheme. */
  kmsKeyId: string | null;
}

/** Seals and opens envelopes bound to one access key id (the row the credentials belong to). */
export interface Encryptor {
  /** The scheme new envelopes are sealed with. */
  readonly scheme: EnvelopeScheme;
  /** Encrypts `plaintext` for the row of `accessKeyId`. The caller still owns (and may zero) `plaintext`. */
  encrypt(plaintext: Uint8Array, accessKeyId: string): Promise<Envelope>;
  /**
   * Opens an envelope sealed for `accessKeyId`. Rejects with {@link DecryptionError} when any integrity
   * check fails. The returned bytes are a fresh buffer the caller should zero once done with them.
   */
  decrypt(envelope: Envelope, accessKeyId: string): Promise<Uint8Array>;
}

/** Which check refused an envelope; lets callers and logs tell a corrupt row from a missing key. */
export type DecryptionCheck =
  /** The envelope's shape is wrong (IV length, missing data key, unknown scheme). */
  | "envelope"
  /** No mechanism for the envelope's scheme is configured here (e.g. a KMS row on a local-only deployment). */
  | "scheme"
  /** AES-GCM authentication failed: altered ciphertext or IV, another row's access key id, or another key. */
  | "authentication"
  /** KMS refused to unwrap the data key: altered data key, another row's encryption context, or another key. */
  | "data-key";

/** Base class of this module's errors; messages never contain key material or plaintext. */
export class CryptoError extends Error {
  /** Builds the error; `message` must already be free of secrets. */
  constructor(message: string) {
    super(message);
    this.name = "CryptoError";
  }
}

/** An envelope could not be opened because an integrity or availability check failed. */
export class DecryptionError extends CryptoError {
  /** The check that failed. */
  readonly check: DecryptionCheck;
  /** Builds the error for `check`; `message` must already be free of secrets. */
  constructor(check: DecryptionCheck, message: string) {
    super(message);
    this.name = "DecryptionError";
    this.check = check;
  }
}

/** KMS could not be used (unreachable, access denied, unknown key, throttled): an operational problem. */
export class KmsError extends CryptoError {
  /** The KMS operation that failed. */
  readonly operation: "GenerateDataKey" | "Decrypt";
  /** The AWS error code (e.g. `NotFoundException`), or the JavaScript error name for transport failures. */
  readonly code: string;
  /** Builds the error; the original SDK error is deliberately not kept as `cause` (it holds the raw response). */
  constructor(operation: "GenerateDataKey" | "Decrypt", code: string, message: string) {
    super(message);
    this.name = "KmsError";
    this.operation = operation;
    this.code = code;
  }
}

/** Length in bytes of an AES-256 key. */
export const KEY_BYTES = 32;
/** Length in bytes of the GCM nonce; 96 bits is the size GCM is specified and fastest for. */
export const IV_BYTES = 12;
/** Length in bytes of the GCM authentication tag appended to the ciphertext. */
export const TAG_BYTES = 16;

const utf8 = new TextEncoder();

/**
 * Copies bytes into a fresh `ArrayBuffer`-backed array, the only kind Web Crypto's typings accept.
 * Callers zero the copy when it held a secret.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/** Imports 32 raw bytes as a non-extractable AES-GCM key; the input buffer is not modified. */
export async function importAesKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== KEY_BYTES) {
    // Only the length is reported: the bytes themselves are key material.
    throw new CryptoError(`AES-256 key must be ${KEY_BYTES} bytes, got ${raw.length}`);
  }
  const copy = copyBytes(raw);
  try {
    return await crypto.subtle.importKey("raw", copy, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  } finally {
    copy.fill(0);
  }
}

/** Seals `plaintext` with a fresh random IV and `accessKeyId` as additional authenticated data. */
export async function sealAesGcm(
  key: CryptoKey,
  plaintext: Uint8Array,
  accessKeyId: string,
): Promise<{ ciphertext: Uint8Array; iv: Uint8Array }> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const data = copyBytes(plaintext);
  try {
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: utf8.encode(accessKeyId), tagLength: TAG_BYTES * 8 },
      key,
      data,
    );
    return { ciphertext: new Uint8Array(sealed), iv };
  } finally {
    data.fill(0);
  }
}

/** Opens an AES-GCM envelope body; any mismatch surfaces as a {@link DecryptionError} of check `authentication`. */
export async function openAesGcm(
  key: CryptoKey,
  ciphertext: Uint8Array,
  iv: Uint8Array,
  accessKeyId: string,
): Promise<Uint8Array> {
  try {
    const opened = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: copyBytes(iv),
        additionalData: utf8.encode(accessKeyId),
        tagLength: TAG_BYTES * 8,
      },
      key,
      copyBytes(ciphertext),
    );
    return new Uint8Array(opened);
  } catch {
    // GCM cannot say which input was wrong, so the message names every possibility it covers.
    throw new DecryptionError(
      "authentication",
      "AES-256-GCM authentication failed: the ciphertext or IV was altered, the envelope belongs to another " +
        "access key's row, or it was sealed with a different key",
    );
  }
}

/** Rejects envelopes whose shape cannot be valid for `scheme`, before any key is touched. */
export function assertEnvelopeShape(envelope: Envelope, scheme: EnvelopeScheme): void {
  if (envelope.scheme !== scheme) {
    throw new DecryptionError(
      "scheme",
      `envelope scheme "${envelope.scheme}" cannot be opened as "${scheme}"`,
    );
  }
  if (!(envelope.iv instanceof Uint8Array) || envelope.iv.length !== IV_BYTES) {
    throw new DecryptionError(
      "envelope",
      `envelope IV must be ${IV_BYTES} bytes, got ${envelope.iv?.length ?? "none"}`,
    );
  }
  if (!(envelope.ciphertext instanceof Uint8Array) || envelope.ciphertext.length < TAG_BYTES) {
    throw new DecryptionError(
      "envelope",
      `envelope ciphertext must be at least ${TAG_BYTES} bytes (the GCM tag), got ${
        envelope.ciphertext?.length ?? "none"
      }`,
    );
  }
  if (scheme === KMS_SCHEME) {
    if (!(envelope.encryptedDataKey instanceof Uint8Array) || envelope.encryptedDataKey.length === 0) {
      throw new DecryptionError("envelope", "KMS envelope has no encrypted data key");
    }
  }
}
