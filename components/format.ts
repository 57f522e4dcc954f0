/**
 * Formatting for the console: numbers, money, durations and times in `PROXY_TIMEZONE`. Pure functions, shared
 * by pages and components (islands format in the browser with their own small helpers).
 */

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

/** `1234567` → `"1,234,567"`. */
export function fmtInt(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? "–" : integer.format(n);
}

/** `1234567` → `"1.2M"`; below 10,000 the exact number. */
export function fmtCompact(n: number): string {
  return Math.abs(n) < 10_000 ? integer.format(n) : compact.format(n);
}

/**
 * US dollars: cents from $1 up, three decimals from a cent, four below (token costs are small), and "<$0.0001"
 * for a cost too small for four decimals, which "$0.0000" would show as free.
 *
 * @example
 * ```ts
 * fmtUsd(0.99999); // "$1.00"
 * fmtUsd(0.000049); // "<$0.0001"
 * ```
 */
export function fmtUsd(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  if (n !== 0 && Math.abs(n) < 0.00005) return n > 0 ? "<$0.0001" : ">-$0.0001";
  // The digits are chosen for the value as it will show: 0.99999 is $1.00, not $1.000.
  const abs = Math.abs(Math.round(n * 1e4) / 1e4);
  const digits = abs === 0 || abs >= 1 ? 2 : abs >= 0.01 ? 3 : 4;
  return new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: "USD",
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(n);
}

/** A ratio as a percentage: `0.1234` → `"12.3%"`. */
export function fmtPct(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "–";
  const pct = ratio * 100;
  const text = pct >= 10 || pct === 0 ? pct.toFixed(1) : pct.toFixed(2);
  return `${text.replace(/\.?0+$/, "")}%`;
}

/** Milliseconds: `850` → `"850 ms"`, `12345` → `"12.3 s"`. */
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

const partsCache = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = partsCache.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    });
    partsCache.set(timeZone, f);
  }
  return f;
}

/** The wall-clock fields of `d` in `timeZone`. */
export function wallClock(d: Date, timeZone: string) {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(d)) parts[p.type] = p.value;
  return {
    year: parts.year,
    month: parts.month,
    day: parts.day,
    hour: parts.hour,
    minute: parts.minute,
    second: parts.second,
  };
}

/** `"2026-06-01 14:05"` in `timeZone` (`withSeconds` adds `:07`). */
export function fmtDateTime(
  d: Date | string | null | undefined,
  timeZone: string,
  withSeconds = false,
): string {
  if (d === null || d === undefined) return "–";
  const date = typeof d === "string" ? new Date(d) : d;
  if (Number.isNaN(date.getTime())) return "–";
  const w = wallClock(date, timeZone);
  return `${w.year}-${w.month}-${w.day} ${w.hour}:${w.minute}${withSeconds ? `:${w.second}` : ""}`;
}

/** `"2026-06-01"` in `timeZone`, the value of an `<input type="date">`. */
export function fmtDate(d: Date, timeZone: string): string {
  const w = wallClock(d, timeZone);
  return `${w.year}-${w.month}-${w.day}`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A chart label for a bucket: `"Jun 1 14:00"` for hours, `"Jun 1"` for days. */
export function fmtBucket(d: Date, granularity: "hour" | "day", timeZone: string): string {
  const w = wallClock(d, timeZone);
  const day = `${MONTHS[Number(w.month) - 1]} ${Number(w.day)}`;
  return granularity === "day" ? day : `${day} ${w.hour}:${w.minute}`;
}

/** Offset of `timeZone` from UTC at instant `ms`, in ms. */
function offsetAt(ms: number, timeZone: string): number {
  const w = wallClock(new Date(ms), timeZone);
  const asUtc = Date.UTC(+w.year, +w.month - 1, +w.day, +w.hour, +w.minute, +w.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant at which the local date `yyyy-mm-dd` begins in `timeZone` (local midnight, or the first instant of
 * the day where midnight does not exist), or null when the text is not a valid date.
 */
export function startOfLocalDate(text: string, timeZone: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]) - 1, Number(m[3])];
  const wall = Date.UTC(y, mo, d);
  const check = new Date(wall);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo || check.getUTCDate() !== d) return null;
  // Two passes settle the offset (it can differ between the guess and the answer around a DST change).
  let t = wall - offsetAt(wall, timeZone);
  t = wall - offsetAt(t, timeZone);
  // Where local midnight was skipped (DST at 00:00), the day begins at the first instant that is that date.
  while (fmtDate(new Date(t), timeZone) < text) t += 15 * 60_000;
  return new Date(t);
}
