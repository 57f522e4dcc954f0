/*
 * The body scan of json_scan.ts, in C for WebAssembly with 128-bit SIMD: most of a Claude Code body is string
 * content, which this checks sixteen bytes at a time, where JavaScript managed four and was the largest share of
 * the proxy's own CPU per request.
 *
 * Built by scripts/build_json_scan_wasm.ts (clang, wasm32, -msimd128) into json_scan_wasm.ts; json_scan.ts
 * copies a body into this module's memory at __heap_base and calls scan(). The answer is exactly that of
 * JSON.parse(new TextDecoder().decode(bytes)): see json_scan.ts for why checking bytes is enough.
 */
#include <stdint.h>
#include <wasm_simd128.h>

typedef unsigned char u8;

#define QUOTE 0x22
#define BACKSLASH 0x5c

/* Where the last top-level "model" string value lies (quotes included), -1 when it is absent or not a string. */
static int32_t model_start = -1;
static int32_t model_end = -1;
/* Whether the last top-level "stream" value is true. */
static int32_t stream_true = 0;

__attribute__((export_name("model_start"))) int32_t get_model_start(void) { return model_start; }
__attribute__((export_name("model_end"))) int32_t get_model_end(void) { return model_end; }
__attribute__((export_name("stream_true"))) int32_t get_stream_true(void) { return stream_true; }

static inline int is_space(u8 c) { return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09; }

static inline int is_hex(u8 h) {
  return (h >= '0' && h <= '9') || (h >= 'A' && h <= 'F') || (h >= 'a' && h <= 'f');
}

static inline int hex_value(u8 h) {
  return h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10;
}

static inline int32_t skip_space(const u8 *b, int32_t i, int32_t n) {
  while (i < n && is_space(b[i])) i++;
  return i;
}

/* The index of the first quote, backslash or control byte at or after i; n when there is none. */
static inline int32_t find_special(const u8 *b, int32_t i, int32_t n) {
  const v128_t quote = wasm_i8x16_splat(QUOTE);
  const v128_t backslash = wasm_i8x16_splat(BACKSLASH);
  const v128_t space = wasm_i8x16_splat(0x20);
  while (i + 16 <= n) {
    v128_t x = wasm_v128_load(b + i);
    v128_t hit = wasm_v128_or(wasm_v128_or(wasm_i8x16_eq(x, quote), wasm_i8x16_eq(x, backslash)),
                              wasm_u8x16_lt(x, space));
    uint32_t mask = (uint32_t)wasm_i8x16_bitmask(hit);
    if (mask != 0) return i + __builtin_ctz(mask);
    i += 16;
  }
  while (i < n && b[i] != QUOTE && b[i] != BACKSLASH && b[i] >= 0x20) i++;
  return i;
}

/* From the opening quote at i to just past the closing one; -1 when the string is invalid. */
static int32_t skip_string(const u8 *b, int32_t i, int32_t n) {
  i++;
  for (;;) {
    i = find_special(b, i, n);
    if (i >= n) return -1;
    u8 c = b[i];
    if (c == QUOTE) return i + 1;
    if (c < 0x20) return -1;
    /* A backslash: one of JSON's escapes must follow. */
    if (i + 1 >= n) return -1;
    u8 e = b[i + 1];
    if (e == QUOTE || e == BACKSLASH || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
      i += 2;
    } else if (e == 'u' && i + 5 < n && is_hex(b[i + 2]) && is_hex(b[i + 3]) && is_hex(b[i + 4]) &&
               is_hex(b[i + 5])) {
      i += 6;
    } else {
      return -1;
    }
  }
}

/* Past the digits at i; -1 when there is none. */
static int32_t skip_digits(const u8 *b, int32_t i, int32_t n) {
  int32_t start = i;
  while (i < n && b[i] >= '0' && b[i] <= '9') i++;
  return i > start ? i : -1;
}

/* Past the number at i; -1 when it is not a JSON number. */
static int32_t skip_number(const u8 *b, int32_t i, int32_t n) {
  if (i < n && b[i] == '-') i++;
  if (i < n && b[i] == '0') {
    i++;
  } else if (i < n && b[i] >= '1' && b[i] <= '9') {
    i = skip_digits(b, i, n);
  } else {
    return -1;
  }
  if (i < n && b[i] == '.') {
    i = skip_digits(b, i + 1, n);
    if (i < 0) return -1;
  }
  if (i < n && (b[i] == 'e' || b[i] == 'E')) {
    i++;
    if (i < n && (b[i] == '+' || b[i] == '-')) i++;
    i = skip_digits(b, i, n);
  }
  return i;
}

