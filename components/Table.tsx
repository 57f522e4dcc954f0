/**
 * Tables that scroll sideways on phones instead of squeezing, a pager for `limit`/`offset` lists, and what a page
 * past the end of a list shows.
 */
import type { ComponentChildren } from "preact";
import { fmtInt } from "./format.ts";
import { withQuery } from "./urls.ts";
import { EmptyState } from "./EmptyState.tsx";

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

/** Where a list page is: its path and query, the matching total and the window shown. */
export interface PageProps {
  path: string;
  params: Record<string, string | undefined>;
  total: number;
  limit: number;
  offset: number;
}

/** "Showing 51–100 of 340" with previous/next links that keep the other query parameters. */
export function Pager(props: PageProps) {
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

/** The offset of the last page of a list of `total` items, `limit` a page. */
export function lastPageOffset(total: number, limit: number): number {
  return total <= 0 ? 0 : Math.floor((total - 1) / limit) * limit;
}

/**
 * What an empty page of a list that is not empty shows (an offset past the end, from an old link or a list that
 * shrank): that there are items, how many, and a link to the last page. "No matches" there would be untrue.
 */
export function PastTheEnd(
  props: PageProps & {
    /** What `total` counts, e.g. "users match". */
    counted: string;
  },
) {
  const last = lastPageOffset(props.total, props.limit);
  const href = withQuery(props.path, { ...props.params, offset: last === 0 ? undefined : String(last) });
  return (
    <EmptyState
      title="This page is past the end of the list"
      action={<a class="btn btn-secondary" href={href} rel="prev">← Go to the last page</a>}
    >
      <p data-past-the-end>
        {fmtInt(props.total)} {props.counted}, so there is nothing from number {fmtInt(props.offset + 1)} on.
      </p>
    </EmptyState>
  );
}
