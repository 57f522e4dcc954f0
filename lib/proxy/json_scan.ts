/**
 * Reads what the plan path needs from a Messages request body (is it a JSON object, its `model`, its `stream`)
 * without building it. `JSON.parse` of a 70 KB Claude Code body allocates a tree of thousands of objects only to
 * read two fields, and was the largest share of the proxy's own CPU per request; this scan walks the bytes once and
 * allocates nothing but the model name.
 *
 * The answer is exactly that of `JSON.parse(new TextDecoder().decode(bytes))`: `null` when that throws or is not a
 * plain object, else the object's `model` when it is a string and whether its `stream` is `true` (the last of
 * duplicate keys wins, as in `JSON.parse`). Bytes are checked, not text: outside strings only ASCII JSON syntax is
 * valid (anything else decodes to a character `JSON.parse` refuses), inside strings any byte but a control
 * character is (an invalid UTF-8 sequence decodes to U+FFFD, a valid string character). A leading UTF-8 BOM is
 * skipped, as `TextDecoder` does.
 *
 * @example
 * ```ts
 * scanMessagesBody(new TextEncoder().encode('{"model":"claude-sonnet-4-5","stream":true}'));
 * // { model: "claude-sonnet-4-5", stream: true }
 * scanMessagesBody(new TextEncoder().encode("[1]")); // null
 * ```
 */

/** The fields the plan path reads. */
export interface MessagesBodyFields {
  model: string | null;
  stream: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OBJECT = 1;
const ARRAY = 2;
const MODEL = [0x6d, 0x6f, 0x64, 0x65, 0x6c];
const STREAM = [0x73, 0x74, 0x72, 0x65, 0x61, 0x6d];
const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];
const decoder = new TextDecoder();

/** Index of the first byte at or after `i` that is not JSON whitespace. */
function skipSpace(b: Uint8Array, i: number): number {
  const n = b.length;
  while (i < n) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

function isHex(h: number): boolean {
  return (h >= 0x30 && h <= 0x39) || (h >= 0x41 && h <= 0x46) || (h >= 0x61 && h <= 0x66);
}

/** 1 for the bytes that end a run of plain string characters: quote, backslash, control characters. */
const SPECIAL_IN_STRING = new Uint8Array(256);
SPECIAL_IN_STRING.fill(1, 0, 0x20);
SPECIAL_IN_STRING[QUOTE] = 1;
SPECIAL_IN_STRING[BACKSLASH] = 1;

/**
 * Past the run of plain string characters at `i`. Most of a Claude Code body is string content, so where `words`
 * (a view of the same bytes) exists the run is checked four bytes at a time: a word is plain when none of its
 * bytes is below 0x20, a quote or a backslash. The bit tricks answer "is any byte such" exactly (whatever the
 * byte order); the byte loop then finds which one.
 */
function skipPlain(b: Uint8Array, words: Uint32Array | null, i: number): number {
  const n = b.length;
  if (words !== null) {
    while (i < n && (i & 3) !== 0) {
      if (SPECIAL_IN_STRING[b[i]] !== 0) return i;
      i++;
    }
    let k = i / 4; // whole: the loop above stopped on a word boundary, or at the end, where no word is left
    const end = i < n ? words.length : 0;
    while (k < end) {
      const x = words[k];
      const q = x ^ 0x22222222;
      const s = x ^ 0x5c5c5c5c;
      if ((((x - 0x20202020) & ~x) | ((q - 0x01010101) & ~q) | ((s - 0x01010101) & ~s)) & 0x80808080) break;
      k++;
    }
    if (k * 4 > i) i = k * 4;
  }
  while (i < n && SPECIAL_IN_STRING[b[i]] === 0) i++;
  return i;
}

/** From the opening quote at `i` to just past the closing one; -1 when the string is invalid. */
function skipString(b: Uint8Array, words: Uint32Array | null, i: number): number {
  const n = b.length;
  i++;
  while (i < n) {
    i = skipPlain(b, words, i);
    if (i >= n) break;
    const c = b[i];
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      const e = b[i + 1];
      if (
        e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e ||
        e === 0x72 ||
        e === 0x74
      ) {
        i += 2;
      } else if (e === 0x75 && isHex(b[i + 2]) && isHex(b[i + 3]) && isHex(b[i + 4]) && isHex(b[i + 5])) {
        i += 6;
      } else return -1;
    } else if (c < 0x20) return -1;
    else i++;
  }
  return -1;
}

