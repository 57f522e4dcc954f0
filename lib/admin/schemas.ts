/**
 * Input schemas for admin actions, shared by the JSON API and the console's forms so both refuse the same
 * input with the same messages.
 */
import { z } from "zod";
import { HttpError } from "../errors.ts";

// Control and format characters (ESC, BEL, zero-width space, bidi overrides) are invisible or move the
// terminal's cursor: in an address or a name they make two entries look the same, or a log line lie. A name
// keeps the zero-width joiner and non-joiner, which Persian and Indic names and emoji sequences are written with.
const INVISIBLE = /[\p{Cc}\p{Cf}]/u;
const INVISIBLE_IN_NAME = /[\p{Cc}\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/u;
const INVISIBLE_MESSAGE =
  "contains a control or invisible character (such as a zero-width space); type it plainly";

// NFKC before the uniqueness check: "dév" typed with a combining accent, or in full-width letters, is the same
// address as the precomposed ASCII one, and must find the same user rather than make a second.
const email = z.string({
  error: (issue) =>
    issue.input === undefined
      ? "missing; expected an email address such as dev@example.com"
      : "expected a string",
}).refine((v) => !INVISIBLE.test(v.trim()), INVISIBLE_MESSAGE)
  .transform((v) => v.normalize("NFKC").trim().toLowerCase())
  .pipe(
    z.string().max(254, "too long (max 254)")
      .regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, "expected an email address such as dev@example.com"),
  );
const name = z.string({ error: "expected a string" })
  .refine((v) => !INVISIBLE_IN_NAME.test(v.trim()), INVISIBLE_MESSAGE)
  .transform((v) => v.normalize("NFC").trim())
  .pipe(z.string().max(200, "too long (max 200 characters)"));
// Stored as numeric(12,2), which would round 0.004 to 0 (a budget refusing all Bedrock use) and 12.345 to 12.35:
// refuse what it cannot hold exactly instead. The 10,000,000 cap is well inside its 9,999,999,999.99.
const budget = z.number({ error: "expected a number of US dollars" }).finite().min(0, "must not be negative")
  .max(10_000_000, "unreasonably large (max 10,000,000)")
  .refine(
    (v) => Number(v.toFixed(2)) === v,
    "at most 2 decimal places expected: cents are the smallest unit (e.g. 12.34)",
  );
const strategy = z.enum(["plan_first", "bedrock_only"], { error: "expected plan_first or bedrock_only" });
const region = z.string({ error: "expected a string" }).trim().regex(
  /^[a-z]{2}(-[a-z]+)+-\d$/,
  "expected an AWS region such as us-east-1",
);

/** `POST /api/users`. */
export const createUserInput = z.object({
  email,
  name: name.nullish(),
  monthly_budget_usd: budget.nullish(),
  routing_strategy: strategy.optional(),
}).strict();

/** `PATCH /api/users/:id`. */
export const updateUserInput = z.object({
  name: name.nullish(),
  monthly_budget_usd: budget.nullish(),
  routing_strategy: strategy.optional(),
  is_active: z.boolean({ error: "expected true or false" }).optional(),
}).strict();

/** `POST /api/users/:id/access-keys`. */
export const createKeyInput = z.object({ name: name.nullish() }).strict();

/** `POST /api/access-keys/:id/rotate`. */
export const rotateKeyInput = z.object({
  grace_seconds: z.number({ error: "expected a number of seconds" }).int("expected whole seconds").min(
    0,
    "must not be negative",
  )
    .max(30 * 86400, "at most 30 days (2592000)").optional(),
}).strict();

/** `PUT /api/access-keys/:id/bedrock-key`: IAM keys or a Bedrock API key. */
export const bedrockCredentialsInput = z.union([
  z.object({
    aws_access_key_id: z.string({ error: "expected a string" }).trim().regex(
      /^(AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,124}$/,
      "expected an AWS access key id such as AKIA…",
    ),
    aws_secret_access_key: z.string({ error: "expected a string" }).trim().min(
      16,
      "too short for an AWS secret key",
    )
      .max(256, "too long for an AWS secret key (at most 256 characters; they are 40)"),
    aws_session_token: z.string({ error: "expected a string" }).trim()
      .max(4096, "too long for an AWS session token (at most 4096 characters)").nullish(),
    region: region.nullish(),
  }).strict(),
  z.object({
    bedrock_api_key: z.string({ error: "expected a string" }).trim().min(
      16,
      "too short for a Bedrock API key: expected the key the Bedrock console generates " +
        "(ABSK… long-term, or bedrock-api-key-… short-term)",
    )
      .max(4096, "too long for a Bedrock API key (at most 4096 characters)"),
    region: region.nullish(),
  }).strict(),
], { error: "expected either aws_access_key_id + aws_secret_access_key, or bedrock_api_key" });

const IAM_FIELDS = ["aws_access_key_id", "aws_secret_access_key", "aws_session_token"];

/**
 * Parses `PUT /api/access-keys/:id/bedrock-key`. Input holding both kinds is refused before any field is
 * checked: the union would judge it against whichever kind had fewer problems, and name a field of that kind
 * (a short `bedrock_api_key` beside IAM keys) when the mistake is sending both. A field set to null counts as
 * not sent.
 */
export function parseBedrockCredentials(input: unknown): z.infer<typeof bedrockCredentialsInput> {
  if (input !== null && typeof input === "object" && !Array.isArray(input)) {
    const fields = input as Record<string, unknown>;
    const given = (field: string) => Object.hasOwn(fields, field) && fields[field] != null;
    const iam = IAM_FIELDS.filter(given);
    if (iam.length > 0 && given("bedrock_api_key")) {
      const sent = `${iam.join(", ")} and bedrock_api_key`;
      throw new HttpError(
        400,
        "invalid_request_error",
        `${sent} sent together: Bedrock credentials are one kind or the other; send either ` +
          "aws_access_key_id + aws_secret_access_key (and aws_session_token for temporary keys) or " +
          "bedrock_api_key alone, with region optional for either",
      );
    }
  }
  return parseInput(bedrockCredentialsInput, input);
}

