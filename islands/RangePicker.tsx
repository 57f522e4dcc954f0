/**
 * The dashboard's range picker: last 24 h, 7 days, 30 days, or a custom from/to (dates in `PROXY_TIMEZONE`).
 * It is a plain GET form: without JavaScript every field shows and "Apply" submits. Hydrated, the date fields show
 * only for "Custom" and a preset picked with the pointer applies at once. Picked with the keyboard (arrows change a
 * closed select's value, one step at a time), it waits for Enter or "Apply": applying on each step would load the
 * page and take the focus away before the keyboard user reached the option they wanted.
 */
import { useEffect, useRef, useState } from "preact/hooks";

/** The ranges offered. */
export type RangeName = "24h" | "7d" | "30d" | "custom";

/** Props of {@link RangePicker}. */
export interface RangePickerProps {
  action: string;
  range: RangeName;
  /** `yyyy-mm-dd` values of the custom fields. */
  from: string;
  to: string;
  timeZone: string;
  /** Messages shown beside the field at fault. */
  errors?: { from?: string; to?: string; range?: string };
}

const OPTIONS: Array<[RangeName, string]> = [
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["custom", "Custom…"],
];

/** The range picker; see the module documentation. */
export function RangePicker(props: RangePickerProps) {
  const [ready, setReady] = useState(false);
  const [range, setRange] = useState<RangeName>(props.range);
  /** A preset chosen with the keyboard and not yet applied. */
  const [pending, setPending] = useState(false);
  const keyed = useRef(false);
  const form = useRef<HTMLFormElement>(null);
  useEffect(() => setReady(true), []);
  const showDates = !ready || range === "custom";
  const apply = () => queueMicrotask(() => form.current?.requestSubmit());
  const errors = props.errors ?? {};

  return (
    <form
      ref={form}
      method="get"
      action={props.action}
      class="flex flex-wrap items-end gap-3"
      data-range-picker
    >
      <div>
        <label class="label" for="range">Range</label>
        <select
          id="range"
          name="range"
          class="input w-auto pr-8"
          value={range}
          onPointerDown={() => (keyed.current = false)}
          onKeyDown={(e) => {
            if (e.key === "Enter") {
              e.preventDefault();
              if (range !== "custom") apply();
            } else if (e.key !== "Tab") keyed.current = true;
          }}
          onChange={(e) => {
            const value = (e.currentTarget as HTMLSelectElement).value as RangeName;
            setRange(value);
            if (value === "custom") return;
            if (keyed.current) setPending(value !== props.range);
            else apply();
          }}
        >
          {OPTIONS.map(([value, label]) => (
            <option key={value} value={value} selected={value === range}>{label}</option>
          ))}
        </select>
        {errors.range && <p class="field-error">{errors.range}</p>}
      </div>
      <div class={showDates ? "" : "hidden"}>
        <label class="label" for="from">From</label>
        <input
          id="from"
          name="from"
          type="date"
          class={`input ${errors.from ? "input-invalid" : ""}`}
          value={props.from}
          aria-invalid={errors.from ? "true" : undefined}
          aria-describedby={errors.from ? "from-error" : undefined}
        />
        {errors.from && <p id="from-error" class="field-error">{errors.from}</p>}
      </div>
      <div class={showDates ? "" : "hidden"}>
        <label class="label" for="to">To (inclusive)</label>
        <input
          id="to"
          name="to"
          type="date"
          class={`input ${errors.to ? "input-invalid" : ""}`}
          value={props.to}
          aria-invalid={errors.to ? "true" : undefined}
          aria-describedby={errors.to ? "to-error" : undefined}
        />
        {errors.to && <p id="to-error" class="field-error">{errors.to}</p>}
      </div>
      <div class={showDates || pending ? "" : "hidden"}>
        <button type="submit" class="btn btn-secondary">Apply</button>
      </div>
      <p class="basis-full text-xs text-slate-500 sm:ml-auto sm:basis-auto sm:self-center">
        Dates and times in {props.timeZone}
      </p>
    </form>
  );
}
