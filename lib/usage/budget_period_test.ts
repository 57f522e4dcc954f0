import assert from "node:assert/strict";
import { assertTimeZone, bucketCeil, bucketStart, monthWindow, wallTimeToInstant } from "./budget_period.ts";

const H = 3_600_000;

function iso(d: Date): string {
  return d.toISOString();
}

function window(now: string, tz: string): [string, string] {
  const w = monthWindow(new Date(now), tz);
  return [iso(w.start), iso(w.end)];
}

function day(at: string, tz: string): string {
  return iso(bucketStart(new Date(at), "day", tz));
}

function hour(at: string, tz: string): string {
  return iso(bucketStart(new Date(at), "hour", tz));
}

Deno.test("monthWindow in UTC is the calendar month", () => {
  assert.deepEqual(window("2026-05-17T10:00:00Z", "UTC"), [
    "2026-05-01T00:00:00.000Z",
    "2026-06-01T00:00:00.000Z",
  ]);
  assert.deepEqual(window("2026-12-31T23:59:59.999Z", "UTC"), [
    "2026-12-01T00:00:00.000Z",
    "2027-01-01T00:00:00.000Z",
  ]);
  assert.deepEqual(window("2027-01-01T00:00:00Z", "UTC"), [
    "2027-01-01T00:00:00.000Z",
    "2027-02-01T00:00:00.000Z",
  ]);
});

Deno.test("monthWindow: 2026-03-31T23:30Z is already April in Asia/Seoul", () => {
  assert.deepEqual(window("2026-03-31T23:30:00Z", "Asia/Seoul"), [
    "2026-03-31T15:00:00.000Z",
    "2026-04-30T15:00:00.000Z",
  ]);
  assert.deepEqual(window("2026-03-31T14:59:59.999Z", "Asia/Seoul"), [
    "2026-02-28T15:00:00.000Z",
    "2026-03-31T15:00:00.000Z",
  ]);
});

Deno.test("monthWindow: 2026-11-01T03:00Z is still October in America/Los_Angeles", () => {
  assert.deepEqual(window("2026-11-01T03:00:00Z", "America/Los_Angeles"), [
    "2026-10-01T07:00:00.000Z",
    "2026-11-01T07:00:00.000Z",
  ]);
});

Deno.test("monthWindow: a new year arrives early in Pacific/Auckland", () => {
  assert.deepEqual(window("2026-12-31T12:00:00Z", "Pacific/Auckland"), [
    "2026-12-31T11:00:00.000Z",
    "2027-01-31T11:00:00.000Z",
  ]);
});

Deno.test("monthWindow: a month that starts on a DST day in America/New_York", () => {
  // DST ends on Sunday 2026-11-01 at 02:00, after the month has begun at midnight EDT.
  const w = monthWindow(new Date("2026-11-15T12:00:00Z"), "America/New_York");
  assert.equal(iso(w.start), "2026-11-01T04:00:00.000Z");
  assert.equal(iso(w.end), "2026-12-01T05:00:00.000Z");
  assert.equal(w.end.getTime() - w.start.getTime(), 30 * 24 * H + H);
});

Deno.test("monthWindow: Europe/Berlin March loses an hour to DST", () => {
  const w = monthWindow(new Date("2026-03-29T01:30:00Z"), "Europe/Berlin");
  assert.equal(iso(w.start), "2026-02-28T23:00:00.000Z");
  assert.equal(iso(w.end), "2026-03-31T22:00:00.000Z");
  assert.equal(w.end.getTime() - w.start.getTime(), 31 * 24 * H - H);
});

Deno.test("monthWindow: leap February has 29 days", () => {
  const leap = monthWindow(new Date("2028-02-29T12:00:00Z"), "UTC");
  assert.deepEqual([iso(leap.start), iso(leap.end)], [
    "2028-02-01T00:00:00.000Z",
    "2028-03-01T00:00:00.000Z",
  ]);
  assert.equal(leap.end.getTime() - leap.start.getTime(), 29 * 24 * H);
  const plain = monthWindow(new Date("2026-02-10T00:00:00Z"), "UTC");
  assert.equal(plain.end.getTime() - plain.start.getTime(), 28 * 24 * H);
  // Auckland is +13 all February; 2028-02-29T12:00Z is already 1 March there.
  assert.deepEqual(window("2028-02-29T10:59:59Z", "Pacific/Auckland"), [
    "2028-01-31T11:00:00.000Z",
    "2028-02-29T11:00:00.000Z",
  ]);
  assert.equal(window("2028-02-29T12:00:00Z", "Pacific/Auckland")[0], "2028-02-29T11:00:00.000Z");
});

