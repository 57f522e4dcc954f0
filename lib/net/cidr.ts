/**
 * CIDR matching for IPv4 and IPv6 allow-lists (`PROXY_ADMIN_ALLOWED_CIDRS`).
 *
 * @example
 * ```ts
 * const allowed = cidrMatcher(["10.0.0.0/8", "2001:db8::/32"]);
 * allowed("10.1.2.3"); // true
 * allowed("::ffff:10.1.2.3"); // true (IPv4-mapped)
 * ```
 */

/** Parses an address into 16 bytes (IPv4 as IPv4-mapped IPv6), or null. */
export function parseIp(text: string): Uint8Array | null {
  const s = text.trim().replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const v4 = parseV4(s);
  if (v4) return mapped(v4);
  if (!s.includes(":")) return null;
  let head = s;
  let tailV4: number[] | null = null;
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    tailV4 = parseV4(s.slice(lastColon + 1));
    if (!tailV4) return null;
    head = s.slice(0, lastColon) + ":0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groups(halves[0]);
  const right = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - left.length - right.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) return null;
  const all = [...left, ...new Array(halves.length === 2 ? missing : 0).fill("0"), ...right];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i])) return null;
    const n = parseInt(all[i], 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  if (tailV4) out.set(tailV4, 12);
  return out;
}

function parseV4(s: string): number[] | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : null;
}

function mapped(v4: number[]): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

/**
 * The subject a client address is throttled under: an IPv4 address as it is, an IPv6 address by its /64 (one
 * host usually holds a whole /64, so counting single addresses would give it 2^64 fresh tries). Text that is not
 * an address is its own subject.
 *
 * @example
 * ```ts
 * throttleSubject("2001:db8:1:2::7"); // "2001:db8:1:2::/64"
 * throttleSubject("::ffff:10.0.0.1"); // "10.0.0.1"
 * ```
 */
export function throttleSubject(address: string): string {
  const bytes = parseIp(address);
  if (!bytes) return address;
  const isMapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (isMapped) return bytes.subarray(12).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return `${groups.join(":")}::/64`;
}

/** True when `text` is a valid CIDR block (or a bare address). */
export function isCidr(text: string): boolean {
  return parseCidr(text) !== null;
}

function parseCidr(text: string): { net: Uint8Array; bits: number } | null {
  const parts = text.trim().split("/");
  if (parts.length > 2) return null;
  const [addr, bitsText] = parts;
  const net = parseIp(addr);
  if (!net) return null;
  const isV4 = parseV4(addr.trim()) !== null;
  const max = isV4 ? 32 : 128;
  const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!(bits >= 0 && bits <= max)) return null;
  return { net, bits: isV4 ? bits + 96 : bits };
}

/** A predicate: is an address inside any of the blocks? Unparseable addresses are outside. */
export function cidrMatcher(blocks: readonly string[]): (address: string | null) => boolean {
  const parsed = blocks.map(parseCidr).filter((b): b is { net: Uint8Array; bits: number } => b !== null);
  return (address) => {
    if (!address) return false;
    const ip = parseIp(address);
    if (!ip) return false;
    return parsed.some(({ net, bits }) => {
      const full = bits >> 3;
      for (let i = 0; i < full; i++) if (ip[i] !== net[i]) return false;
      const rest = bits & 7;
      if (rest === 0) return true;
      const mask = (0xff << (8 - rest)) & 0xff;
      return (ip[full] & mask) === (net[full] & mask);
    });
  };
}
