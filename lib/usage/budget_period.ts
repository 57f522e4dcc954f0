/**
 * Calendar periods in an IANA time zone, computed with `Intl.DateTimeFormat` only.
 *
 * Budgets run for the calendar month of `PROXY_TIMEZONE`; usage charts bucket by local day or hour. All
 * results are UTC instants, which is what the database stores.
 *
 * @module
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
// Every tz transition since 1972 happens on a whole minute and every offset is a multiple of 15 minutes, so a
// zone's offset is constant within each 15-minute slot of UTC time. Caching per slot saves an Intl call.
const SLOT_MS = 900_000;

interface Zone {
  fmt: Intl.DateTimeFormat;
  // Two cached (slot, offset) pairs: callers alternate between two instants (an instant and its bucket
  // start, or both sides of a transition), which would thrash a single entry.
  slot0: number;
  offset0: number;
  slot1: number;
  offset1: number;
  replace1: boolean;
  // The last day and month asked for: usage arrives in time order, so most calls land in the same ones.
  dayStart: number;
  dayEnd: number;
  monthStart: number;
  monthEnd: number;
}

const zones = new Map<string, Zone>();
const ZONE_LIMIT = 64;

/**
 * Throws unless `tz` is an IANA time zone name this runtime knows.
 *
 * Offset strings such as `+05:30` are refused even though `Intl` accepts them: PostgreSQL reads them with
 * the opposite (POSIX) sign, so they would silently disagree with SQL that uses the same setting.
 *
 * @example
 * ```ts
 * assertTimeZone("Europe/Berlin"); // ok
 * assertTimeZone("Mars/Olympus"); // throws "PROXY_TIMEZONE: unknown IANA time zone 'Mars/Olympus' (...)"
 * ```
 */
export function assertTimeZone(tz: string): void {
  let ok = typeof tz === "string" && /^[A-Za-z]/.test(tz);
  if (ok) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: tz });
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    throw new Error(
      `PROXY_TIMEZONE: unknown IANA time zone '${tz}' (expected e.g. UTC, Europe/Berlin, Asia/Seoul)`,
    );
  }
}

function zone(tz: string): Zone {
  let z = zones.get(tz);
  if (z === undefined) {
    assertTimeZone(tz);
    if (zones.size >= ZONE_LIMIT) zones.clear();
    z = {
      fmt: new Intl.DateTimeFormat("en-US", {
        timeZone: tz,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      }),
      slot0: NaN,
      offset0: 0,
      slot1: NaN,
      offset1: 0,
      replace1: false,
      dayStart: NaN,
      dayEnd: NaN,
      monthStart: NaN,
      monthEnd: NaN,
    };
    zones.set(tz, z);
  }
  return z;
}

/** The zone's UTC offset in ms at `ms` (local wall clock minus UTC). */
function offsetAt(z: Zone, ms: number): number {
  const slot = Math.floor(ms / SLOT_MS);
  if (slot === z.slot0) return z.offset0;
  if (slot === z.slot1) return z.offset1;
  let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  for (const p of z.fmt.formatToParts(ms)) {
    switch (p.type) {
      case "year":
        y = +p.value;
        break;
      case "month":
        mo = +p.value;
        break;
      case "day":
        d = +p.value;
        break;
      case "hour":
        h = +p.value;
        break;
      case "minute":
        mi = +p.value;
        break;
      case "second":
        s = +p.value;
        break;
    }
  }
  let wall = Date.UTC(y, mo - 1, d, h, mi, s);
  // Date.UTC reads years 0-99 as 1900-1999.
  if (y >= 0 && y < 100) wall = new Date(wall).setUTCFullYear(y);
  const offset = wall - (ms - (((ms % 1000) + 1000) % 1000));
  if (z.replace1) {
    z.slot1 = slot;
    z.offset1 = offset;
  } else {
    z.slot0 = slot;
    z.offset0 = offset;
  }
  z.replace1 = !z.replace1;
  return offset;
}

