/**
 * Reads what the plan path needs from a Messages request body (is it a JSON object, its `model`, its `stream`)
 * without building it. `JSON.parse` of a 70 KB Claude Code body allocates a tree of thousands of objects only to
 * read two fields; a scan in JavaScript, even four bytes at a time, still took 27 µs of such a body (45 µs with
 * code in it) and was the largest share of the proxy's own CPU per request. The scan runs in WebAssembly
 * (`json_scan.c`, built into `json_scan_wasm.ts` by `scripts/build_json_scan_wasm.ts`), which checks string
 * content sixteen bytes at a time, after one copy of the body into its memory.
 *
 * The answer is exactly that of `JSON.parse(new TextDecoder().decode(bytes))`: `null` when that throws or is not a
 * plain object, else the object's `model` when it is a string and whether its `stream` is `true` (the last of
 * duplicate keys wins, as in `JSON.parse`). Bytes are checked, not text: outside strings only ASCII JSON syntax is
 * valid (anything else decodes to a character `JSON.parse` refuses), inside strings any byte but a control
 * character is (an invalid UTF-8 sequence decodes to U+FFFD, a valid string character, and never swallows the
 * ASCII byte after it). A leading UTF-8 BOM is skipped, as `TextDecoder` does. Bodies longer than V8's largest
 * string (2^29 - 24, over 512 MiB), which `TextDecoder` refuses, are outside this: `PROXY_MAX_BODY_BYTES` stops at
 * 256 MiB.
 *
 * @example
 * ```ts
 * scanMessagesBody(new TextEncoder().encode('{"model":"claude-sonnet-4-5","stream":true}'));
 * // { model: "claude-sonnet-4-5", stream: true }
 * scanMessagesBody(new TextEncoder().encode("[1]")); // null
 * ```
 */
import { base64Decode } from "../encoding.ts";
import { JSON_SCAN_WASM } from "./json_scan_wasm.ts";

/** The fields the plan path reads. */
export interface MessagesBodyFields {
  model: string | null;
  stream: boolean;
}

/** What `json_scan.c` exports. */
interface ScanModule {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  scan(input: number, length: number, stack: number): number;
  model_start(): number;
  model_end(): number;
  stream_true(): number;
}

const WASM_PAGE_BYTES = 65536;
/**
 * Bodies up to this size are scanned in one instance kept for the process, whose memory grows to the largest of
 * them; a larger body gets an instance of its own, so the memory a 30 MB body needed is not kept for good.
 */
export const SHARED_SCAN_BYTES = 4 * 1024 * 1024;

const compiled = new WebAssembly.Module(base64Decode(JSON_SCAN_WASM));
let shared: ScanModule | null = null;
const decoder = new TextDecoder();

function instantiate(): ScanModule {
  return new WebAssembly.Instance(compiled).exports as unknown as ScanModule;
}

/** See the module documentation. */
export function scanMessagesBody(b: Uint8Array): MessagesBodyFields | null {
  const scanner = b.length <= SHARED_SCAN_BYTES ? (shared ??= instantiate()) : instantiate();
  const input = scanner.__heap_base.value as number;
  // One bit per container the scan may have open, right after the body.
  const stack = input + b.length;
  const needed = stack + (b.length >>> 3) + 1;
  const have = scanner.memory.buffer.byteLength;
  if (needed > have) scanner.memory.grow(Math.ceil((needed - have) / WASM_PAGE_BYTES));
  new Uint8Array(scanner.memory.buffer, input, b.length).set(b);
  if (scanner.scan(input, b.length, stack) !== 1) return null;
  const start = scanner.model_start();
  return {
    model: start < 0 ? null : JSON.parse(decoder.decode(b.subarray(start, scanner.model_end()))),
    stream: scanner.stream_true() === 1,
  };
}
