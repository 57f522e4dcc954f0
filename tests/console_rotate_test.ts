/**
 * The console's rotate action on a key that is already rotating: refused with a notice, not a second key.
 */
import assert from "node:assert/strict";
import { dbTest } from "./helpers/db.ts";
import { makeConsoleApp, text } from "./helpers/console.ts";
import { sql } from "../lib/db/sql.ts";

dbTest(
  "console: rotating a key that is already rotating shows a 409 notice naming the newer key",
  async (db) => {
    const c = await makeConsoleApp(db);
    await c.signIn();
    const ctx = { actor: "admin", clientAddress: null };
    const user = await c.t.services.admin.createUser(ctx, { email: "console-rotate@example.com" });
    const { id } = await c.t.services.admin.issueKey(ctx, user.id, { name: "ci" });

    await c.get(`/admin/keys/${id}`);
    const first = await c.post(`/admin/keys/${id}/rotate`, { grace_seconds: "600" });
    assert.equal(first.status, 303, "to the page that shows the new key once");
    const newId = (await c.t.services.admin.getKey(id)).rotated_to!;

    const page = await c.get(`/admin/keys/${id}`);
    assert.doesNotMatch(page.html, /Rotate key/, "no rotate form on a key already rotating");
    assert.match(
      page.html,
      new RegExp(`already being replaced by\\s*<a class="link" href="/admin/keys/${newId}"`),
    );

    // Posted again at once (a second click, without JavaScript to stop it): the browser shows this answer, so
    // it says where the secret went and how to get one.
    const click = await c.post(`/admin/keys/${id}/rotate`, { grace_seconds: "60" });
    assert.equal(click.status, 409);
    assert.match(text(click.html), /rotated a moment ago, perhaps by a second click.*rotate the new key/);

    // A form posted from a page loaded before the first rotation (another tab), minutes later.
    await db.query(sql`UPDATE access_keys SET created_at = now() - interval '5 minutes' WHERE id = ${newId}`);
    const again = await c.post(`/admin/keys/${id}/rotate`, { grace_seconds: "60" });
    assert.equal(again.status, 409);
    assert.match(
      text(again.html),
      /Not rotated: this key was rotated already, in another tab or by another admin/,
    );
    assert.match(
      again.html,
      new RegExp(`already being replaced by\\s*<a class="link" href="/admin/keys/${newId}"`),
    );
    assert.doesNotMatch(text(again.html), /\d{4}-\d\d-\d\dT\d\d:\d\d/, "no raw UTC timestamps");
    assert.equal((await c.t.services.admin.listKeys(user.id)).length, 2, "no second replacement");
    assert.equal((await c.t.services.admin.getKey(id)).rotated_to, newId);
  },
);