/**
 * The first instant at which the zone's wall clock reads `wall` (wall-clock time encoded as if it were UTC).
 * When the wall time occurs twice (clocks went back), the earlier instant; when it does not exist (clocks
 * jumped over it), the wall time read with the offset before the jump. For the start of a skipped stretch, as
 * midnight in America/Santiago, that is the instant of the jump, which is where such a local day begins.
 */
function wallToInstant(z: Zone, wall: number): number {
  // Offsets a day either side of the wall time bracket any transition near it (offsets are within ±14h).
  const before = offsetAt(z, wall - DAY_MS);
  const after = offsetAt(z, wall + DAY_MS);
  // Equal offsets mean no transition in between: no zone changes and changes back within two days.
  if (before === after) return wall - before;
  const t1 = wall - before;
  const t2 = wall - after;
  const ok1 = offsetAt(z, t1) === before;
  const ok2 = offsetAt(z, t2) === after;
  if (ok1 && ok2) return Math.min(t1, t2);
  if (ok2) return t2;
  return t1; // ok1 alone, or the gap: t1 reads the wall time with the offset before the jump
}

/** Local calendar fields of `ms` in the zone, as a UTC-encoded Date (read with getUTC*). */
function localDate(z: Zone, ms: number): Date {
  return new Date(ms + offsetAt(z, ms));
}

function checkDate(d: Date, name: string): number {
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`${name}: invalid Date`);
  return ms;
}

/**
 * The `[start, end)` instants of the calendar month containing `now` in `timeZone`.
 *
 * @example
 * ```ts
 * monthWindow(new Date("2026-03-31T23:30:00Z"), "Asia/Seoul");
 * // { start: 2026-03-31T15:00:00.000Z, end: 2026-04-30T15:00:00.000Z } (already April in Seoul)
 * ```
 */
export function monthWindow(now: Date, timeZone: string): { start: Date; end: Date } {
  const ms = checkDate(now, "monthWindow");
  const z = zone(timeZone);
  if (!(ms >= z.monthStart && ms < z.monthEnd)) {
    const local = localDate(z, ms);
    const y = local.getUTCFullYear();
    const m = local.getUTCMonth();
    // Date.UTC normalises month 12 to January of the next year.
    z.monthStart = wallToInstant(z, Date.UTC(y, m, 1));
    z.monthEnd = wallToInstant(z, Date.UTC(y, m + 1, 1));
  }
  return { start: new Date(z.monthStart), end: new Date(z.monthEnd) };
}

/**
 * The start instant of the hour or day bucket containing `instant` in `timeZone`.
 *
 * Day buckets begin at local midnight, so they last 23 or 25 hours on DST days. Hour buckets are whole UTC
 * hours in zones whose offset is a whole number of hours, and local hours in zones such as Asia/Kolkata
 * (+05:30) or Asia/Kathmandu (+05:45), so a chart in such a zone shows 10:00-11:00 rather than 10:30-11:30.
 * Where a zone's offset changes by half an hour (Australia/Lord_Howe), the bucket that straddles the change
 * starts at the change and is 30 minutes long, so that buckets never overlap.
 *
 * @example
 * ```ts
 * bucketStart(new Date("2026-06-01T12:34:56Z"), "day", "America/New_York"); // 2026-06-01T04:00:00.000Z
 * bucketStart(new Date("2026-06-01T12:34:56Z"), "hour", "Asia/Kolkata"); // 2026-06-01T12:30:00.000Z
 * ```
 */
