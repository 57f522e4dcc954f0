import assert from "node:assert/strict";
import { DecryptCommand, GenerateDataKeyCommand, KMSClient, KMSServiceException } from "@aws-sdk/client-kms";
import { FetchHttpHandler } from "@smithy/fetch-http-handler";
import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";
import { FAKE_KMS_CREDENTIALS, FAKE_KMS_DEFAULT_KEY_ID, type FakeKms, startFakeKms } from "./fake_kms.ts";

const REGION = "us-east-1";

async function withFakeKms(fn: (fake: FakeKms) => Promise<void>, keyIds?: string[]): Promise<void> {
  const fake = await startFakeKms(keyIds ? { keyIds } : {});
  try {
    await fn(fake);
  } finally {
    await fake.close();
  }
}

function sdk(fake: FakeKms, credentials = FAKE_KMS_CREDENTIALS, region = REGION): KMSClient {
  return new KMSClient({
    region,
    endpoint: fake.url,
    credentials: { ...credentials },
    requestHandler: new FetchHttpHandler(),
    maxAttempts: 1,
  });
}

async function sdkError(promise: Promise<unknown>): Promise<KMSServiceException> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof KMSServiceException, `expected a KMS service exception, got ${err}`);
    return err;
  }
  assert.fail("expected the SDK call to fail");
}

/** Signs a KMS request the way the SDK does, so tests can then bend one part of it. */
async function signedRequest(fake: FakeKms, target: string, body: string, secret = "test-secret") {
  const url = new URL(fake.url);
  const signer = new SignatureV4({
    credentials: { accessKeyId: FAKE_KMS_CREDENTIALS.accessKeyId, secretAccessKey: secret },
    region: REGION,
    service: "kms",
    sha256: Sha256,
  });
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: "/",
    query: {},
    headers: {
      host: url.host,
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": target,
    },
    body,
  });
  return signed.headers as Record<string, string>;
}

async function post(fake: FakeKms, headers: Record<string, string>, body: string) {
  const { host: _host, ...sendable } = headers;
  const res = await fetch(fake.url + "/", { method: "POST", headers: sendable, body });
  return { status: res.status, contentType: res.headers.get("content-type"), body: await res.json() };
}

Deno.test("fake KMS serves GenerateDataKey and Decrypt to the real SDK", async () => {
  await withFakeKms(async (fake) => {
    const client = sdk(fake);
    const context = { access_key_id: "row-1", purpose: "test" };
    const generated = await client.send(
      new GenerateDataKeyCommand({
        KeyId: FAKE_KMS_DEFAULT_KEY_ID,
        KeySpec: "AES_256",
        EncryptionContext: context,
      }),
    );
    assert.equal(generated.Plaintext?.length, 32);
    assert.equal(generated.KeyId, fake.keyArn(FAKE_KMS_DEFAULT_KEY_ID));
    assert.ok(generated.CiphertextBlob && generated.CiphertextBlob.length > 32);

    // Context key order does not matter, as in real KMS.
    const decrypted = await client.send(
      new DecryptCommand({
        CiphertextBlob: generated.CiphertextBlob,
        EncryptionContext: { purpose: "test", access_key_id: "row-1" },
      }),
    );
    assert.deepEqual(decrypted.Plaintext, generated.Plaintext);
    assert.equal(decrypted.KeyId, fake.keyArn(FAKE_KMS_DEFAULT_KEY_ID));
    assert.deepEqual(fake.calls.map((c) => c.target), [
      "TrentService.GenerateDataKey",
      "TrentService.Decrypt",
    ]);
    assert.deepEqual((fake.calls[0].body as Record<string, unknown>).EncryptionContext, context);
  });
});

Deno.test("fake KMS accepts a key ARN and honours NumberOfBytes", async () => {
  await withFakeKms(async (fake) => {
    const out = await sdk(fake).send(
      new GenerateDataKeyCommand({ KeyId: fake.keyArn(FAKE_KMS_DEFAULT_KEY_ID), NumberOfBytes: 16 }),
    );
    assert.equal(out.Plaintext?.length, 16);
  });
});

Deno.test("fake KMS refuses Decrypt under another encryption context with InvalidCiphertextException", async () => {
  await withFakeKms(async (fake) => {
    const client = sdk(fake);
    const generated = await client.send(
      new GenerateDataKeyCommand({
        KeyId: FAKE_KMS_DEFAULT_KEY_ID,
        KeySpec: "AES_256",
        EncryptionContext: { access_key_id: "row-1" },
      }),
    );
    const contexts: (Record<string, string> | undefined)[] = [
      { access_key_id: "row-2" },
      undefined,
      { access_key_id: "row-1", extra: "x" },
    ];
    for (const context of contexts) {
      const err = await sdkError(
        client.send(
          new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context }),
        ),
      );
      assert.equal(err.name, "InvalidCiphertextException");
      assert.equal(err.$metadata.httpStatusCode, 400);
    }
    const tampered = new Uint8Array(generated.CiphertextBlob!);
    tampered[tampered.length - 1] ^= 1;
    const err = await sdkError(
      client.send(
        new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: { access_key_id: "row-1" } }),
      ),
    );
    assert.equal(err.name, "InvalidCiphertextException");
  });
});