Deno.test("monthWindow returns fresh Date objects on repeated calls", () => {
  const a = monthWindow(new Date("2026-05-17T10:00:00Z"), "UTC");
  a.start.setTime(0);
  const b = monthWindow(new Date("2026-05-18T10:00:00Z"), "UTC");
  assert.equal(iso(b.start), "2026-05-01T00:00:00.000Z");
});

Deno.test("day buckets follow local midnight", () => {
  assert.equal(day("2026-06-01T12:34:56Z", "UTC"), "2026-06-01T00:00:00.000Z");
  assert.equal(day("2026-06-01T12:34:56Z", "America/New_York"), "2026-06-01T04:00:00.000Z");
  assert.equal(day("2026-06-01T03:59:59Z", "America/New_York"), "2026-05-31T04:00:00.000Z");
  // 12:34Z is 21:34 in Seoul; its day began at 15:00Z the day before.
  assert.equal(day("2026-06-01T12:34:56Z", "Asia/Seoul"), "2026-05-31T15:00:00.000Z");
  assert.equal(day("2026-06-01T14:59:59Z", "Asia/Seoul"), "2026-05-31T15:00:00.000Z");
  assert.equal(day("2026-06-01T15:00:00Z", "Asia/Seoul"), "2026-06-01T15:00:00.000Z");
  assert.equal(day("2026-06-01T12:34:56Z", "Asia/Kolkata"), "2026-05-31T18:30:00.000Z");
});

Deno.test("day buckets last 23 and 25 hours on DST days", () => {
  const length = (at: string, tz: string) => {
    const start = bucketStart(new Date(at), "day", tz).getTime();
    const next = bucketStart(new Date(start + 26 * H), "day", tz).getTime();
    // 26h after the start is always inside the next day, whatever that day's length.
    return (next - start) / H;
  };
  assert.equal(day("2026-03-29T12:00:00Z", "Europe/Berlin"), "2026-03-28T23:00:00.000Z");
  assert.equal(length("2026-03-29T12:00:00Z", "Europe/Berlin"), 23);
  assert.equal(day("2026-10-25T12:00:00Z", "Europe/Berlin"), "2026-10-24T22:00:00.000Z");
  assert.equal(length("2026-10-25T12:00:00Z", "Europe/Berlin"), 25);
  assert.equal(day("2026-03-08T12:00:00Z", "America/New_York"), "2026-03-08T05:00:00.000Z");
  assert.equal(length("2026-03-08T12:00:00Z", "America/New_York"), 23);
  assert.equal(day("2026-11-01T12:00:00Z", "America/New_York"), "2026-11-01T04:00:00.000Z");
  assert.equal(length("2026-11-01T12:00:00Z", "America/New_York"), 25);
  assert.equal(length("2026-07-01T12:00:00Z", "America/New_York"), 24);
});

Deno.test("day buckets where DST jumps at midnight (America/Santiago)", () => {
  // 2026-09-06: 00:00 -04 does not exist; clocks jump to 01:00 -03 at 04:00Z, where the day begins.
  assert.equal(day("2026-09-06T12:00:00Z", "America/Santiago"), "2026-09-06T04:00:00.000Z");
  assert.equal(day("2026-09-06T03:59:59Z", "America/Santiago"), "2026-09-05T04:00:00.000Z");
  // 2026-04-05: at 03:00Z clocks go back from 24:00 -03 to 23:00 -04, so April 5 begins at 04:00Z.
  assert.equal(day("2026-04-05T12:00:00Z", "America/Santiago"), "2026-04-05T04:00:00.000Z");
  assert.equal(day("2026-04-05T03:30:00Z", "America/Santiago"), "2026-04-04T03:00:00.000Z");
});

Deno.test("hour buckets are UTC hours in whole-hour zones", () => {
  for (const tz of ["UTC", "Europe/Berlin", "America/New_York", "Asia/Seoul", "Pacific/Auckland"]) {
    assert.equal(hour("2026-06-01T12:34:56.789Z", tz), "2026-06-01T12:00:00.000Z", tz);
  }
  // The repeated 01:00 hour when New York leaves DST is two buckets, one per real hour.
  assert.equal(hour("2026-11-01T05:30:00Z", "America/New_York"), "2026-11-01T05:00:00.000Z");
  assert.equal(hour("2026-11-01T06:30:00Z", "America/New_York"), "2026-11-01T06:00:00.000Z");
  assert.equal(hour("1969-12-31T23:30:00Z", "UTC"), "1969-12-31T23:00:00.000Z");
});

