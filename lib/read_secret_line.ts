/**
 * Reads one line typed at a terminal without showing it: the bytes come from a terminal in raw mode, so the
 * keys arrive one by one and nothing is echoed. Enter ends the line; Backspace deletes the last character;
 * Ctrl-C and Ctrl-D on an empty line give up (null).
 *
 * @example
 * ```ts
 * Deno.stdin.setRaw(true);
 * try {
 *   const password = await readSecretLine(Deno.stdin.readable);
 * } finally {
 *   Deno.stdin.setRaw(false);
 * }
 * ```
 */
export async function readSecretLine(input: ReadableStream<Uint8Array>): Promise<string | null> {
  const bytes: number[] = [];
  const reader = input.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return bytes.length > 0 ? decode(bytes) : null;
      for (const b of value) {
        if (b === 0x0d || b === 0x0a) return decode(bytes);
        if (b === 0x03) return null; // Ctrl-C
        if (b === 0x04) {
          if (bytes.length === 0) return null; // Ctrl-D on an empty line
          continue;
        }
        if (b === 0x7f || b === 0x08) {
          // Drop the last character: its UTF-8 continuation bytes, then its first byte.
          while (bytes.length > 0 && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
          continue;
        }
        if (b < 0x20) continue; // other control keys (arrows send ESC sequences: their letters still arrive)
        bytes.push(b);
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function decode(bytes: number[]): string {
  return new TextDecoder().decode(new Uint8Array(bytes));
}
