/**
 * What an empty list or chart says instead: what is missing and what to do next.
 */
import type { ComponentChildren } from "preact";

/** An empty state with a title, an explanation and an optional next step. */
export function EmptyState(
  props: { title: string; children?: ComponentChildren; action?: ComponentChildren },
) {
  return (
    <div class="rounded-xl border border-dashed border-slate-300 px-6 py-10 text-center" data-empty-state>
      <svg
        viewBox="0 0 24 24"
        class="mx-auto size-10 fill-none stroke-slate-300"
        stroke-width="1.5"
        aria-hidden="true"
      >
        <path d="M3.75 9.776c.112-.017.227-.026.344-.026h15.812c.117 0 .232.009.344.026m-16.5 0a2.25 2.25 0 0 0-1.883 2.542l.857 6a2.25 2.25 0 0 0 2.227 1.932H19.05a2.25 2.25 0 0 0 2.227-1.932l.857-6a2.25 2.25 0 0 0-1.883-2.542m-16.5 0V6A2.25 2.25 0 0 1 6 3.75h3.879a1.5 1.5 0 0 1 1.06.44l2.122 2.12a1.5 1.5 0 0 0 1.06.44H18A2.25 2.25 0 0 1 20.25 9v.776" />
      </svg>
      <h3 class="mt-3 text-sm font-semibold text-slate-900">{props.title}</h3>
      {props.children && <div class="mx-auto mt-1 max-w-prose text-sm text-slate-500">{props.children}</div>}
      {props.action && <div class="mt-4 flex justify-center">{props.action}</div>}
    </div>
  );
}
