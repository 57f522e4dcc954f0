/**
 * Envelope encryption of per-access-key Bedrock credentials: KMS data keys in production, a local
 * AES-256-GCM key in development, both bound to the owning access key id.
 *
 * @module
 */

export {
  CryptoError,
  type DecryptionCheck,
  DecryptionError,
  type Encryptor,
  type Envelope,
  type EnvelopeScheme,
  KMS_SCHEME,
  KmsError,
  LOCAL_SCHEME,
} from "./envelope.ts";
export { createLocalEncryptor } from "./local.ts";
export { createKmsEncryptor, type KmsEncryptorOptions } from "./kms.ts";
export { createEncryptor, type EncryptorConfig } from "./encryptor.ts";
export { decodeJson, encodeJson } from "./json.ts";
