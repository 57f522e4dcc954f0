import assert from "node:assert/strict";
import { cidrMatcher, isCidr, parseIp, throttleSubject } from "./cidr.ts";

Deno.test("IPv4 and IPv6 blocks match the addresses inside them only", () => {
  const allowed = cidrMatcher(["10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32", "172.16.0.0/12"]);
  for (
    const ip of [
      "10.0.0.1",
      "10.255.255.255",
      "192.168.1.7",
      "::ffff:10.1.2.3",
      "2001:db8:1::5",
      "172.31.0.1",
    ]
  ) {
    assert.equal(allowed(ip), true, ip);
  }
  for (const ip of ["11.0.0.1", "192.168.1.8", "2001:db9::1", "172.32.0.1", "garbage", "", null]) {
    assert.equal(allowed(ip as string | null), false, String(ip));
  }
});

Deno.test("CIDR validation refuses malformed blocks", () => {
  for (const ok of ["0.0.0.0/0", "::/0", "fe80::1", "1.2.3.4", "::ffff:1.2.3.4/128"]) {
    assert.equal(isCidr(ok), true, ok);
  }
  for (
    const bad of [
      "1.2.3.4/33",
      "300.1.1.1",
      "1.2.3/8",
      "::1/129",
      "x/8",
      "1:2:3:4:5:6:7:8:9",
      "10.0.0.0/8/99",
      "10.0.0.0/",
    ]
  ) {
    assert.equal(isCidr(bad), false, bad);
  }
  assert.deepEqual([...parseIp("::1")!], [...new Array(15).fill(0), 1]);
});

Deno.test("throttle subjects: IPv4 as is, IPv6 by its /64, anything else unchanged", () => {
  assert.equal(throttleSubject("10.0.0.1"), "10.0.0.1");
  assert.equal(throttleSubject("::ffff:10.0.0.1"), "10.0.0.1");
  // Two addresses of one /64 are one subject; the next /64 is another.
  assert.equal(throttleSubject("2001:db8:1:2::7"), "2001:db8:1:2::/64");
  assert.equal(throttleSubject("2001:0db8:0001:0002:ffff:1:2:3"), "2001:db8:1:2::/64");
  assert.notEqual(throttleSubject("2001:db8:1:3::7"), throttleSubject("2001:db8:1:2::7"));
  assert.equal(throttleSubject("[2001:db8:1:2::9]"), "2001:db8:1:2::/64");
  assert.equal(throttleSubject("unknown"), "unknown");
});
