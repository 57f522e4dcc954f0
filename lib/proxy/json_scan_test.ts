import assert from "node:assert/strict";
import { base64Decode } from "../encoding.ts";
import { scanMessagesBody, SHARED_SCAN_BYTES } from "./json_scan.ts";
import { JSON_SCAN_WASM } from "./json_scan_wasm.ts";

const encoder = new TextEncoder();

/** What the proxy computed before the scan existed: the definition the scan must match on every input. */
function reference(bytes: Uint8Array): { model: string | null; stream: boolean } | null {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof v !== "object" || v === null || Array.isArray(v)) return null;
    return { model: typeof v.model === "string" ? v.model : null, stream: v.stream === true };
  } catch {
    return null;
  }
}

function same(bytes: Uint8Array, label: string): void {
  assert.deepEqual(
    scanMessagesBody(bytes),
    reference(bytes),
    `${label}: ${JSON.stringify(new TextDecoder().decode(bytes)).slice(0, 300)}`,
  );
}

const CASES = [
  '{"model":"claude-sonnet-4-5","stream":true}',
  '{"stream":false,"model":"m"}',
  ' \t\r\n{ "model" : "m" , "stream" : true } \n',
  "{}",
  "{ }",
  '{"model":null,"stream":"true"}',
  '{"model":1,"stream":1}',
  '{"model":{"a":"x"},"stream":[true]}',
  '{"model":["m"],"x":{"model":"inner","stream":true}}',
  '{"model":"a","model":"b","stream":true,"stream":false}',
  '{"model":"a","model":2}',
  '{"stream":true,"stream":null}',
  '{"mod\\u0065l":"escaped key","str\\u0065am":true}',
  '{"model":"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00 \\ud800"}',
  '{"model":"caf\u00e9 \u{1F600}"}',
  '{"a":[1,-1,0,-0,1.5,1e10,1E+2,1e-2,-0.0e0,123456789012345678901234567890],"b":[true,false,null],"c":[[],{},[{}]]}',
  '{"__proto__":{"model":"x"},"model":"real"}',
  '{"constructor":"c","model":"m"}',
  '\uFEFF{"model":"bom"}',
  // Invalid.
  "",
  " ",
  "\uFEFF",
  "\uFEFF\uFEFF{}",
  "[]",
  '"string"',
  "1",
  "null",
  "true",
  "{",
  "}",
  '{"model":"m"',
  '{"model":"m",}',
  '{"model" "m"}',
  '{"model":}',
  '{model:"m"}',
  "{'model':'m'}",
  '{"a":[1,]}',
  '{"a":[,1]}',
  '{"a":01}',
  '{"a":1.}',
  '{"a":.5}',
  '{"a":+1}',
  '{"a":-}',
  '{"a":1e}',
  '{"a":1e+}',
  '{"a":0x10}',
  '{"a":NaN}',
  '{"a":Infinity}',
  '{"a":tru}',
  '{"a":truex}',
  '{"a":nul}',
  '{"a":"\\x"}',
  '{"a":"\\u12"}',
  '{"a":"\\u12g4"}',
  '{"a":"tab\tinside"}',
  '{"a":"newline\ninside"}',
  '{"a":"\u0000"}',
  '{"a":"unterminated}',
  '{"a":1}{"b":2}',
  '{"a":1} x',
  '{"a":1}\u00a0',
  '\u00a0{"a":1}',
  '{"a":[1}',
  '{"a":{]}',
  '{"a":1]',
  '{"a"::1}',
  '{,"a":1}',
  '{"a":1,,"b":2}',
  '{"a":/*c*/1}',
];

Deno.test("scanMessagesBody answers what JSON.parse answers, on chosen valid and invalid bodies", () => {
  for (const c of CASES) same(encoder.encode(c), "case");
});