Deno.test("hour buckets follow local hours in zones with non-hour offsets", () => {
  // Kolkata +05:30: 12:34:56Z is 18:04:56 local, whose hour began at 18:00 local = 12:30Z.
  assert.equal(hour("2026-06-01T12:34:56Z", "Asia/Kolkata"), "2026-06-01T12:30:00.000Z");
  assert.equal(hour("2026-06-01T12:29:59Z", "Asia/Kolkata"), "2026-06-01T11:30:00.000Z");
  // Kathmandu +05:45.
  assert.equal(hour("2026-06-01T12:34:56Z", "Asia/Kathmandu"), "2026-06-01T12:15:00.000Z");
  assert.equal(hour("2026-06-01T12:10:00Z", "Asia/Kathmandu"), "2026-06-01T11:15:00.000Z");
  // Adelaide +09:30 in June, +10:30 in January.
  assert.equal(hour("2026-06-01T12:34:56Z", "Australia/Adelaide"), "2026-06-01T12:30:00.000Z");
  assert.equal(hour("2026-01-15T12:34:56Z", "Australia/Adelaide"), "2026-01-15T12:30:00.000Z");
});

Deno.test("hour buckets never overlap where the offset changes by half an hour (Australia/Lord_Howe)", () => {
  const tz = "Australia/Lord_Howe";
  // 2026-04-05 02:00 +11 becomes 01:30 +10:30 at 15:00Z: the bucket straddling the change starts at it.
  assert.equal(hour("2026-04-04T14:50:00Z", tz), "2026-04-04T14:00:00.000Z");
  assert.equal(hour("2026-04-04T15:05:00Z", tz), "2026-04-04T15:00:00.000Z");
  assert.equal(hour("2026-04-04T15:35:00Z", tz), "2026-04-04T15:30:00.000Z");
  // 2026-10-04 02:00 +10:30 becomes 02:30 +11 at 15:30Z.
  assert.equal(hour("2026-10-03T15:20:00Z", tz), "2026-10-03T14:30:00.000Z");
  assert.equal(hour("2026-10-03T15:35:00Z", tz), "2026-10-03T15:30:00.000Z");
  assert.equal(hour("2026-10-03T16:05:00Z", tz), "2026-10-03T16:00:00.000Z");
});

Deno.test("hour buckets are contiguous and never overlap through a year of transitions", () => {
  const zones = [
    "Australia/Lord_Howe",
    "Australia/Adelaide",
    "America/St_Johns",
    "Pacific/Chatham",
    "Europe/Berlin",
  ];
  const from = Date.UTC(2026, 0, 1);
  for (const tz of zones) {
    let prev = -Infinity;
    for (let ms = from; ms < from + 366 * 24 * H; ms += 5 * 60_000) {
      const h = bucketStart(new Date(ms), "hour", tz).getTime();
      assert.ok(h <= ms && ms - h < H, `${tz} ${new Date(ms).toISOString()}: bucket contains the instant`);
      assert.ok(h >= prev, `${tz} ${new Date(ms).toISOString()}: bucket starts before the previous one`);
      assert.ok(
        prev === -Infinity || h === prev || h > ms - 5 * 60_000,
        `${tz} ${new Date(ms).toISOString()}: gap between buckets`,
      );
      prev = h;
    }
  }
});

function ceil(at: string, granularity: "hour" | "day", tz: string): string {
  return iso(bucketCeil(new Date(at), granularity, tz));
}

Deno.test("bucketCeil rounds up to the next bucket boundary and leaves a boundary as it is", () => {
  assert.equal(ceil("2026-06-01T14:00:01Z", "hour", "UTC"), "2026-06-01T15:00:00.000Z");
  assert.equal(ceil("2026-06-01T14:00:00Z", "hour", "UTC"), "2026-06-01T14:00:00.000Z");
  assert.equal(ceil("2026-06-01T14:59:59.999Z", "hour", "Asia/Seoul"), "2026-06-01T15:00:00.000Z");
  assert.equal(ceil("2026-06-01T12:34:56Z", "hour", "Asia/Kolkata"), "2026-06-01T13:30:00.000Z");
  // Seoul days begin at 15:00Z.
  assert.equal(ceil("2026-06-02T12:00:00Z", "day", "Asia/Seoul"), "2026-06-02T15:00:00.000Z");
  assert.equal(ceil("2026-06-02T15:00:00Z", "day", "Asia/Seoul"), "2026-06-02T15:00:00.000Z");
  // New York's 8 March 2026 is 23 hours long and 1 November 25.
  assert.equal(ceil("2026-03-08T12:00:00Z", "day", "America/New_York"), "2026-03-09T04:00:00.000Z");
  assert.equal(ceil("2026-11-01T12:00:00Z", "day", "America/New_York"), "2026-11-02T05:00:00.000Z");
  // Santiago's 6 September 2026 begins at 01:00 (04:00Z): midnight is skipped.
  assert.equal(ceil("2026-09-05T12:00:00Z", "day", "America/Santiago"), "2026-09-06T04:00:00.000Z");
});

