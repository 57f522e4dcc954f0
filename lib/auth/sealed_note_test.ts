import assert from "node:assert/strict";
import { createSealedNotes } from "./sealed_note.ts";

const SECRET = "sealed-note-test-secret-0123456789";

Deno.test("a sealed note opens to its payload, and its text shows nothing of it", async () => {
  const notes = createSealedNotes(SECRET, "new-key");
  const sealed = await notes.seal({ keyId: "k1", secret: "ak_secretvalue" }, 60);
  assert.ok(!sealed.includes("ak_secretvalue") && !atob(sealed.split(".")[0]).includes("ak_"));
  assert.deepEqual(await notes.open(sealed), { keyId: "k1", secret: "ak_secretvalue" });
});

Deno.test("an altered, expired, foreign or missing note opens to null", async () => {
  const notes = createSealedNotes(SECRET, "new-key");
  const sealed = await notes.seal({ keyId: "k1" }, 60);
  const parts = sealed.split(".");
  parts[3] = parts[3].slice(0, -2) + (parts[3].endsWith("AA") ? "BB" : "AA");
  assert.equal(await notes.open(parts.join(".")), null, "altered");
  assert.equal(await notes.open(await notes.seal({ keyId: "k1" }, -1)), null, "expired");
  assert.equal(await createSealedNotes(SECRET, "other").open(sealed), null, "another purpose");
  assert.equal(await createSealedNotes(SECRET + "x", "new-key").open(sealed), null, "another secret");
  for (const none of [undefined, null, "", "not.a.note", "x".repeat(9000)]) {
    assert.equal(await notes.open(none), null, String(none).slice(0, 20));
  }
});

Deno.test("a short secret is refused", () => {
  assert.throws(() => createSealedNotes("short", "new-key"), /at least 16 characters/);
});
