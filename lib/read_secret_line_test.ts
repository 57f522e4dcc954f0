import assert from "node:assert/strict";
import { readSecretLine } from "./read_secret_line.ts";

/** Keystrokes as a raw terminal delivers them, in the chunks given. */
function keys(...chunks: (string | number[])[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(
    chunks.map((c) => typeof c === "string" ? new TextEncoder().encode(c) : new Uint8Array(c)),
  );
}

Deno.test("a typed line ends at Enter, whichever of CR or LF the terminal sends", async () => {
  assert.equal(await readSecretLine(keys("correct ", "horse\r", "ignored")), "correct horse");
  assert.equal(await readSecretLine(keys("battery\n")), "battery");
});

Deno.test("Backspace deletes whole characters, multi-byte ones included", async () => {
  assert.equal(await readSecretLine(keys("abx", [0x7f], "c", [0x08], "d\r")), "abd");
  assert.equal(await readSecretLine(keys("pässé", [0x7f, 0x7f], "ss\r")), "pässs");
  assert.equal(await readSecretLine(keys([0x7f], "ok\r")), "ok", "Backspace on an empty line does nothing");
});

Deno.test("Ctrl-C, or Ctrl-D on an empty line, gives up; other control keys are ignored", async () => {
  assert.equal(await readSecretLine(keys("secret", [0x03])), null);
  assert.equal(await readSecretLine(keys([0x04])), null);
  assert.equal(await readSecretLine(keys("a", [0x04, 0x09], "b\r")), "ab");
  assert.equal(await readSecretLine(keys("end of input")), "end of input");
  assert.equal(await readSecretLine(keys()), null);
});