export function bucketStart(instant: Date, granularity: "hour" | "day", timeZone: string): Date {
  const ms = checkDate(instant, "bucketStart");
  const z = zone(timeZone);
  if (granularity === "hour") {
    // Flooring local time to the hour and mapping back is UTC flooring when the offset is whole hours.
    const offset = offsetAt(z, ms);
    const local = ms + offset;
    let start = ms - (((local % HOUR_MS) + HOUR_MS) % HOUR_MS);
    // A bucket never reaches back across a transition, or buckets would overlap where the offset changes by
    // half an hour (Australia/Lord_Howe); there it starts at the transition. start is slot-aligned (whole
    // local hour minus a multiple of 15 minutes), so stepping by slots lands on the transition exactly.
    while (start < ms && offsetAt(z, start) !== offset) start += SLOT_MS;
    return new Date(start);
  }
  if (granularity !== "day") throw new RangeError(`bucketStart: unknown granularity '${granularity}'`);
  cacheDay(z, ms);
  return new Date(z.dayStart);
}

/** Sets the zone's cached day to the local day containing `ms`. */
function cacheDay(z: Zone, ms: number): void {
  if (!(ms >= z.dayStart && ms < z.dayEnd)) {
    const local = localDate(z, ms);
    const y = local.getUTCFullYear(), m = local.getUTCMonth(), d = local.getUTCDate();
    z.dayStart = wallToInstant(z, Date.UTC(y, m, d));
    z.dayEnd = wallToInstant(z, Date.UTC(y, m, d + 1));
  }
}

/**
 * The first hour or day bucket boundary in `timeZone` at or after `instant`: `instant` itself when a bucket
 * starts there, else the end of the bucket containing it. With `bucketStart`, it rounds a range out to whole
 * buckets.
 *
 * @example
 * ```ts
 * bucketCeil(new Date("2026-06-01T12:34:56Z"), "hour", "UTC"); // 2026-06-01T13:00:00.000Z
 * bucketCeil(new Date("2026-06-01T04:00:00Z"), "day", "America/New_York"); // 2026-06-01T04:00:00.000Z
 * ```
 */
export function bucketCeil(instant: Date, granularity: "hour" | "day", timeZone: string): Date {
  const ms = checkDate(instant, "bucketCeil");
  const start = bucketStart(instant, granularity, timeZone).getTime();
  if (start === ms) return new Date(ms);
  const z = zone(timeZone);
  if (granularity === "day") {
    cacheDay(z, ms);
    return new Date(z.dayEnd);
  }
  // No hour bucket is longer than an hour, so an hour on lands in a later bucket; stepping back bucket by bucket
  // finds the one right after ours even where short buckets (Australia/Lord_Howe) sit in between.
  let end = bucketStart(new Date(start + HOUR_MS), "hour", timeZone).getTime();
  for (;;) {
    const prev = bucketStart(new Date(end - 1), "hour", timeZone).getTime();
    if (prev <= ms) return new Date(end);
    end = prev;
  }
}

/**
 * The instant at which the wall clock of `timeZone` reads `wall`, a Date whose UTC fields hold the local date and
 * time. A time the clock shows twice (it went back) is its first occurrence; a time it skipped (it jumped
 * forward) is read with the offset in force before the jump, so it lands as far after the jump as it was after
 * the last time shown before it. These are RFC 5545's rules (and Temporal's "compatible"); PostgreSQL differs by
 * taking the second of two occurrences, which does not matter as long as SQL never converts local times.
 *
 * @example
 * ```ts
 * wallTimeToInstant(new Date("2026-11-29T00:00:00Z"), "Asia/Seoul"); // 2026-11-28T15:00:00.000Z
 * // New York jumps from 02:00 to 03:00 on 8 March 2026: 02:30 is read as EST, i.e. 03:30 EDT.
 * wallTimeToInstant(new Date("2026-03-08T02:30:00Z"), "America/New_York"); // 2026-03-08T07:30:00.000Z
 * // It repeats 01:00-02:00 on 1 November 2026: 01:30 is the first one, EDT.
 * wallTimeToInstant(new Date("2026-11-01T01:30:00Z"), "America/New_York"); // 2026-11-01T05:30:00.000Z
 * ```
 */
export function wallTimeToInstant(wall: Date, timeZone: string): Date {
  return new Date(wallToInstant(zone(timeZone), checkDate(wall, "wallTimeToInstant")));
}
