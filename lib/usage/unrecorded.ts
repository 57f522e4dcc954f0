/**
 * Usage rows that did not reach the database by the time the process exited. They stay in the spool under the
 * data dir for the next start, but a container's disk can go with its task (Fargate), so they are also written
 * to the log, one line each, and `deno task replay-usage <file>…` loads either form back: spool files as they
 * are, or an export of those log lines (CloudWatch adds a timestamp before each JSON object; that is skipped).
 * Rows are written once per request id, so replaying something already recorded adds nothing.
 *
 * @example
 * ```ts
 * const { records, skipped } = parseUsageLines('{"msg":"usage row not recorded","record":{…}}\n');
 * ```
 */
import type { UsageRecord } from "../db/usage.ts";

/** The message of a log line that carries one unrecorded usage row in its `record` field. */
export const UNRECORDED_MESSAGE = "usage row not recorded";

/** The usage records in `text` (spool lines or log lines), once per request id; `skipped` counts the rest. */
export function parseUsageLines(text: string): { records: UsageRecord[]; skipped: number } {
  const byId = new Map<string, UsageRecord>();
  let skipped = 0;
  for (const line of text.split("\n")) {
    const start = line.indexOf("{");
    if (start < 0) {
      if (line.trim() !== "") skipped++;
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(line.slice(start));
    } catch {
      skipped++;
      continue;
    }
    const v = value as { msg?: unknown; record?: unknown };
    const candidate = v.msg === UNRECORDED_MESSAGE ? v.record : value;
    if (isUsageRecord(candidate)) byId.set(candidate.requestId, candidate);
    else skipped++;
  }
  return { records: [...byId.values()], skipped };
}

function isUsageRecord(v: unknown): v is UsageRecord {
  if (!v || typeof v !== "object") return false;
  const r = v as Record<string, unknown>;
  return typeof r.requestId === "string" && typeof r.accessKeyId === "string" &&
    typeof r.userId === "string" &&
    typeof r.createdAt === "string" && !Number.isNaN(Date.parse(r.createdAt)) &&
    (r.provider === "anthropic" || r.provider === "bedrock") && typeof r.statusCode === "number" &&
    typeof r.inputTokens === "number" && typeof r.outputTokens === "number";
}

/**
 * Writes the usage rows found in `paths` (spool files, exported log lines) through `recorder`, which inserts each
 * request id once, flushing it after each file when it can (so the rows waiting are one file's, not all of
 * them). Resolves to what was read; throws naming the file when one cannot be read.
 */
export async function replayUsageFiles(
  paths: string[],
  recorder: { record(r: UsageRecord): void; flush?(): Promise<void> },
): Promise<{ files: number; rows: number; skippedLines: number }> {
  const seen = new Set<string>();
  let skippedLines = 0;
  for (const path of paths) {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new Error(`cannot read ${path}: ${(e as Error).message}`);
    }
    const { records, skipped } = parseUsageLines(text);
    skippedLines += skipped;
    for (const r of records) {
      if (seen.has(r.requestId)) continue;
      seen.add(r.requestId);
      recorder.record(r);
    }
    await recorder.flush?.();
  }
  return { files: paths.length, rows: seen.size, skippedLines };
}
