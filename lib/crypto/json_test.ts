import assert from "node:assert/strict";
import { z } from "zod";
import { decodeJson, encodeJson } from "./json.ts";
import { CryptoError } from "./envelope.ts";
import { assertNoSecrets } from "./test_support.ts";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

Deno.test("encodeJson and decodeJson round-trip a credentials object as UTF-8 JSON", () => {
  const value = { accessKeyId: "AKIAEXAMPLE", secretAccessKey: SECRET, region: "ap-northeast-2", note: "키" };
  const bytes = encodeJson(value);
  assert.equal(new TextDecoder().decode(bytes), JSON.stringify(value));
  assert.deepEqual(decodeJson(bytes), value);
});

Deno.test("decodeJson applies a schema's parse function", () => {
  const schema = z.object({ accessKeyId: z.string(), secretAccessKey: z.string() });
  const bytes = encodeJson({ accessKeyId: "AKIAEXAMPLE", secretAccessKey: SECRET });
  const parsed = decodeJson(bytes, schema.parse);
  assert.equal(parsed.secretAccessKey, SECRET);
});

Deno.test("decodeJson rejects invalid JSON without quoting the decrypted bytes", () => {
  const bytes = new TextEncoder().encode(`{"secretAccessKey": ${SECRET}}`);
  assert.throws(() => decodeJson(bytes), (err: unknown) => {
    assert.ok(err instanceof CryptoError);
    assertNoSecrets(err, [SECRET, "wJalrXUtnFEMI"]);
    return true;
  });
  assert.throws(() => decodeJson(new Uint8Array([0xff, 0xfe, 0x22])), CryptoError);
});

Deno.test("encodeJson refuses values JSON cannot represent", () => {
  assert.throws(() => encodeJson(undefined), CryptoError);
});
