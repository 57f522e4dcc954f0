/**
 * The local encryptor: AES-256-GCM under a key from the proxy's configuration, for development and for
 * deployments without KMS (and for reading rows written before a deployment moved to KMS).
 *
 * @module
 */

import {
  assertEnvelopeShape,
  type Encryptor,
  type Envelope,
  importAesKey,
  KEY_BYTES,
  LOCAL_SCHEME,
  openAesGcm,
  sealAesGcm,
} from "./envelope.ts";

/**
 * Creates an encryptor sealing with AES-256-GCM under `key32`, binding each envelope to its access key id
 * as additional authenticated data. Throws a `RangeError` when the key is not 32 bytes.
 */
export function createLocalEncryptor(key32: Uint8Array): Encryptor {
  if (key32.length !== KEY_BYTES) {
    // Only the length is reported: the bytes themselves are key material.
    throw new RangeError(`local encryption key must be ${KEY_BYTES} bytes, got ${key32.length}`);
  }
  // Imported once and kept non-extractable; importAesKey copies the bytes before the caller can change them.
  const key = importAesKey(key32);

  return {
    scheme: LOCAL_SCHEME,

    async encrypt(plaintext: Uint8Array, accessKeyId: string): Promise<Envelope> {
      const { ciphertext, iv } = await sealAesGcm(await key, plaintext, accessKeyId);
      return { ciphertext, iv, encryptedDataKey: null, scheme: LOCAL_SCHEME, kmsKeyId: null };
    },

    async decrypt(envelope: Envelope, accessKeyId: string): Promise<Uint8Array> {
      assertEnvelopeShape(envelope, LOCAL_SCHEME);
      return await openAesGcm(await key, envelope.ciphertext, envelope.iv, accessKeyId);
    },
  };
}
