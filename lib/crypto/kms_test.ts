import assert from "node:assert/strict";
import { KMSClient } from "@aws-sdk/client-kms";
import { FetchHttpHandler } from "@smithy/fetch-http-handler";
import { createKmsEncryptor } from "./kms.ts";
import { DecryptionError, type Envelope, KMS_SCHEME, KmsError, LOCAL_SCHEME } from "./envelope.ts";
import { decodeJson, encodeJson } from "./json.ts";
import { assertNoSecrets, concatBytes, containsBytes, flipByte, rejectsWith } from "./test_support.ts";
import {
  FAKE_KMS_CREDENTIALS,
  FAKE_KMS_DEFAULT_KEY_ID,
  type FakeKms,
  startFakeKms,
} from "../../tests/fakes/fake_kms.ts";

const SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const CREDENTIALS = { accessKeyId: "AKIAEXAMPLEBEDROCK", secretAccessKey: SECRET_ACCESS_KEY };
const ROW = "5f0c2d1e-8a4b-4c3d-9e2f-1a2b3c4d5e6f";
const OTHER_ROW = "0b7e9a44-2c1d-4f6e-8a9b-7c6d5e4f3a2b";
const REGION = "us-east-1";
const SECRETS = [SECRET_ACCESS_KEY, FAKE_KMS_CREDENTIALS.secretAccessKey];

/** Runs `fn` against a fresh fake KMS and always stops it. */
async function withFakeKms(fn: (fake: FakeKms) => Promise<void>, keyIds?: string[]): Promise<void> {
  const fake = await startFakeKms(keyIds ? { keyIds } : {});
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

function kmsEncryptor(fake: FakeKms, keyId = FAKE_KMS_DEFAULT_KEY_ID) {
  return createKmsEncryptor({ keyId, region: REGION, endpoint: fake.url, credentials: FAKE_KMS_CREDENTIALS });
}

/**
 * A real SDK client whose responses the test can see: the outputs are the very objects handed to the
 * encryptor, so their data keys can be checked for zeroing afterwards. `copies` keeps the data keys as KMS
 * sent them, before the encryptor wiped them.
 */
function observedClient(fake: FakeKms) {
  const client = new KMSClient({
    region: REGION,
    endpoint: fake.url,
    credentials: { ...FAKE_KMS_CREDENTIALS },
    requestHandler: new FetchHttpHandler(),
  });
  const outputs: { Plaintext?: Uint8Array }[] = [];
  const copies: Uint8Array[] = [];
  client.middlewareStack.add((next) => async (args) => {
    const result = await next(args);
    const output = result.output as { Plaintext?: Uint8Array };
    outputs.push(output);
    if (output.Plaintext) copies.push(new Uint8Array(output.Plaintext));
    return result;
  }, { step: "initialize", name: "observeKmsOutputs" });
  return { client, outputs, copies };
}

Deno.test("KMS encryptor round-trips credentials through the real SDK and a fake KMS", async () => {
  await withFakeKms(async (fake) => {
    const enc = kmsEncryptor(fake);
    assert.equal(enc.scheme, KMS_SCHEME);
    const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
    assert.equal(envelope.scheme, KMS_SCHEME);
    assert.equal(envelope.kmsKeyId, fake.keyArn(FAKE_KMS_DEFAULT_KEY_ID));
    assert.ok(envelope.encryptedDataKey && envelope.encryptedDataKey.length > 32);
    assert.equal(envelope.iv.length, 12);
    assert.deepEqual(decodeJson(await enc.decrypt(envelope, ROW)), CREDENTIALS);
  });
});

Deno.test("KMS encryptor asks for GenerateDataKey then Decrypt, both bound to the access key id", async () => {
  await withFakeKms(async (fake) => {
    const enc = kmsEncryptor(fake);
    const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
    await enc.decrypt(envelope, ROW);
    assert.deepEqual(fake.calls.map((c) => c.target), [
      "TrentService.GenerateDataKey",
      "TrentService.Decrypt",
    ]);
    const [generate, decrypt] = fake.calls.map((c) => c.body as Record<string, unknown>);
    assert.deepEqual(generate, {
      KeyId: FAKE_KMS_DEFAULT_KEY_ID,
      KeySpec: "AES_256",
      EncryptionContext: { access_key_id: ROW },
    });
    assert.deepEqual(decrypt.EncryptionContext, { access_key_id: ROW });
    assert.equal(decrypt.KeyId, fake.keyArn(FAKE_KMS_DEFAULT_KEY_ID));
    assert.deepEqual(
      Uint8Array.from(atob(decrypt.CiphertextBlob as string), (c) => c.charCodeAt(0)),
      envelope.encryptedDataKey,
    );
  });
});

Deno.test("KMS encryptor refuses an envelope moved to another access key's row", async () => {
  await withFakeKms(async (fake) => {
    const { client, copies } = observedClient(fake);
    const enc = createKmsEncryptor({ keyId: FAKE_KMS_DEFAULT_KEY_ID, region: REGION, client });
    const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
    const err = await rejectsWith(enc.decrypt(envelope, OTHER_ROW), DecryptionError);
    assert.equal(err.check, "data-key");
    assert.match(err.message, /InvalidCiphertextException/);
    assert.match(err.message, /encryption context mismatch/);
    assertNoSecrets(err, [...SECRETS, ...copies]);
    // KMS saw the other row's context, which is why it refused.
    assert.deepEqual((fake.calls.at(-1)!.body as Record<string, unknown>).EncryptionContext, {
      access_key_id: OTHER_ROW,
    });
  });
});

Deno.test("KMS encryptor refuses one row's ciphertext spliced into another row's envelope", async () => {
  await withFakeKms(async (fake) => {
    const enc = kmsEncryptor(fake);
    const mine = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
    const theirs = await enc.encrypt(encodeJson({ ...CREDENTIALS, secretAccessKey: "other" }), OTHER_ROW);
    // KMS accepts my data key under my context, but the body was sealed under their data key and their AAD.
    const spliced: Envelope = { ...mine, ciphertext: theirs.ciphertext, iv: theirs.iv };
    const err = await rejectsWith(enc.decrypt(spliced, ROW), DecryptionError);
    assert.equal(err.check, "authentication");
    assertNoSecrets(err, SECRETS);
  });
});

Deno.test("KMS encryptor detects a tampered encrypted data key, ciphertext or IV", async () => {
  await withFakeKms(async (fake) => {
    const { client, copies } = observedClient(fake);
    const enc = createKmsEncryptor({ keyId: FAKE_KMS_DEFAULT_KEY_ID, region: REGION, client });
    const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);

    for (const index of [0, 10, -1]) {
      const badKey = { ...envelope, encryptedDataKey: flipByte(envelope.encryptedDataKey!, index) };
      const err = await rejectsWith(enc.decrypt(badKey, ROW), DecryptionError);
      assert.equal(err.check, "data-key");
      assertNoSecrets(err, [...SECRETS, ...copies]);
    }
    for (
      const bad of [
        { ...envelope, ciphertext: flipByte(envelope.ciphertext, 3) },
        { ...envelope, iv: flipByte(envelope.iv, 0) },
      ]
    ) {
      const err = await rejectsWith(enc.decrypt(bad, ROW), DecryptionError);
      assert.equal(err.check, "authentication");
      assertNoSecrets(err, [...SECRETS, ...copies]);
    }
    const missing = await rejectsWith(
      enc.decrypt({ ...envelope, encryptedDataKey: null }, ROW),
      DecryptionError,
    );
    assert.equal(missing.check, "envelope");
  });
});

