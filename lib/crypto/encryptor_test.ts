import assert from "node:assert/strict";
import { createEncryptor } from "./encryptor.ts";
import { createLocalEncryptor } from "./local.ts";
import { DecryptionError, type Envelope, KMS_SCHEME, LOCAL_SCHEME } from "./envelope.ts";
import { decodeJson, encodeJson } from "./json.ts";
import { assertNoSecrets, rejectsWith } from "./test_support.ts";
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

function randomKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

async function withFakeKms(fn: (fake: FakeKms) => Promise<void>): Promise<void> {
  const fake = await startFakeKms();
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

function kmsConfig(fake: FakeKms, localKey: Uint8Array) {
  return {
    kmsKeyId: FAKE_KMS_DEFAULT_KEY_ID,
    kmsEndpoint: fake.url,
    region: "us-east-1",
    localKey,
    kmsCredentials: FAKE_KMS_CREDENTIALS,
  };
}

Deno.test("createEncryptor seals with the local key when no KMS key id is configured", async () => {
  const localKey = randomKey();
  const enc = createEncryptor({ kmsKeyId: "", region: "us-east-1", localKey });
  assert.equal(enc.scheme, LOCAL_SCHEME);
  const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
  assert.equal(envelope.scheme, LOCAL_SCHEME);
  assert.deepEqual(decodeJson(await enc.decrypt(envelope, ROW)), CREDENTIALS);
  // Interoperable with a plain local encryptor over the same key.
  assert.deepEqual(decodeJson(await createLocalEncryptor(localKey).decrypt(envelope, ROW)), CREDENTIALS);
});

Deno.test("createEncryptor seals with KMS when a KMS key id is configured", async () => {
  await withFakeKms(async (fake) => {
    const enc = createEncryptor(kmsConfig(fake, randomKey()));
    assert.equal(enc.scheme, KMS_SCHEME);
    const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
    assert.equal(envelope.scheme, KMS_SCHEME);
    assert.deepEqual(decodeJson(await enc.decrypt(envelope, ROW)), CREDENTIALS);
    assert.deepEqual(fake.calls.map((c) => c.target), [
      "TrentService.GenerateDataKey",
      "TrentService.Decrypt",
    ]);
  });
});

Deno.test("a local-scheme envelope still decrypts after the deployment moves to KMS", async () => {
  await withFakeKms(async (fake) => {
    const localKey = randomKey();
    const before = createEncryptor({ kmsKeyId: "", region: "us-east-1", localKey });
    const oldRow = await before.encrypt(encodeJson(CREDENTIALS), ROW);

    const after = createEncryptor(kmsConfig(fake, localKey));
    assert.deepEqual(decodeJson(await after.decrypt(oldRow, ROW)), CREDENTIALS);
    assert.equal(fake.calls.length, 0, "a local envelope never goes to KMS");
    // The old row is still bound to its access key.
    const err = await rejectsWith(after.decrypt(oldRow, OTHER_ROW), DecryptionError);
    assert.equal(err.check, "authentication");
    assertNoSecrets(err, [localKey, SECRET_ACCESS_KEY]);
  });
});

Deno.test("a KMS envelope on a deployment without KMS fails with a scheme error", async () => {
  await withFakeKms(async (fake) => {
    const localKey = randomKey();
    const kmsRow = await createEncryptor(kmsConfig(fake, localKey)).encrypt(encodeJson(CREDENTIALS), ROW);
    const localOnly = createEncryptor({ kmsKeyId: "", region: "us-east-1", localKey });
    const err = await rejectsWith(localOnly.decrypt(kmsRow, ROW), DecryptionError);
    assert.equal(err.check, "scheme");
    assert.match(err.message, /no KMS key is configured/);
    assertNoSecrets(err, [localKey, SECRET_ACCESS_KEY]);
  });
});

Deno.test("with KMS configured the local key may be omitted, and then local rows are refused", async () => {
  await withFakeKms(async (fake) => {
    const localKey = randomKey();
    const oldRow = await createLocalEncryptor(localKey).encrypt(encodeJson(CREDENTIALS), ROW);
    const enc = createEncryptor(kmsConfig(fake, new Uint8Array(0)));
    const fresh = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
    assert.deepEqual(decodeJson(await enc.decrypt(fresh, ROW)), CREDENTIALS);
    const err = await rejectsWith(enc.decrypt(oldRow, ROW), DecryptionError);
    assert.equal(err.check, "scheme");
    assert.match(err.message, /no local key is configured/);
  });
});

Deno.test("createEncryptor without KMS requires a 32-byte local key", () => {
  assert.throws(
    () => createEncryptor({ kmsKeyId: "", region: "us-east-1", localKey: new Uint8Array(0) }),
    RangeError,
  );
  assert.throws(
    () => createEncryptor({ kmsKeyId: "", region: "us-east-1", localKey: new Uint8Array(31) }),
    RangeError,
  );
});

Deno.test("createEncryptor refuses an envelope of an unknown scheme", async () => {
  const enc = createEncryptor({ kmsKeyId: "", region: "us-east-1", localKey: randomKey() });
  const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
  const odd = { ...envelope, scheme: "rot13" } as unknown as Envelope;
  const err = await rejectsWith(enc.decrypt(odd, ROW), DecryptionError);
  assert.equal(err.check, "envelope");
  const proto = { ...envelope, scheme: "__proto__" } as unknown as Envelope;
  assert.equal((await rejectsWith(enc.decrypt(proto, ROW), DecryptionError)).check, "envelope");
});
