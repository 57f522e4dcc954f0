/**
 * The KMS encryptor: envelope encryption with a fresh AWS KMS data key per envelope.
 *
 * Encrypt asks KMS for an AES-256 data key bound to the encryption context `{access_key_id}`, seals the
 * plaintext locally with AES-256-GCM under that key (the access key id is the AAD too), stores only the
 * KMS-wrapped data key, and zeroes the plaintext data key. Decrypt asks KMS to unwrap the data key under the
 * same encryption context, so a row copied onto another access key is refused by KMS itself, and again by GCM.
 *
 * @module
 */

import type { KMSClient, KMSClientConfig } from "@aws-sdk/client-kms";
import {
  assertEnvelopeShape,
  DecryptionError,
  type Encryptor,
  type Envelope,
  importAesKey,
  KEY_BYTES,
  KMS_SCHEME,
  KmsError,
  openAesGcm,
  sealAesGcm,
} from "./envelope.ts";

/**
 * The AWS SDK, loaded on first use: it adds about 25 MB to the process, which a proxy that never stores or reads
 * Bedrock credentials (most tasks, most of the time) need not hold.
 */
const loadSdk = () => import("@aws-sdk/client-kms");
type KmsSdk = Awaited<ReturnType<typeof loadSdk>>;

/** Options of {@link createKmsEncryptor}. */
export interface KmsEncryptorOptions {
  /** KMS key id, key ARN, alias name or alias ARN used for GenerateDataKey. */
  keyId: string;
  /** AWS region of the key. */
  region: string;
  /** Endpoint override (a VPC endpoint, or a fake KMS in tests). */
  endpoint?: string;
  /** Static credentials; when absent the SDK's default provider chain (e.g. the ECS task role) is used. */
  credentials?: KMSClientConfig["credentials"];
  /** A ready client, used instead of building one from the options above (lets tests observe the SDK). */
  client?: KMSClient;
  /**
   * How long one KMS call may take before it fails (default 5,000 ms; a Decrypt takes tens). A KMS that accepts
   * the connection and never answers would otherwise hold every request that opens credentials, for ever.
   */
  requestTimeoutMs?: number;
}

/** The encryption context every data key is bound to: ties the wrapped key to its row. */
function encryptionContext(accessKeyId: string): Record<string, string> {
  return { access_key_id: accessKeyId };
}

/**
 * Turns an SDK failure into a {@link KmsError}. Only service exceptions keep their message: other errors
 * (e.g. a response that failed to parse) may quote the response body, which could hold a plaintext data key.
 */
function kmsFailure(sdk: KmsSdk, operation: "GenerateDataKey" | "Decrypt", err: unknown): KmsError {
  if (err instanceof sdk.KMSServiceException) {
    const detail = err.message ? `: ${err.message.slice(0, 300)}` : "";
    return new KmsError(operation, err.name, `KMS ${operation} failed with ${err.name}${detail}`);
  }
  const name = err instanceof Error ? err.name : "UnknownError";
  return new KmsError(
    operation,
    name,
    `KMS ${operation} failed (${name}): KMS was unreachable or its answer could not be read`,
  );
}

/** Builds the client the way the whole project does: the fetch handler, so tests and production share a path. */
async function buildClient(sdk: KmsSdk, opts: KmsEncryptorOptions): Promise<KMSClient> {
  const { FetchHttpHandler } = await import("@smithy/fetch-http-handler");
  return new sdk.KMSClient({
    region: opts.region,
    requestHandler: new FetchHttpHandler({ requestTimeout: opts.requestTimeoutMs ?? 5_000 }),
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    // A copy, because the SDK annotates the credential object it is given (and fails on a frozen one).
    ...(opts.credentials
      ? { credentials: typeof opts.credentials === "function" ? opts.credentials : { ...opts.credentials } }
      : {}),
  });
}