Deno.test("KMS envelope holds neither the plaintext nor the plaintext data key", async () => {
  await withFakeKms(async (fake) => {
    const { client, copies } = observedClient(fake);
    const enc = createKmsEncryptor({ keyId: FAKE_KMS_DEFAULT_KEY_ID, region: REGION, client });
    const plaintext = encodeJson(CREDENTIALS);
    const envelope = await enc.encrypt(plaintext, ROW);
    const stored = concatBytes(
      envelope.ciphertext,
      envelope.iv,
      envelope.encryptedDataKey,
      new TextEncoder().encode(envelope.kmsKeyId ?? ""),
    );
    assert.ok(!containsBytes(stored, plaintext));
    assert.ok(!containsBytes(stored, new TextEncoder().encode(SECRET_ACCESS_KEY)));
    assert.equal(copies.length, 1);
    assert.equal(copies[0].length, 32);
    assert.ok(!containsBytes(stored, copies[0]));
  });
});

Deno.test("KMS encryptor zeroes the plaintext data key KMS returned, after encrypt and after decrypt", async () => {
  await withFakeKms(async (fake) => {
    const { client, outputs, copies } = observedClient(fake);
    const enc = createKmsEncryptor({ keyId: FAKE_KMS_DEFAULT_KEY_ID, region: REGION, client });
    const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
    await enc.decrypt(envelope, ROW);
    assert.equal(outputs.length, 2);
    assert.deepEqual(copies[0], copies[1], "Decrypt unwrapped the same data key");
    assert.ok(copies[0].some((b) => b !== 0), "KMS sent a real key");
    for (const output of outputs) assert.deepEqual(output.Plaintext, new Uint8Array(32));
  });
});

