import assert from "node:assert/strict";
import { parseReportQuery, parseTimeRange } from "./report.ts";
import { HttpError } from "../errors.ts";

const NOW = new Date("2026-06-02T12:34:56Z");

function range(params: Record<string, string>, tz: string): { from?: string; to?: string } {
  const r = parseTimeRange(params, tz);
  return { from: r.from?.toISOString(), to: r.to?.toISOString() };
}

function rejects(fn: () => unknown, field: string, message: RegExp): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof HttpError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.type, "invalid_request_error");
    assert.equal(e.field, field);
    assert.ok(e.message.startsWith(`${field}: `), e.message);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("a time without an offset is a wall-clock time in the configured zone", () => {
  // Expected instants are written out in UTC, so the answer cannot come from the process's own zone.
  assert.deepEqual(range({ from: "2026-11-29", to: "2026-11-29T09:30" }, "Asia/Seoul"), {
    from: "2026-11-28T15:00:00.000Z",
    to: "2026-11-29T00:30:00.000Z",
  });
  assert.deepEqual(range({ from: "2026-11-29", to: "2026-11-29T09:30:15.5" }, "America/New_York"), {
    from: "2026-11-29T05:00:00.000Z",
    to: "2026-11-29T14:30:15.500Z",
  });
  const seoulDay = parseReportQuery({ from: "2026-11-29", to: "2026-11-30" }, NOW, "Asia/Seoul");
  assert.equal(seoulDay.from.toISOString(), "2026-11-28T15:00:00.000Z");
  assert.equal(seoulDay.to.toISOString(), "2026-11-29T15:00:00.000Z");
});

Deno.test("a time with Z or an offset is the instant given, in any configured zone", () => {
  for (const tz of ["Asia/Seoul", "America/New_York", "UTC"]) {
    assert.deepEqual(range({ from: "2026-11-29T00:00:00Z", to: "2026-11-29T09:30+09:00" }, tz), {
      from: "2026-11-29T00:00:00.000Z",
      to: "2026-11-29T00:30:00.000Z",
    });
    assert.deepEqual(range({ from: "2026-11-28T19:00:00.000-0500", to: "2026-11-29t05:45z" }, tz), {
      from: "2026-11-29T00:00:00.000Z",
      to: "2026-11-29T05:45:00.000Z",
    });
  }
});

Deno.test("a local time DST skips is read with the offset before the jump, a repeated one is the first", () => {
  const ny = "America/New_York";
  // 02:30 does not exist on 8 March 2026 in New York; read as EST it is 07:30Z, 03:30 EDT.
  assert.equal(range({ from: "2026-03-08T02:30" }, ny).from, "2026-03-08T07:30:00.000Z");
  // 01:30 happens twice on 1 November 2026 (EDT, then EST): the first.
  assert.equal(range({ from: "2026-11-01T01:30" }, ny).from, "2026-11-01T05:30:00.000Z");
  // Santiago skips midnight on 6 September 2026: that date begins at the jump.
  assert.equal(range({ from: "2026-09-06" }, "America/Santiago").from, "2026-09-06T04:00:00.000Z");
});

Deno.test("the parsed time does not depend on the server's TZ", async () => {
  const inputs = [
    { from: "2026-11-29", to: "2026-11-29T09:30" },
    { from: "2026-03-08T02:30", to: "2026-11-01T01:30" },
  ];
  const here = inputs.map((p) => [range(p, "Asia/Seoul"), range(p, "America/New_York")]);
  const script = `
    import { parseTimeRange } from ${JSON.stringify(new URL("./report.ts", import.meta.url).href)};
    const iso = (r) => ({ from: r.from?.toISOString(), to: r.to?.toISOString() });
    const inputs = ${JSON.stringify(inputs)};
    console.log(JSON.stringify(inputs.map((p) =>
      [iso(parseTimeRange(p, "Asia/Seoul")), iso(parseTimeRange(p, "America/New_York"))])));`;
  for (const serverZone of ["Pacific/Kiritimati", "America/Los_Angeles"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-check", script],
      env: { TZ: serverZone },
      cwd: new URL("../..", import.meta.url),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), here, `TZ=${serverZone}`);
  }
});