/* True when the n bytes at b are the NUL-terminated ASCII word. */
static int matches(const u8 *b, int32_t n, const char *word) {
  int32_t k = 0;
  for (; word[k] != 0; k++) {
    if (k >= n || b[k] != (u8)word[k]) return 0;
  }
  return k == n;
}

/*
 * Whether the key string [start, end) (quotes included, valid) names the ASCII word once its escapes are
 * decoded. A byte of 0x80 or above decodes to a character outside ASCII, so it never matches.
 */
static int key_is(const u8 *b, int32_t start, int32_t end, const char *word) {
  int32_t k = 0;
  for (int32_t i = start + 1; i < end - 1;) {
    int unit;
    if (b[i] == BACKSLASH) {
      u8 e = b[i + 1];
      if (e == 'u') {
        unit = (hex_value(b[i + 2]) << 12) | (hex_value(b[i + 3]) << 8) | (hex_value(b[i + 4]) << 4) |
               hex_value(b[i + 5]);
        i += 6;
      } else {
        unit = e == 'b' ? 0x08 : e == 'f' ? 0x0c : e == 'n' ? 0x0a : e == 'r' ? 0x0d : e == 't' ? 0x09 : e;
        i += 2;
      }
    } else {
      unit = b[i];
      i++;
    }
    if (word[k] == 0 || unit != (u8)word[k]) return 0;
    k++;
  }
  return word[k] == 0;
}

/*
 * Scans the n bytes at `input` (the module's __heap_base). Containers open at any time are kept one bit each in
 * the n / 8 + 1 bytes at `stack`, which the caller provides past the input. Returns 1 when the bytes are one JSON
 * object, with model_start, model_end and stream_true set; 0 otherwise.
 */
__attribute__((export_name("scan"))) int32_t scan(const u8 *b, int32_t n, u8 *stack) {
  model_start = -1;
  model_end = -1;
  stream_true = 0;
  int32_t i = (n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf) ? 3 : 0;
  i = skip_space(b, i, n);
  if (i >= n || b[i] != '{') return 0;
  int32_t depth = 0; /* containers open; the one at depth d - 1 is an object when its bit is set */
  /* The top-level key whose value is being read: 1 model, 2 stream, 0 another. */
  int pending = 0;
  int32_t value_start = 0;
  int expect_key = 0;

  for (;;) {
    /* A value (or, right after `{` or a `,` in an object, a key and its colon). */
    i = skip_space(b, i, n);
    if (expect_key) {
      expect_key = 0;
      if (i >= n || b[i] != QUOTE) return 0;
      int32_t key_start = i;
      i = skip_string(b, i, n);
      if (i < 0) return 0;
      if (depth == 1) {
        pending = key_is(b, key_start, i, "model") ? 1 : key_is(b, key_start, i, "stream") ? 2 : 0;
      }
      i = skip_space(b, i, n);
      if (i >= n || b[i] != ':') return 0;
      i = skip_space(b, i + 1, n);
      if (depth == 1) value_start = i;
    }
    if (i >= n) return 0;
    u8 c = b[i];
    if (c == '{' || c == '[') {
      i = skip_space(b, i + 1, n);
      if (i < n && b[i] == (c == '{' ? '}' : ']')) {
        i++; /* empty {} or [] */
      } else {
        if (c == '{') {
          stack[depth >> 3] |= (u8)(1u << (depth & 7));
        } else {
          stack[depth >> 3] &= (u8)~(1u << (depth & 7));
        }
        depth++;
        expect_key = c == '{';
        continue;
      }
    } else if (c == QUOTE) {
      i = skip_string(b, i, n);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      i = skip_number(b, i, n);
    } else if (c == 't' || c == 'f' || c == 'n') {
      const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
      int32_t w = c == 'f' ? 5 : 4;
      i = (n - i >= w && matches(b + i, w, word)) ? i + w : -1;
    } else {
      return 0;
    }
    if (i < 0) return 0;

    /* After a value: close containers, or a comma for the next one. */
    for (;;) {
      if (depth == 1 && pending != 0) {
        if (pending == 1) {
          if (b[value_start] == QUOTE) {
            model_start = value_start;
            model_end = i;
          } else {
            model_start = -1;
            model_end = -1;
          }
        } else {
          stream_true = matches(b + value_start, i - value_start, "true");
        }
        pending = 0;
      }
      i = skip_space(b, i, n);
      if (depth == 0) return i == n;
      int top_is_object = (stack[(depth - 1) >> 3] >> ((depth - 1) & 7)) & 1;
      if (i >= n) return 0;
      u8 d = b[i];
      if (d == ',') {
        i++;
        expect_key = top_is_object;
        break;
      }
      if ((d == '}' && top_is_object) || (d == ']' && !top_is_object)) {
        i++;
        depth--;
        continue;
      }
      return 0;
    }
  }
}
