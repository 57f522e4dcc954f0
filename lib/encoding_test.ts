import assert from "node:assert/strict";
import { base64Decode, base64Encode, base64UrlDecode, base64UrlEncode } from "./encoding.ts";

Deno.test("base64Encode and base64Decode follow RFC 4648's test vectors, padded or not", () => {
  const vectors: Array<[string, string]> = [
    ["", ""],
    ["f", "Zg=="],
    ["fo", "Zm8="],
    ["foo", "Zm9v"],
    ["foob", "Zm9vYg=="],
    ["fooba", "Zm9vYmE="],
    ["foobar", "Zm9vYmFy"],
  ];
  for (const [text, encoded] of vectors) {
    const bytes = new TextEncoder().encode(text);
    assert.equal(base64Encode(bytes), encoded);
    assert.deepEqual(base64Decode(encoded), bytes);
    assert.deepEqual(base64Decode(encoded.replace(/=+$/, "")), bytes, `${encoded} unpadded`);
  }
});

Deno.test("base64 and base64url differ only in their two last letters and the padding", () => {
  const bytes = new Uint8Array([0xfb, 0xff, 0xfe, 0x00]);
  assert.equal(base64Encode(bytes), "+//+AA==");
  assert.equal(base64UrlEncode(bytes), "-__-AA");
  assert.deepEqual(base64UrlDecode("-__-AA"), bytes);
  const random = crypto.getRandomValues(new Uint8Array(257));
  assert.deepEqual(base64Decode(base64Encode(random)), random);
  assert.deepEqual(base64UrlDecode(base64UrlEncode(random)), random);
});

Deno.test("base64Decode throws on characters outside the alphabet", () => {
  assert.throws(() => base64Decode("not*base64"));
  assert.throws(() => base64Decode("-_"));
});
