import assert from "node:assert/strict";
import { join, raw, sql } from "./sql.ts";

Deno.test("interpolated values become numbered parameters, never text", () => {
  const evil = "x'; DROP TABLE users; --";
  const q = sql`SELECT * FROM users WHERE email = ${evil} AND id = ${7}`.build();
  assert.equal(q.text, "SELECT * FROM users WHERE email = $1 AND id = $2");
  assert.deepEqual(q.values, [evil, 7]);
});

Deno.test("nested fragments splice in with continued numbering", () => {
  const conds = [sql`a = ${1}`, sql`b = ${2}`, sql`c = ${3}`];
  const q = sql`SELECT 1 WHERE ${join(conds, sql` AND `)} ORDER BY ${raw("created_at")} LIMIT ${10}`.build();
  assert.equal(q.text, "SELECT 1 WHERE a = $1 AND b = $2 AND c = $3 ORDER BY created_at LIMIT $4");
  assert.deepEqual(q.values, [1, 2, 3, 10]);
  assert.equal(sql`X ${join([], sql`,`)}Y`.build().text, "X Y");
});
