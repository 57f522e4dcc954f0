/**
 * Bedrock spend this month against the user's monthly budget, as a bar. Drawn with SVG (widths as SVG
 * attributes, colours as classes) so the Content-Security-Policy needs no inline styles.
 */
import { fmtUsd } from "./format.ts";

/** The bar, or "no budget" when the user has none. */
export function BudgetBar({ spent, budget }: { spent: number; budget: number | null }) {
  if (budget === null) {
    return (
      <div class="text-xs text-slate-500" data-budget="none">
        {fmtUsd(spent)} <span class="text-slate-400">· no budget</span>
      </div>
    );
  }
  const ratio = budget > 0 ? spent / budget : spent > 0 ? 1 : 0;
  // A sliver for any spend at all, so "a little" never looks like "nothing".
  const pct = spent > 0 ? Math.max(1.5, Math.min(100, ratio * 100)) : 0;
  const fill = ratio >= 1 ? "fill-rose-500" : ratio >= 0.8 ? "fill-amber-500" : "fill-emerald-500";
  return (
    <div class="min-w-32" data-budget={ratio.toFixed(4)}>
      <svg
        class="block h-2 w-full overflow-hidden rounded-full"
        role="img"
        aria-label={`${Math.round(ratio * 100)}% of budget used`}
      >
        <rect width="100%" height="100%" class="fill-slate-200" />
        <rect width={`${pct}%`} height="100%" class={fill} />
      </svg>
      <div class="mt-1 text-xs tabular-nums text-slate-500">
        {fmtUsd(spent)} of {fmtUsd(budget)}
      </div>
    </div>
  );
}