Deno.test("KMS encryptor refuses a local-scheme envelope on its own", async () => {
  await withFakeKms(async (fake) => {
    const enc = kmsEncryptor(fake);
    const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
    const err = await rejectsWith(
      enc.decrypt({ ...envelope, scheme: LOCAL_SCHEME, encryptedDataKey: null, kmsKeyId: null }, ROW),
      DecryptionError,
    );
    assert.equal(err.check, "scheme");
  });
});

Deno.test("KMS encryptor reports an unknown KMS key as a KmsError with the AWS error code", async () => {
  await withFakeKms(async (fake) => {
    const enc = kmsEncryptor(fake, "no-such-key");
    const err = await rejectsWith(enc.encrypt(encodeJson(CREDENTIALS), ROW), KmsError);
    assert.equal(err.code, "NotFoundException");
    assert.equal(err.operation, "GenerateDataKey");
    assert.match(err.message, /NotFoundException/);
    assertNoSecrets(err, SECRETS);
  });
});

Deno.test("KMS encryptor refuses a data key wrapped by another KMS key than the envelope names", async () => {
  await withFakeKms(async (fake) => {
    const a = kmsEncryptor(fake, "key-a");
    const b = kmsEncryptor(fake, "key-b");
    const envelope = await a.encrypt(encodeJson(CREDENTIALS), ROW);
    assert.deepEqual(
      decodeJson(await b.decrypt(envelope, ROW)),
      CREDENTIALS,
      "the stored key id is what counts",
    );
    const err = await rejectsWith(
      b.decrypt({ ...envelope, kmsKeyId: fake.keyArn("key-b") }, ROW),
      DecryptionError,
    );
    assert.equal(err.check, "data-key");
    assert.match(err.message, /IncorrectKeyException/);
  }, ["key-a", "key-b"]);
});

Deno.test("KMS encryptor reports wrong AWS credentials as a KmsError without the secret", async () => {
  await withFakeKms(async (fake) => {
    const wrongSecret = "not-the-test-secret-0123456789";
    const enc = createKmsEncryptor({
      keyId: FAKE_KMS_DEFAULT_KEY_ID,
      region: REGION,
      endpoint: fake.url,
      credentials: { accessKeyId: FAKE_KMS_CREDENTIALS.accessKeyId, secretAccessKey: wrongSecret },
    });
    const err = await rejectsWith(enc.encrypt(encodeJson(CREDENTIALS), ROW), KmsError);
    assert.equal(err.code, "InvalidSignatureException");
    assertNoSecrets(err, [...SECRETS, wrongSecret]);
    assert.equal(fake.calls.length, 0);
  });
});

Deno.test("KMS encryptor reports an unreachable KMS as a KmsError", async () => {
  const fake = await startFakeKms();
  const url = fake.url;
  await fake.close();
  const client = new KMSClient({
    region: REGION,
    endpoint: url,
    credentials: { ...FAKE_KMS_CREDENTIALS },
    requestHandler: new FetchHttpHandler(),
    maxAttempts: 1,
  });
  const enc = createKmsEncryptor({ keyId: FAKE_KMS_DEFAULT_KEY_ID, region: REGION, client });
  const err = await rejectsWith(enc.encrypt(encodeJson(CREDENTIALS), ROW), KmsError);
  assert.equal(err.operation, "GenerateDataKey");
  assertNoSecrets(err, SECRETS);
});

Deno.test("a KMS that accepts the connection and never answers fails the call within its timeout", async () => {
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })().catch(() => {});
  try {
    const enc = createKmsEncryptor({
      keyId: FAKE_KMS_DEFAULT_KEY_ID,
      region: REGION,
      endpoint: `http://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`,
      credentials: FAKE_KMS_CREDENTIALS,
      requestTimeoutMs: 200,
    });
    const started = performance.now();
    const err = await rejectsWith(enc.encrypt(encodeJson(CREDENTIALS), ROW), KmsError);
    const took = performance.now() - started;
    assert.equal(err.operation, "GenerateDataKey");
    // The SDK's own retries (3 attempts with backoff) included: seconds, not for ever.
    assert.ok(took < 5_000, `took ${Math.round(took)} ms`);
  } finally {
    silent.close();
    for (const c of held) c.close();
    await accepting;
  }
});
