import assert from "node:assert/strict";
import { createLocalEncryptor } from "./local.ts";
import { DecryptionError, type Envelope, KMS_SCHEME, LOCAL_SCHEME } from "./envelope.ts";
import { decodeJson, encodeJson } from "./json.ts";
import { assertNoSecrets, concatBytes, containsBytes, flipByte, rejectsWith } from "./test_support.ts";

const SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const CREDENTIALS = { accessKeyId: "AKIAEXAMPLEBEDROCK", secretAccessKey: SECRET_ACCESS_KEY };
const ROW = "5f0c2d1e-8a4b-4c3d-9e2f-1a2b3c4d5e6f";
const OTHER_ROW = "0b7e9a44-2c1d-4f6e-8a9b-7c6d5e4f3a2b";

function randomKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

Deno.test("local encryptor round-trips credentials for the same access key", async () => {
  const enc = createLocalEncryptor(randomKey());
  const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
  assert.equal(enc.scheme, LOCAL_SCHEME);
  assert.equal(envelope.scheme, LOCAL_SCHEME);
  assert.equal(envelope.encryptedDataKey, null);
  assert.equal(envelope.kmsKeyId, null);
  assert.equal(envelope.iv.length, 12);
  assert.deepEqual(decodeJson(await enc.decrypt(envelope, ROW)), CREDENTIALS);
});

Deno.test("local encryptor never stores the plaintext and uses a fresh IV per envelope", async () => {
  const enc = createLocalEncryptor(randomKey());
  const plaintext = encodeJson(CREDENTIALS);
  const a = await enc.encrypt(plaintext, ROW);
  const b = await enc.encrypt(plaintext, ROW);
  assert.notDeepEqual(a.iv, b.iv);
  assert.notDeepEqual(a.ciphertext, b.ciphertext);
  const stored = concatBytes(a.ciphertext, a.iv, a.encryptedDataKey);
  assert.ok(!containsBytes(stored, new TextEncoder().encode(SECRET_ACCESS_KEY)));
  // The caller's buffer is left as it was (the encryptor works on its own copy).
  assert.deepEqual(plaintext, encodeJson(CREDENTIALS));
});

Deno.test("local encryptor detects a flipped ciphertext byte, IV byte or tag byte", async () => {
  const key = randomKey();
  const enc = createLocalEncryptor(key);
  const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
  const tampered: Envelope[] = [
    { ...envelope, ciphertext: flipByte(envelope.ciphertext, 0) },
    { ...envelope, ciphertext: flipByte(envelope.ciphertext, -1) }, // the GCM tag
    { ...envelope, iv: flipByte(envelope.iv, 5) },
  ];
  for (const bad of tampered) {
    const err = await rejectsWith(enc.decrypt(bad, ROW), DecryptionError);
    assert.equal(err.check, "authentication");
    assert.match(err.message, /AES-256-GCM authentication failed/);
    assertNoSecrets(err, [key, SECRET_ACCESS_KEY]);
  }
});

Deno.test("local encryptor refuses an envelope moved to another access key's row", async () => {
  const key = randomKey();
  const enc = createLocalEncryptor(key);
  const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
  const err = await rejectsWith(enc.decrypt(envelope, OTHER_ROW), DecryptionError);
  assert.equal(err.check, "authentication");
  assert.match(err.message, /another access key's row/);
  assertNoSecrets(err, [key, SECRET_ACCESS_KEY, ROW, OTHER_ROW]);
});

Deno.test("local encryptor with a different key cannot open the envelope", async () => {
  const key = randomKey();
  const otherKey = randomKey();
  const envelope = await createLocalEncryptor(key).encrypt(encodeJson(CREDENTIALS), ROW);
  const err = await rejectsWith(createLocalEncryptor(otherKey).decrypt(envelope, ROW), DecryptionError);
  assert.equal(err.check, "authentication");
  assertNoSecrets(err, [key, otherKey, SECRET_ACCESS_KEY]);
});

Deno.test("local encryptor keeps working when the caller later overwrites its key buffer", async () => {
  const key = randomKey();
  const enc = createLocalEncryptor(key);
  const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);
  key.fill(0);
  assert.deepEqual(decodeJson(await enc.decrypt(envelope, ROW)), CREDENTIALS);
});

Deno.test("local encryptor rejects a key that is not 32 bytes without echoing it", () => {
  const shortKey = new TextEncoder().encode("dev-local-key-too-short");
  assert.throws(() => createLocalEncryptor(shortKey), (err: unknown) => {
    assert.ok(err instanceof RangeError);
    assert.match(err.message, /32 bytes, got 23/);
    assertNoSecrets(err, [shortKey, "dev-local-key-too-short"]);
    return true;
  });
});

Deno.test("local encryptor rejects malformed envelopes before touching the key", async () => {
  const key = randomKey();
  const enc = createLocalEncryptor(key);
  const envelope = await enc.encrypt(encodeJson(CREDENTIALS), ROW);

  const shortIv = await rejectsWith(
    enc.decrypt({ ...envelope, iv: envelope.iv.slice(0, 11) }, ROW),
    DecryptionError,
  );
  assert.equal(shortIv.check, "envelope");
  assert.match(shortIv.message, /IV must be 12 bytes, got 11/);

  const truncated = await rejectsWith(
    enc.decrypt({ ...envelope, ciphertext: envelope.ciphertext.slice(0, 8) }, ROW),
    DecryptionError,
  );
  assert.equal(truncated.check, "envelope");

  const kmsEnvelope = await rejectsWith(
    enc.decrypt({ ...envelope, scheme: KMS_SCHEME, encryptedDataKey: new Uint8Array(8) }, ROW),
    DecryptionError,
  );
  assert.equal(kmsEnvelope.check, "scheme");
  for (const err of [shortIv, truncated, kmsEnvelope]) assertNoSecrets(err, [key, SECRET_ACCESS_KEY]);
});