/**
 * A 400 for input that fails its schema. `field` and the message name the first field at fault, which is what the
 * JSON API answers with; `fields` holds every invalid field's message (by dotted path, without the `field: `
 * prefix), so a form can show each beside its own field rather than one at a time.
 */
export class InvalidInputError extends HttpError {
  constructor(message: string, field: string | undefined, readonly fields: Readonly<Record<string, string>>) {
    super(400, "invalid_request_error", message, {}, field);
  }
}

/** Parses input against a schema, or throws an {@link InvalidInputError} naming the first field at fault. */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown): T {
  refuseNul(input, []);
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = pickIssues(result.error.issues, input);
  const fields: Record<string, string> = {};
  for (const issue of issues) {
    const path = issue.path.join(".");
    if (path && !Object.hasOwn(fields, path)) fields[path] = issueMessage(issue);
  }
  const first = issues[0];
  if (first.code === "unrecognized_keys" && first.path.length === 0) {
    // The unknown field is the one at fault; what the object takes is what the caller needs to know.
    const field = String((first as { keys: string[] }).keys[0]).slice(0, 64);
    const known = schema instanceof z.ZodObject
      ? `; expected only ${Object.keys(schema.shape).join(", ")}`
      : "";
    throw new InvalidInputError(`${issueMessage(first)}${known}`, field, fields);
  }
  const field = first.path.join(".");
  const message = issueMessage(first);
  throw new InvalidInputError(field ? `${field}: ${message}` : message, field || undefined, fields);
}

function issueMessage(issue: Issue): string {
  if (issue.code !== "unrecognized_keys") return issue.message;
  // Named, not echoed: a body of thousands of made-up keys must not come back as a megabyte of error.
  const unknown = (issue as { keys: string[] }).keys;
  const cut = (k: string) => JSON.stringify(k.length > 64 ? `${k.slice(0, 64)}…` : k);
  const more = unknown.length > 3 ? ` and ${unknown.length - 3} more` : "";
  return `unknown field ${unknown.slice(0, 3).map(cut).join(", ")}${more}`;
}

type Issue = z.core.$ZodIssue;
/** The issues to report, the one to name first at the head. */
function pickIssues(issues: Issue[], input: unknown): Issue[] {
  // For a union, zod reports "no branch matched"; the branch the caller evidently meant is more useful. A
  // branch is meant only if it knows some field of the input: with none (`{}`), the union's own message says
  // what is expected better than the first missing field of whichever branch has the fewest issues.
  const first = issues[0];
  if (first.code === "invalid_union" && "errors" in first) {
    const inputKeys = input && typeof input === "object" ? Object.keys(input) : [];
    const branches = (first as unknown as { errors: Issue[][] }).errors;
    const meant = branches.filter((b) => {
      const unknown = new Set(
        b.flatMap((i) => i.code === "unrecognized_keys" && i.path.length === 0 ? i.keys : []),
      );
      return inputKeys.some((k) => !unknown.has(k));
    });
    const best = meant.map((b) => b.filter((i) => i.code !== "unrecognized_keys"))
      .sort((a, b) => a.length - b.length)[0];
    if (best && best.length > 0 && best.length < 3) {
      return best;
    }
  }
  return issues;
}

/**
 * Throws a 400 when a string parameter holds a NUL character, which PostgreSQL cannot store in text (it would
 * fail the query as a 500). For values that do not pass through `parseInput`, such as search parameters.
 */
export function refuseNulParameter(field: string, value: string | undefined): void {
  if (value?.includes("\u0000")) throw nulError([field]);
}

/**
 * Finds the first string (or object key) of `value` holding a NUL character and throws a 400 naming its path.
 * Iterative, so a deeply nested body cannot overflow the stack.
 */
function refuseNul(value: unknown, path: string[]): void {
  // Each entry links to its parent and the path is spelt out only for the error: copying it at every level
  // made a body nested 60,000 deep (120 KB) take 14 s of the event loop, and 500,000 deep, minutes.
  type Entry = { v: unknown; name: string | null; parent: Entry | null };
  const pathOf = (e: Entry | null, last?: string): string[] => {
    const names: string[] = last === undefined ? [] : [last];
    for (let at = e; at !== null; at = at.parent) if (at.name !== null) names.push(at.name);
    return [...path, ...names.reverse()];
  };
  const stack: Entry[] = [{ v: value, name: null, parent: null }];
  while (stack.length > 0) {
    const entry = stack.pop()!;
    const v = entry.v;
    if (typeof v === "string") {
      if (v.includes("\u0000")) throw nulError(pathOf(entry));
    } else if (typeof v === "object" && v !== null) {
      // Pushed last-first so the first field in the input is the one reported.
      const children = Object.entries(v);
      for (let i = children.length - 1; i >= 0; i--) {
        const [k, child] = children[i];
        const name = k.replaceAll("\u0000", "\\u0000");
        if (name !== k) throw nulError(pathOf(entry, name));
        stack.push({ v: child, name, parent: entry });
      }
    }
  }
}

function nulError(path: string[]): HttpError {
  const field = path.join(".");
  const message = "must not contain NUL characters (\\u0000), which cannot be stored; expected plain text";
  return new HttpError(
    400,
    "invalid_request_error",
    field ? `${field}: ${message}` : message,
    {},
    field || undefined,
  );
}
