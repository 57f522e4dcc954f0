/**
 * Chooses the encryptor from configuration: KMS when a key id is configured, the local key otherwise.
 * Decryption dispatches on each envelope's scheme, so rows written before a move to KMS stay readable.
 *
 * @module
 */

import { DecryptionError, type Encryptor, type Envelope, KMS_SCHEME, LOCAL_SCHEME } from "./envelope.ts";
import { createKmsEncryptor, type KmsEncryptorOptions } from "./kms.ts";
import { createLocalEncryptor } from "./local.ts";

/** What {@link createEncryptor} needs from the proxy's configuration. */
export interface EncryptorConfig {
  /** `PROXY_KMS_KEY_ID`; empty selects the local scheme for new envelopes. */
  kmsKeyId: string;
  /** KMS endpoint override (VPC endpoint, or a fake KMS in tests). */
  kmsEndpoint?: string;
  /** AWS region of the KMS key. */
  region: string;
  /**
   * `PROXY_LOCAL_ENCRYPTION_KEY` as 32 bytes. Always used to read local-scheme rows; it may be empty only
   * when a KMS key is configured, in which case local-scheme rows cannot be read.
   */
  localKey: Uint8Array;
  /** Static KMS credentials; the SDK's default chain (e.g. the ECS task role) is used when absent. */
  kmsCredentials?: KmsEncryptorOptions["credentials"];
}

/**
 * Creates the project's encryptor: new envelopes use KMS when `cfg.kmsKeyId` is non-empty, the local key
 * otherwise; `decrypt` opens an envelope of either scheme whose mechanism is configured, and otherwise
 * rejects with a {@link DecryptionError} of check `scheme`.
 */
export function createEncryptor(cfg: EncryptorConfig): Encryptor {
  const kms = cfg.kmsKeyId
    ? createKmsEncryptor({
      keyId: cfg.kmsKeyId,
      region: cfg.region,
      endpoint: cfg.kmsEndpoint || undefined,
      credentials: cfg.kmsCredentials,
    })
    : null;
  // With KMS configured the local key only serves old rows, so a deployment may drop it; without KMS it is
  // the only mechanism and createLocalEncryptor rejects a missing or short key.
  const local = kms && cfg.localKey.length === 0 ? null : createLocalEncryptor(cfg.localKey);
  const primary = (kms ?? local)!;

  const mechanisms: Record<Envelope["scheme"], Encryptor | null> = {
    [LOCAL_SCHEME]: local,
    [KMS_SCHEME]: kms,
  };

  return {
    scheme: primary.scheme,
    encrypt: (plaintext, accessKeyId) => primary.encrypt(plaintext, accessKeyId),
    decrypt(envelope, accessKeyId) {
      const mechanism = Object.hasOwn(mechanisms, envelope.scheme) ? mechanisms[envelope.scheme] : undefined;
      if (mechanism === undefined) {
        return Promise.reject(
          new DecryptionError(
            "envelope",
            `unknown envelope scheme "${String(envelope.scheme).slice(0, 40)}"`,
          ),
        );
      }
      if (mechanism === null) {
        return Promise.reject(
          new DecryptionError(
            "scheme",
            envelope.scheme === KMS_SCHEME
              ? "envelope was sealed with KMS but no KMS key is configured (PROXY_KMS_KEY_ID)"
              : "envelope was sealed with the local key but no local key is configured (PROXY_LOCAL_ENCRYPTION_KEY)",
          ),
        );
      }
      return mechanism.decrypt(envelope, accessKeyId);
    },
  };
}