Deno.test("scanMessagesBody treats raw bytes as TextDecoder would: invalid UTF-8 inside strings only", () => {
  const bytes = (...parts: Array<string | number[]>) => {
    const chunks = parts.map((p) => (typeof p === "string" ? encoder.encode(p) : new Uint8Array(p)));
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  };
  same(bytes('{"model":"a', [0xff], 'b"}'), "invalid byte in a string");
  same(bytes('{"model":"a', [0xe2], '"}'), "truncated sequence before the closing quote");
  same(bytes('{"model":"a', [0xe2, 0x82], '","stream":true}'), "truncated sequence, then more");
  same(bytes('{"model":', [0xff], '"a"}'), "invalid byte outside strings");
  same(bytes([0xef, 0xbb], '{"model":"a"}'), "half a BOM");
  same(bytes('{"mo', [0xc0, 0xaf], 'del":"a"}'), "overlong encoding in a key");
  same(bytes('{"model":"', [0xed, 0xa0, 0x80], '"}'), "encoded surrogate");
});

Deno.test("scanMessagesBody agrees with JSON.parse on thousands of mutated bodies", () => {
  let seed = 42; // mulberry32: a fixed sequence, so a failure reproduces
  const rand = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296 * n) | 0;
  };
  const pick = <T>(xs: T[]) => xs[rand(xs.length)];
  const strings = [
    "claude-sonnet-4-5",
    "",
    "é\u{1F600}",
    'q"\\',
    "line\nbreak",
    "\u0001",
    "stream",
    "model",
    "true",
  ];
  const value = (depth: number): unknown => {
    switch (rand(depth > 3 ? 5 : 7)) {
      case 0:
        return rand(1000) - 500;
      case 1:
        return rand(1000) / 7;
      case 2:
        return pick([true, false, null]);
      case 3:
      case 4:
        return pick(strings);
      case 5:
        return Array.from({ length: rand(4) }, () => value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let k = 0; k < rand(5); k++) {
          o[pick(["model", "stream", "a", "b\u00e9", "messages"])] = value(depth + 1);
        }
        return o;
      }
    }
  };
  const noise = [
    '"',
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\n",
    "\t",
    "\r",
    "\u0001",
    "\u0000",
    "t",
    "0",
    "-",
    ".",
    "e",
    "E",
    "+",
    "u",
    "\\u00",
    "é",
    "tr",
    "1e",
    ",]",
    ",}",
    '"model":',
    '"stream":true,',
    '"stream":',
    "true",
    "null",
  ];
  for (let n = 0; n < 20_000; n++) {
    const base: Record<string, unknown> = {};
    for (let k = 0; k < rand(6); k++) {
      base[pick(["model", "stream", "max_tokens", "messages", "x"])] = value(1);
    }
    if (rand(2) === 0) base.model = pick(strings);
    if (rand(3) === 0) base.stream = true;
    const text = JSON.stringify(base, null, rand(2) === 0 ? undefined : rand(3));
    const chars = [...text];
    for (let m = 0; m < rand(4); m++) {
      const at = rand(chars.length + 1);
      const op = rand(3);
      if (op === 0) chars.splice(at, 1);
      else if (op === 1) chars.splice(at, 0, pick(noise));
      else chars[at] = pick(noise);
    }
    same(encoder.encode(chars.join("")), `mutation ${n}`);
  }
});

Deno.test("scanMessagesBody reads a large Claude Code-like body with escapes and deep nesting", () => {
  const body = {
    model: "claude-opus-4-1",
    system: [{ type: "text", text: "You are Claude Code. ".repeat(500) }],
    tools: Array.from(
      { length: 20 },
      (_, i) => ({ name: `t${i}`, input_schema: { type: "object", properties: {} } }),
    ),
    messages: Array.from(
      { length: 200 },
      (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `"quoted" \\ ${i}\n` }),
    ),
    nested: JSON.parse("[".repeat(5000) + "]".repeat(5000)),
    stream: true,
  };
  const bytes = encoder.encode(JSON.stringify(body));
  assert.deepEqual(scanMessagesBody(bytes), { model: "claude-opus-4-1", stream: true });
  same(bytes.subarray(0, bytes.length - 1), "truncated");
});

