/**
 * Tables that scroll sideways on phones instead of squeezing, and a pager for `limit`/`offset` lists.
 */
import type { ComponentChildren } from "preact";
import { fmtInt } from "./format.ts";
import { withQuery } from "./urls.ts";

/** A table with a header row; `children` are the `<tr>` rows. */
export function Table(
  props: {
    head: Array<string | [string, "right"]>;
    children: ComponentChildren;
    caption?: string;
    id?: string;
  },
) {
  return (
    <div class="-mx-4 overflow-x-auto sm:mx-0">
      <table id={props.id} class="data-table">
        {props.caption && <caption class="sr-only">{props.caption}</caption>}
        <thead>
          <tr>
            {props.head.map((h, i) =>
              typeof h === "string"
                ? <th key={i} scope="col">{h}</th>
                : <th key={i} scope="col" class="text-right">{h[0]}</th>
            )}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}

/** "Showing 51–100 of 340" with previous/next links that keep the other query parameters. */
export function Pager(
  props: {
    path: string;
    params: Record<string, string | undefined>;
    total: number;
    limit: number;
    offset: number;
  },
) {
  const { total, limit, offset } = props;
  if (total === 0) return null;
  const first = Math.min(offset + 1, total);
  const last = Math.min(offset + limit, total);
  const link = (o: number) =>
    withQuery(props.path, { ...props.params, offset: o === 0 ? undefined : String(o) });
  const prev = offset > 0 ? link(Math.max(0, offset - limit)) : null;
  const next = offset + limit < total ? link(offset + limit) : null;
  return (
    <nav
      aria-label="Pages"
      class="mt-4 flex flex-wrap items-center justify-between gap-3 text-sm text-slate-600"
    >
      <p>
        Showing{" "}
        <span class="font-medium">{fmtInt(first)}</span>–<span class="font-medium">{fmtInt(last)}</span> of
        {" "}
        <span class="font-medium">{fmtInt(total)}</span>
      </p>
      <div class="flex gap-2">
        {prev
          ? <a class="btn btn-secondary" href={prev} rel="prev">← Previous</a>
          : (
            <span class="btn btn-secondary pointer-events-none opacity-40" aria-disabled="true">
              ← Previous
            </span>
          )}
        {next
          ? <a class="btn btn-secondary" href={next} rel="next">Next →</a>
          : <span class="btn btn-secondary pointer-events-none opacity-40" aria-disabled="true">Next →</span>}
      </div>
    </nav>
  );
}