Deno.test("a date or time that does not exist is a 400 naming the parameter", () => {
  const cases: Array<[string, RegExp]> = [
    ["2026-02-30", /expected a day from 01 to 28 \(February 2026 has 28 days\), got "2026-02-30"/],
    ["2026-02-31T00:00:00Z", /expected a day from 01 to 28/],
    ["2026-02-29", /February 2026 has 28 days/],
    ["2026-04-31T10:00", /expected a day from 01 to 30 \(April 2026 has 30 days\)/],
    ["2026-06-00", /expected a day from 01 to 30/],
    ["2026-13-01", /expected a month from 01 to 12, got "2026-13-01"/],
    ["2026-00-10", /expected a month from 01 to 12/],
    ["2026-06-01T24:00", /expected an hour from 00 to 23/],
    ["2026-06-01T25:00:00Z", /expected an hour from 00 to 23/],
    ["2026-06-01T12:60", /expected minutes from 00 to 59/],
    ["2026-06-01T12:00:60Z", /expected seconds from 00 to 59/],
    ["2026-06-01T12:00+24:00", /expected a zone offset from -23:59 to \+23:59/],
    ["2026-06-01T12:00-05:60", /expected a zone offset/],
  ];
  for (const [raw, message] of cases) {
    for (const field of ["from", "to"]) {
      rejects(() => parseTimeRange({ [field]: raw }, "UTC"), field, message);
      rejects(() => parseReportQuery({ [field]: raw }, NOW, "Asia/Seoul"), field, message);
    }
  }
  // The same fields at their limits are fine, 29 February in a leap year too.
  assert.deepEqual(range({ from: "2028-02-29T23:59:59.999Z", to: "2028-12-31T23:59:59+23:59" }, "UTC"), {
    from: "2028-02-29T23:59:59.999Z",
    to: "2028-12-31T00:00:59.000Z",
  });
});

Deno.test("years outside 1970-9999 are refused, also when an offset or rounding carries them past 9999", () => {
  rejects(() => parseTimeRange({ from: "1969-12-31T23:00:00Z" }, "UTC"), "from", /between 1970 and 9999/);
  rejects(() => parseTimeRange({ to: "9999-12-31T23:00-05:00" }, "UTC"), "to", /between 1970 and 9999/);
  rejects(
    () =>
      parseReportQuery(
        { from: "9999-12-30T00:00Z", to: "9999-12-31T12:00Z", granularity: "day" },
        NOW,
        "UTC",
      ),
    "to",
    /once rounded up to a whole day/,
  );
  // Local 1970-01-01 in Seoul is 1969 in UTC, which the database holds fine.
  assert.equal(range({ from: "1970-01-01" }, "Asia/Seoul").from, "1969-12-31T15:00:00.000Z");
});

Deno.test("a report covers whole buckets: from rounded down, to rounded up, and says so", () => {
  const q = parseReportQuery(
    { from: "2026-06-01T14:00:00Z", to: "2026-06-01T14:00:01Z", granularity: "hour" },
    NOW,
    "UTC",
  );
  assert.equal(q.from.toISOString(), "2026-06-01T14:00:00.000Z");
  assert.equal(q.to.toISOString(), "2026-06-01T15:00:00.000Z");
  // Bounds already on a boundary stay.
  const whole = parseReportQuery({ from: "2026-06-01T10:00Z", to: "2026-06-01T12:00Z" }, NOW, "UTC");
  assert.equal(whole.to.toISOString(), "2026-06-01T12:00:00.000Z");
  // Days in Seoul begin at 15:00Z.
  const days = parseReportQuery(
    { from: "2026-05-20T00:00:00Z", to: "2026-06-02T12:00:00Z", granularity: "day" },
    NOW,
    "Asia/Seoul",
  );
  assert.equal(days.from.toISOString(), "2026-05-19T15:00:00.000Z");
  assert.equal(days.to.toISOString(), "2026-06-02T15:00:00.000Z");
  // The default, the last 24 h, is rounded out too.
  const last = parseReportQuery({}, NOW, "UTC");
  assert.equal(last.granularity, "hour");
  assert.equal(last.from.toISOString(), "2026-06-01T12:00:00.000Z");
  assert.equal(last.to.toISOString(), "2026-06-02T13:00:00.000Z");
});

Deno.test("the hour granularity limit applies to the range rounded out to whole hours", () => {
  const ok = parseReportQuery(
    { from: "2026-01-01T00:00Z", to: "2026-04-04T00:00Z", granularity: "hour" },
    NOW,
    "UTC",
  );
  assert.equal(ok.to.getTime() - ok.from.getTime(), 93 * 86400_000);
  rejects(
    () =>
      parseReportQuery(
        { from: "2026-01-01T00:30Z", to: "2026-04-04T00:30Z", granularity: "hour" },
        NOW,
        "UTC",
      ),
    "granularity",
    /hour is limited to 93 days, and from 2026-01-01T00:00:00.000Z to 2026-04-04T01:00:00.000Z \(the range rounded out to whole hours\) is 93.04 days; use day/,
  );
});

Deno.test("from must come before to, as given or defaulted to now", () => {
  rejects(
    () => parseReportQuery({ from: "2026-06-02T00:00Z", to: "2026-06-02T00:00Z" }, NOW, "UTC"),
    "from",
    /^from: must be before to$/,
  );
  rejects(
    () => parseReportQuery({ from: "2026-06-03T00:00Z" }, NOW, "UTC"),
    "from",
    /^from: must be before to, which defaults to now$/,
  );
});