Deno.test("scanMessagesBody finds a quote, backslash or control byte at every position of a string, in and past 16-byte blocks", () => {
  const specials: Array<[string, string]> = [
    ["quote", '"'],
    ["escaped quote", '\\"'],
    ["escape", "\\n"],
    ["bad escape", "\\x"],
    ["tab", "\t"],
    ["newline", "\n"],
    ["nul", "\u0000"],
    ["0x1f", "\u001f"],
    ["space", " "],
    ["utf-8", "\u00e9"],
  ];
  for (const [label, special] of specials) {
    // 40 positions: in the first and second 16-byte blocks the scan checks at once, and in the tail it checks
    // byte by byte.
    for (let at = 0; at < 40; at++) {
      const text = "a".repeat(at) + special + "b".repeat(40 - at);
      for (let shift = 0; shift < 4; shift++) {
        // A view starting `shift` bytes into its buffer, and the body's end at every place in a block.
        const raw = encoder.encode(`${" ".repeat(shift)}{"model":"${text}","stream":true,"s":"${text}"}`);
        same(raw.subarray(shift), `${label} at ${at}, offset ${shift}`);
        same(raw.subarray(shift, raw.length - 1 - (at % 3)), `${label} at ${at}, offset ${shift}, truncated`);
      }
    }
  }
});

Deno.test("scanMessagesBody tells objects from arrays at every depth, whichever closer is wrong", () => {
  for (let depth = 1; depth <= 40; depth++) {
    // {"a":[{"a":[ … ]}]} with depth containers, objects and arrays in turn, then one closer swapped.
    const open = Array.from({ length: depth }, (_, d) => (d % 2 === 0 ? '{"a":' : "[")).join("");
    const closers = Array.from({ length: depth }, (_, d) => (d % 2 === 0 ? "}" : "]")).reverse();
    const valid = `{"model":"m","n":${open}1${closers.join("")},"stream":true}`;
    same(encoder.encode(valid), `depth ${depth}`);
    assert.deepEqual(scanMessagesBody(encoder.encode(valid)), { model: "m", stream: true });
    for (let k = 0; k < depth; k++) {
      const wrong = [...closers];
      wrong[k] = wrong[k] === "}" ? "]" : "}";
      const bytes = encoder.encode(`{"model":"m","n":${open}1${wrong.join("")},"stream":true}`);
      assert.equal(scanMessagesBody(bytes), null, `depth ${depth}, closer ${k} swapped`);
    }
  }
});

Deno.test("scanMessagesBody reads a body larger than the shared scanner holds, and still reads small ones after", () => {
  const text = "x".repeat(SHARED_SCAN_BYTES);
  const big = encoder.encode(
    `{"messages":[{"role":"user","content":"${text}"}],"model":"big","stream":true}`,
  );
  assert.ok(big.length > SHARED_SCAN_BYTES);
  assert.deepEqual(scanMessagesBody(big), { model: "big", stream: true });
  assert.equal(scanMessagesBody(big.subarray(0, big.length - 1)), null);
  assert.deepEqual(scanMessagesBody(encoder.encode('{"model":"small"}')), { model: "small", stream: false });
});

Deno.test("the scan never reads past a body's last byte: each body placed to end where the module's memory ends", () => {
  // An instance of its own, with the body's last byte the memory's last: a read past it traps.
  const scanner = new WebAssembly.Instance(new WebAssembly.Module(base64Decode(JSON_SCAN_WASM))).exports as {
    memory: WebAssembly.Memory;
    __heap_base: WebAssembly.Global;
    scan(input: number, length: number, stack: number): number;
  };
  const stack = scanner.__heap_base.value as number;
  const scanAtEnd = (body: Uint8Array) => {
    const memory = new Uint8Array(scanner.memory.buffer);
    memory.fill(0xff, stack, memory.length); // junk where nothing was written: reads of it show too
    const input = memory.length - body.length;
    memory.set(body, input);
    return scanner.scan(input, body.length, stack);
  };
  const bodies = [
    ...CASES.map((c) => encoder.encode(c)),
    ...Array.from(
      { length: 40 },
      (_, k) => encoder.encode(`{"model":"${"a".repeat(k)}","s":"${"\\n".repeat(k)}"}`),
    ),
    encoder.encode(`{"a":${"[".repeat(100)}1${"]".repeat(100)},"b":-1.5e+10,"c":true}`),
  ];
  let scanned = 0;
  for (const body of bodies) {
    for (let end = 0; end <= body.length; end++) {
      const part = body.subarray(0, end);
      assert.equal(scanAtEnd(part), reference(part) === null ? 0 : 1, new TextDecoder().decode(part));
      scanned++;
    }
  }
  assert.ok(scanned > 4000, `${scanned} bodies`);
});