Deno.test("bucketCeil stops at the short buckets where Lord Howe's offset changes by half an hour", () => {
  const tz = "Australia/Lord_Howe";
  // Buckets around 15:00Z on 4 April 2026: [14:00, 15:00), [15:00, 15:30), [15:30, 16:30).
  assert.equal(ceil("2026-04-04T14:50:00Z", "hour", tz), "2026-04-04T15:00:00.000Z");
  assert.equal(ceil("2026-04-04T15:05:00Z", "hour", tz), "2026-04-04T15:30:00.000Z");
  assert.equal(ceil("2026-04-04T15:35:00Z", "hour", tz), "2026-04-04T16:30:00.000Z");
  // Around 15:30Z on 3 October 2026: [14:30, 15:30), [15:30, 16:00), [16:00, 17:00).
  assert.equal(ceil("2026-10-03T15:20:00Z", "hour", tz), "2026-10-03T15:30:00.000Z");
  assert.equal(ceil("2026-10-03T15:35:00Z", "hour", tz), "2026-10-03T16:00:00.000Z");
});

Deno.test("bucketCeil is the instant on a boundary, else the end of its bucket, through a year", () => {
  const from = Date.UTC(2026, 0, 1);
  for (const tz of ["Australia/Lord_Howe", "America/Santiago", "Asia/Kathmandu", "Europe/Berlin"]) {
    for (let ms = from; ms < from + 366 * 24 * H; ms += 7 * H + 13 * 60_000) {
      for (const g of ["hour", "day"] as const) {
        const start = bucketStart(new Date(ms), g, tz).getTime();
        const end = bucketCeil(new Date(ms), g, tz).getTime();
        const at = `${tz} ${g} ${new Date(ms).toISOString()}`;
        if (start === ms) {
          assert.equal(end, ms, `${at}: a boundary stays`);
          continue;
        }
        assert.ok(end > ms, `${at}: ends after the instant`);
        assert.equal(bucketStart(new Date(end), g, tz).getTime(), end, `${at}: ends on a boundary`);
        assert.equal(bucketStart(new Date(end - 1), g, tz).getTime(), start, `${at}: no bucket skipped`);
      }
    }
  }
});

function wall(local: string, tz: string): string {
  return iso(wallTimeToInstant(new Date(`${local}Z`), tz));
}

Deno.test("wall-clock times map to instants in the zone, whatever the process's own zone", () => {
  assert.equal(wall("2026-11-29T00:00:00", "Asia/Seoul"), "2026-11-28T15:00:00.000Z");
  assert.equal(wall("2026-11-29T00:00:00", "America/New_York"), "2026-11-29T05:00:00.000Z");
  assert.equal(wall("2026-06-29T09:30:15.250", "America/New_York"), "2026-06-29T13:30:15.250Z");
  assert.equal(wall("2026-06-01T00:00:00", "Asia/Kathmandu"), "2026-05-31T18:15:00.000Z");
});

Deno.test("a wall time DST skips is read with the offset before the jump, a repeated one is the first", () => {
  // New York jumps from 02:00 EST to 03:00 EDT at 07:00Z on 8 March 2026: 02:30 EST is 07:30Z (03:30 EDT).
  assert.equal(wall("2026-03-08T02:30:00", "America/New_York"), "2026-03-08T07:30:00.000Z");
  assert.equal(wall("2026-03-08T03:00:00", "America/New_York"), "2026-03-08T07:00:00.000Z");
  // It shows 01:00-02:00 twice on 1 November 2026 (EDT from 05:00Z, then EST from 06:00Z).
  assert.equal(wall("2026-11-01T01:30:00", "America/New_York"), "2026-11-01T05:30:00.000Z");
  assert.equal(wall("2026-11-01T02:00:00", "America/New_York"), "2026-11-01T07:00:00.000Z");
  // Santiago skips midnight on 6 September 2026: the day begins at the jump, 04:00Z.
  assert.equal(wall("2026-09-06T00:00:00", "America/Santiago"), "2026-09-06T04:00:00.000Z");
  assert.equal(wall("2026-09-06T00:30:00", "America/Santiago"), "2026-09-06T04:30:00.000Z");
});

