/**
 * Cards: a titled section, and the dashboard's stat card (value, label, optional detail lines).
 */
import type { ComponentChildren } from "preact";

/** A white panel with an optional title row. */
export function Card(
  props: {
    title?: ComponentChildren;
    actions?: ComponentChildren;
    class?: string;
    children: ComponentChildren;
    id?: string;
  },
) {
  return (
    <section id={props.id} class={`card min-w-0 ${props.class ?? ""}`}>
      {(props.title || props.actions) && (
        <div class="mb-4 flex flex-wrap items-center justify-between gap-2">
          {props.title && <h2 class="text-base font-semibold text-slate-900">{props.title}</h2>}
          {props.actions && <div class="flex items-center gap-2">{props.actions}</div>}
        </div>
      )}
      {props.children}
    </section>
  );
}

/** One number with its label, and optional smaller lines under it. */
export function StatCard(
  props: {
    label: string;
    value: string;
    detail?: Array<[string, string]>;
    tone?: "default" | "warn" | "bad";
  },
) {
  const tone = props.tone === "bad"
    ? "text-rose-600"
    : props.tone === "warn"
    ? "text-amber-600"
    : "text-slate-900";
  return (
    <div class="card" data-stat={props.label}>
      <p class="text-xs font-medium uppercase tracking-wide text-slate-500">{props.label}</p>
      <p class={`mt-1 text-2xl font-semibold tabular-nums ${tone}`}>{props.value}</p>
      {props.detail && (
        <dl class="mt-2 grid grid-cols-2 gap-x-3 gap-y-0.5 text-xs text-slate-500">
          {props.detail.map(([k, v]) => (
            <>
              <dt class="truncate">{k}</dt>
              <dd class="text-right tabular-nums text-slate-700">{v}</dd>
            </>
          ))}
        </dl>
      )}
    </div>
  );
}

/** A two-column list of facts (label → value). */
export function Facts({ items }: { items: Array<[string, ComponentChildren]> }) {
  return (
    <dl class="grid grid-cols-1 gap-x-6 gap-y-3 text-sm sm:grid-cols-[max-content_1fr]">
      {items.map(([k, v]) => (
        <>
          <dt class="font-medium text-slate-500">{k}</dt>
          <dd class="-mt-2 min-w-0 break-words text-slate-900 sm:mt-0">{v}</dd>
        </>
      ))}
    </dl>
  );
}
