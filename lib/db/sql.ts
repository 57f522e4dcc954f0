/**
 * A tiny SQL fragment builder: tagged templates whose interpolations become bound parameters (`$1`, `$2`, …),
 * and whose nested fragments are spliced in. This is what lets every query in `lib/db/` run unchanged on
 * postgres.js and on PGlite, with no string concatenation of values ever.
 *
 * @example
 * ```ts
 * const where = email ? sql`AND email = ${email}` : sql``;
 * const q = sql`SELECT id FROM users WHERE deleted_at IS NULL ${where} LIMIT ${10}`;
 * q.text;   // "SELECT id FROM users WHERE deleted_at IS NULL AND email = $1 LIMIT $2"
 * q.values; // [email, 10]
 * ```
 */

/** A piece of SQL with its parameters; compose with `${fragment}` inside another `sql` template. */
export class SqlFragment {
  constructor(readonly strings: readonly string[], readonly values: readonly unknown[]) {}

  /** Renders to PostgreSQL text with `$n` placeholders and the flat list of bound values. */
  build(): { text: string; values: unknown[] } {
    const values: unknown[] = [];
    const text = this.render(values);
    return { text, values };
  }

  private render(values: unknown[]): string {
    let text = this.strings[0];
    for (let i = 0; i < this.values.length; i++) {
      const v = this.values[i];
      if (v instanceof SqlFragment) text += v.render(values);
      else {
        values.push(v);
        text += `$${values.length}`;
      }
      text += this.strings[i + 1];
    }
    return text;
  }
}

/** Builds a {@link SqlFragment}; interpolated values are always bound, never spliced into the text. */
export function sql(strings: TemplateStringsArray, ...values: unknown[]): SqlFragment {
  return new SqlFragment(strings, values);
}

/** Joins fragments with a separator fragment, e.g. `join(conditions, sql` AND `)`. */
export function join(parts: readonly SqlFragment[], separator: SqlFragment): SqlFragment {
  if (parts.length === 0) return sql``;
  const strings: string[] = [""];
  const values: unknown[] = [];
  parts.forEach((part, i) => {
    if (i > 0) {
      values.push(separator);
      strings.push("");
    }
    values.push(part);
    strings.push("");
  });
  return new SqlFragment(strings, values);
}

/** Trusted SQL text (identifiers, keywords chosen by code, never by input). */
export function raw(text: string): SqlFragment {
  return new SqlFragment([text], []);
}