// An oracle independent of the module: local calendar date, time and UTC offset of an instant, from Intl.
const oracles = new Map<string, Intl.DateTimeFormat>();
function localParts(ms: number, tz: string): { date: string; time: string; offset: string } {
  let f = oracles.get(tz);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-CA", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      timeZoneName: "longOffset",
    });
    oracles.set(tz, f);
  }
  const [date, rest] = f.format(ms).split(", ");
  const [time, offset] = rest.split(" ");
  return { date, time, offset };
}

Deno.test("day and month boundaries agree with Intl across a year in many zones", () => {
  const zones = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "America/Santiago",
    "Asia/Seoul",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
  ];
  const from = Date.UTC(2026, 0, 1);
  for (const tz of zones) {
    // Every 7 hours for a year hits every DST day in both directions at varied times of day.
    for (let ms = from; ms < from + 366 * 24 * H; ms += 7 * H + 13 * 60_000) {
      const here = localParts(ms, tz);
      const start = bucketStart(new Date(ms), "day", tz).getTime();
      assert.ok(start <= ms, `${tz} ${new Date(ms).toISOString()}: day starts after the instant`);
      assert.equal(localParts(start, tz).date, here.date, `${tz} ${new Date(ms).toISOString()}: same date`);
      assert.notEqual(
        localParts(start - 1, tz).date,
        here.date,
        `${tz} ${new Date(ms).toISOString()}: first`,
      );

      const w = monthWindow(new Date(ms), tz);
      assert.ok(w.start.getTime() <= ms && ms < w.end.getTime(), `${tz} ${new Date(ms).toISOString()} month`);
      assert.equal(localParts(w.start.getTime(), tz).date.slice(0, 7), here.date.slice(0, 7));
      assert.notEqual(localParts(w.start.getTime() - 1, tz).date.slice(0, 7), here.date.slice(0, 7));
      assert.notEqual(localParts(w.end.getTime(), tz).date.slice(0, 7), here.date.slice(0, 7));
      assert.equal(localParts(w.end.getTime() - 1, tz).date.slice(0, 7), here.date.slice(0, 7));

      const h = bucketStart(new Date(ms), "hour", tz).getTime();
      assert.ok(
        h <= ms && ms - h < H,
        `${tz} ${new Date(ms).toISOString()}: hour bucket contains the instant`,
      );
      // A bucket starts on a local hour, or at the transition that cut its local hour short.
      const startsOnHour = localParts(h, tz).time.slice(3) === "00";
      const startsAtTransition = localParts(h - 1, tz).offset !== localParts(h, tz).offset;
      assert.ok(startsOnHour || startsAtTransition, `${tz} ${new Date(ms).toISOString()}: local :00`);
    }
  }
});

Deno.test("assertTimeZone accepts IANA names", () => {
  for (const tz of ["UTC", "Europe/Berlin", "Asia/Seoul", "America/Argentina/Buenos_Aires", "Etc/GMT+5"]) {
    assertTimeZone(tz);
  }
});

Deno.test("assertTimeZone rejects unknown zones with a helpful message", () => {
  const expected =
    "PROXY_TIMEZONE: unknown IANA time zone 'Mars/Olympus' (expected e.g. UTC, Europe/Berlin, Asia/Seoul)";
  assert.throws(() => assertTimeZone("Mars/Olympus"), { message: expected });
  assert.throws(() => assertTimeZone(""), /unknown IANA time zone ''/);
  // Offsets are not IANA names, and PostgreSQL reads them with the opposite sign.
  assert.throws(() => assertTimeZone("+05:30"), /unknown IANA time zone '\+05:30'/);
  assert.throws(() => monthWindow(new Date(), "Mars/Olympus"), { message: expected });
  assert.throws(() => bucketStart(new Date(), "day", "Nowhere/Land"), /PROXY_TIMEZONE: unknown IANA/);
});

Deno.test("invalid dates are rejected rather than producing Invalid Date", () => {
  assert.throws(() => monthWindow(new Date(NaN), "UTC"), RangeError);
  assert.throws(() => bucketStart(new Date("nope"), "hour", "UTC"), RangeError);
});