/** Creates an encryptor that wraps a fresh data key per envelope with the KMS key `opts.keyId`. */
export function createKmsEncryptor(opts: KmsEncryptorOptions): Encryptor {
  if (!opts.keyId) throw new RangeError("createKmsEncryptor needs a KMS key id");
  let ready: Promise<{ sdk: KmsSdk; client: KMSClient }> | null = null;
  const connect = (operation: "GenerateDataKey" | "Decrypt") =>
    (ready ??= loadSdk().then(async (sdk) => ({ sdk, client: opts.client ?? await buildClient(sdk, opts) })))
      .catch((e) => {
        ready = null; // a failed load is retried by the next call
        const name = e instanceof Error ? e.name : "UnknownError";
        throw new KmsError(
          operation,
          name,
          `KMS ${operation} failed: the AWS SDK could not be loaded (${name})`,
        );
      });

  return {
    scheme: KMS_SCHEME,

    async encrypt(plaintext: Uint8Array, accessKeyId: string): Promise<Envelope> {
      const { sdk, client } = await connect("GenerateDataKey");
      let out;
      try {
        out = await client.send(
          new sdk.GenerateDataKeyCommand({
            KeyId: opts.keyId,
            KeySpec: "AES_256",
            EncryptionContext: encryptionContext(accessKeyId),
          }),
        );
      } catch (err) {
        throw kmsFailure(sdk, "GenerateDataKey", err);
      }
      const dataKey = out.Plaintext;
      try {
        if (!dataKey || dataKey.length !== KEY_BYTES || !out.CiphertextBlob?.length) {
          throw new KmsError(
            "GenerateDataKey",
            "InvalidResponse",
            `KMS GenerateDataKey returned no usable ${KEY_BYTES}-byte data key and wrapped key`,
          );
        }
        const key = await importAesKey(dataKey);
        const { ciphertext, iv } = await sealAesGcm(key, plaintext, accessKeyId);
        return {
          ciphertext,
          iv,
          encryptedDataKey: new Uint8Array(out.CiphertextBlob),
          scheme: KMS_SCHEME,
          // The ARN KMS reports pins the exact key even when keyId is an alias that is later re-pointed.
          kmsKeyId: out.KeyId ?? opts.keyId,
        };
      } finally {
        // The plaintext data key must not outlive this call; the CryptoKey holds its own non-extractable copy.
        dataKey?.fill(0);
      }
    },

    async decrypt(envelope: Envelope, accessKeyId: string): Promise<Uint8Array> {
      assertEnvelopeShape(envelope, KMS_SCHEME);
      const { sdk, client } = await connect("Decrypt");
      let out;
      try {
        out = await client.send(
          new sdk.DecryptCommand({
            CiphertextBlob: envelope.encryptedDataKey!,
            EncryptionContext: encryptionContext(accessKeyId),
            // Naming the key makes KMS refuse a blob wrapped by some other key instead of trusting the blob.
            ...(envelope.kmsKeyId ? { KeyId: envelope.kmsKeyId } : {}),
          }),
        );
      } catch (err) {
        if (
          err instanceof sdk.KMSServiceException &&
          (err.name === "InvalidCiphertextException" || err.name === "IncorrectKeyException")
        ) {
          throw new DecryptionError(
            "data-key",
            `KMS refused to decrypt the data key (${err.name}): the encrypted data key was altered, belongs ` +
              "to another access key's row (encryption context mismatch), or was wrapped by another KMS key",
          );
        }
        throw kmsFailure(sdk, "Decrypt", err);
      }
      const dataKey = out.Plaintext;
      try {
        if (!dataKey || dataKey.length !== KEY_BYTES) {
          throw new DecryptionError(
            "data-key",
            `KMS Decrypt returned a data key that is not ${KEY_BYTES} bytes`,
          );
        }
        const key = await importAesKey(dataKey);
        return await openAesGcm(key, envelope.ciphertext, envelope.iv, accessKeyId);
      } finally {
        dataKey?.fill(0);
      }
    },
  };
}