/** Past the digits at `i`; -1 when there is none. */
function skipDigits(b: Uint8Array, i: number): number {
  const start = i;
  while (i < b.length && b[i] >= 0x30 && b[i] <= 0x39) i++;
  return i > start ? i : -1;
}

/** Past the number at `i`; -1 when it is not a JSON number. */
function skipNumber(b: Uint8Array, i: number): number {
  if (b[i] === 0x2d) i++;
  if (b[i] === 0x30) i++;
  else if (b[i] >= 0x31 && b[i] <= 0x39) i = skipDigits(b, i);
  else return -1;
  if (b[i] === 0x2e) {
    i = skipDigits(b, i + 1);
    if (i < 0) return -1;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    i = skipDigits(b, i);
  }
  return i;
}

/** True when bytes `[at, end)` are `word`. */
function matches(b: Uint8Array, word: number[], at: number, end: number): boolean {
  if (end - at !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (b[at + k] !== word[k]) return false;
  return true;
}

/** Whether the key string `[start, end)` (quotes included) names `name`, escapes decoded when it has any. */
function keyIs(b: Uint8Array, word: number[], name: string, start: number, end: number): boolean {
  for (let k = start + 1; k < end - 1; k++) {
    if (b[k] === BACKSLASH) return JSON.parse(decoder.decode(b.subarray(start, end))) === name;
  }
  return matches(b, word, start + 1, end - 1);
}

/** See the module documentation. */
export function scanMessagesBody(b: Uint8Array): MessagesBodyFields | null {
  const n = b.length;
  let i = skipSpace(b, n >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0);
  if (b[i] !== 0x7b) return null;
  const words = b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, n >>> 2) : null;
  const stack: number[] = [];
  let model: string | null = null;
  let stream = false;
  // The top-level key whose value is being read: 1 model, 2 stream, 0 another.
  let pending = 0;
  let valueStart = 0;
  let expectKey = false;

  for (;;) {
    // A value (or, right after `{` or a `,` in an object, a key and its colon).
    i = skipSpace(b, i);
    if (expectKey) {
      expectKey = false;
      if (b[i] !== QUOTE) return null;
      const keyStart = i;
      i = skipString(b, words, i);
      if (i < 0) return null;
      if (stack.length === 1) {
        pending = keyIs(b, MODEL, "model", keyStart, i) ? 1 : keyIs(b, STREAM, "stream", keyStart, i) ? 2 : 0;
      }
      i = skipSpace(b, i);
      if (b[i] !== 0x3a) return null;
      i = skipSpace(b, i + 1);
      if (stack.length === 1) valueStart = i;
    }
    const c = b[i];
    if (c === 0x7b || c === 0x5b) {
      i = skipSpace(b, i + 1);
      if (b[i] === (c === 0x7b ? 0x7d : 0x5d)) i++; // empty {} or []
      else {
        stack.push(c === 0x7b ? OBJECT : ARRAY);
        expectKey = c === 0x7b;
        continue;
      }
    } else if (c === QUOTE) {
      i = skipString(b, words, i);
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      i = skipNumber(b, i);
    } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      const word = c === 0x74 ? TRUE : c === 0x66 ? FALSE : NULL;
      i = matches(b, word, i, Math.min(n, i + word.length)) ? i + word.length : -1;
    } else return null;
    if (i < 0) return null;

    // After a value: close containers, or a comma for the next one.
    for (;;) {
      if (stack.length === 1 && pending !== 0) {
        if (pending === 1) {
          model = b[valueStart] === QUOTE ? JSON.parse(decoder.decode(b.subarray(valueStart, i))) : null;
        } else stream = matches(b, TRUE, valueStart, i);
        pending = 0;
      }
      i = skipSpace(b, i);
      if (stack.length === 0) return i === n ? { model, stream } : null;
      const top = stack[stack.length - 1];
      const d = b[i];
      if (d === 0x2c) {
        i++;
        expectKey = top === OBJECT;
        break;
      }
      if ((d === 0x7d && top === OBJECT) || (d === 0x5d && top === ARRAY)) {
        i++;
        stack.pop();
        continue;
      }
      return null;
    }
  }
}