Deno.test("fake KMS answers NotFoundException for an unknown key and IncorrectKeyException for the wrong one", async () => {
  await withFakeKms(async (fake) => {
    const client = sdk(fake);
    const missing = await sdkError(
      client.send(new GenerateDataKeyCommand({ KeyId: "no-such-key", KeySpec: "AES_256" })),
    );
    assert.equal(missing.name, "NotFoundException");
    const generated = await client.send(new GenerateDataKeyCommand({ KeyId: "key-a", KeySpec: "AES_256" }));
    const wrong = await sdkError(
      client.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, KeyId: "key-b" })),
    );
    assert.equal(wrong.name, "IncorrectKeyException");
  }, ["key-a", "key-b"]);
});

Deno.test("fake KMS answers errors as HTTP 400 with a JSON __type body", async () => {
  await withFakeKms(async (fake) => {
    const body = JSON.stringify({ CiphertextBlob: btoa("garbage-garbage-garbage-garbage") });
    const headers = await signedRequest(fake, "TrentService.Decrypt", body);
    const res = await post(fake, headers, body);
    assert.equal(res.status, 400);
    assert.equal(res.contentType, "application/x-amz-json-1.1");
    assert.equal(res.body.__type, "InvalidCiphertextException");
    assert.equal(typeof res.body.message, "string");
  });
});

Deno.test("fake KMS rejects requests without a SigV4 Authorization header", async () => {
  await withFakeKms(async (fake) => {
    const body = JSON.stringify({ KeyId: FAKE_KMS_DEFAULT_KEY_ID, KeySpec: "AES_256" });
    const unsigned = await post(fake, {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "TrentService.GenerateDataKey",
    }, body);
    assert.equal(unsigned.status, 400);
    assert.equal(unsigned.body.__type, "MissingAuthenticationTokenException");

    const malformed = await post(fake, {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "TrentService.GenerateDataKey",
      authorization: "Bearer something",
    }, body);
    assert.equal(malformed.body.__type, "IncompleteSignatureException");
    assert.equal(fake.calls.length, 0);
  });
});

Deno.test("fake KMS verifies the SigV4 signature over headers and body", async () => {
  await withFakeKms(async (fake) => {
    const body = JSON.stringify({ KeyId: FAKE_KMS_DEFAULT_KEY_ID, KeySpec: "AES_256" });
    const good = await post(fake, await signedRequest(fake, "TrentService.GenerateDataKey", body), body);
    assert.equal(good.status, 200);

    const wrongSecret = await post(
      fake,
      await signedRequest(fake, "TrentService.GenerateDataKey", body, "another-secret"),
      body,
    );
    assert.equal(wrongSecret.body.__type, "InvalidSignatureException");

    const headers = await signedRequest(fake, "TrentService.GenerateDataKey", body);
    const alteredBody = JSON.stringify({ KeyId: FAKE_KMS_DEFAULT_KEY_ID, KeySpec: "AES_128" });
    assert.equal((await post(fake, headers, alteredBody)).body.__type, "InvalidSignatureException");

    const alteredTarget = { ...headers, "x-amz-target": "TrentService.Decrypt" };
    assert.equal((await post(fake, alteredTarget, body)).body.__type, "InvalidSignatureException");
    assert.equal(fake.calls.length, 1, "only the correctly signed request was processed");
  });
});

Deno.test("fake KMS rejects unknown access keys and wrong regions through the SDK", async () => {
  await withFakeKms(async (fake) => {
    const command = () => new GenerateDataKeyCommand({ KeyId: FAKE_KMS_DEFAULT_KEY_ID, KeySpec: "AES_256" });
    const stranger = await sdkError(
      sdk(fake, { accessKeyId: "AKIDOTHER", secretAccessKey: "test-secret" }).send(command()),
    );
    assert.equal(stranger.name, "UnrecognizedClientException");
    const badSecret = await sdkError(
      sdk(fake, { accessKeyId: "AKIDTEST", secretAccessKey: "nope" }).send(command()),
    );
    assert.equal(badSecret.name, "InvalidSignatureException");
    const otherRegion = await sdkError(sdk(fake, FAKE_KMS_CREDENTIALS, "eu-west-1").send(command()));
    assert.equal(otherRegion.name, "InvalidSignatureException");
  });
});

Deno.test("fake KMS rejects unknown operations and a wrong content type", async () => {
  await withFakeKms(async (fake) => {
    const body = JSON.stringify({ KeyId: FAKE_KMS_DEFAULT_KEY_ID });
    const unknown = await post(
      fake,
      await signedRequest(fake, "TrentService.ScheduleKeyDeletion", body),
      body,
    );
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.__type, "UnknownOperationException");

    const url = new URL(fake.url);
    const signer = new SignatureV4({
      credentials: FAKE_KMS_CREDENTIALS,
      region: REGION,
      service: "kms",
      sha256: Sha256,
    });
    const signed = await signer.sign({
      method: "POST",
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: "/",
      query: {},
      headers: {
        host: url.host,
        "content-type": "application/json",
        "x-amz-target": "TrentService.GenerateDataKey",
      },
      body,
    });
    const wrongType = await post(fake, signed.headers as Record<string, string>, body);
    assert.equal(wrongType.body.__type, "SerializationException");
  });
});
