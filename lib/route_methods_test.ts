import assert from "node:assert/strict";
import { routeMethods } from "./route_methods.ts";

const routes = [
  { method: "ALL", path: "/api/*" },
  { method: "GET", path: "/api/users" },
  { method: "POST", path: "/api/users" },
  { method: "GET", path: "/api/users/:id" },
  { method: "PATCH", path: "/api/users/:id" },
  { method: "POST", path: "/api/access-keys/:id/circuit/reset" },
  { method: "GET", path: "/files/:name{[a-z]+\\.css}" },
  { method: "GET", path: "/static/*" },
  { method: "GET", path: "/a.b" },
];

Deno.test("routeMethods lists the methods of every route matching the path, HEAD with GET", () => {
  const allowed = routeMethods({ routes });
  assert.deepEqual(allowed("/api/users"), ["GET", "HEAD", "POST"]);
  assert.deepEqual(allowed("/api/users/42"), ["GET", "HEAD", "PATCH"]);
  assert.deepEqual(allowed("/api/access-keys/k1/circuit/reset"), ["POST"]);
  assert.deepEqual(allowed("/static/build/app.js"), ["GET", "HEAD"]);
});

Deno.test("routeMethods ignores middleware, so a path no handler takes has no methods", () => {
  const allowed = routeMethods({ routes });
  assert.deepEqual(allowed("/api/nowhere"), []);
  assert.deepEqual(allowed("/api/users/42/extra"), [], "a parameter is one segment");
  assert.deepEqual(allowed("/api/users/"), [], "a trailing slash is another path, as in Hono");
});

Deno.test("routeMethods honours a parameter's own pattern and treats the rest of a path literally", () => {
  const allowed = routeMethods({ routes });
  assert.deepEqual(allowed("/files/site.css"), ["GET", "HEAD"]);
  assert.deepEqual(allowed("/files/Site.css"), []);
  assert.deepEqual(allowed("/axb"), [], "a dot in a route is a dot");
  assert.deepEqual(allowed("/a.b"), ["GET", "HEAD"]);
});
