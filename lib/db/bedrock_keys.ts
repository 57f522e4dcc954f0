/**
 * SQL for `bedrock_keys`: per-access-key Bedrock credentials, stored only as envelopes.
 */
import type { Queryable } from "./db.ts";
import { sql } from "./sql.ts";

/** The sealed credential record of one access key. */
export interface BedrockKeyRow {
  id: string;
  access_key_id: string;
  credential_kind: "iam" | "api_key";
  encrypted_secret_key: Uint8Array;
  encryption_scheme: string;
  encryption_iv: Uint8Array;
  encrypted_data_key: Uint8Array | null;
  kms_key_id: string | null;
  key_tail: string;
  region: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS =
  sql`id, access_key_id, credential_kind, encrypted_secret_key, encryption_scheme, encryption_iv,
  encrypted_data_key, kms_key_id, key_tail, region, created_at, updated_at`;

/** Inserts or replaces the credentials of an access key. */
export async function upsertBedrockKey(
  q: Queryable,
  r: {
    accessKeyId: string;
    kind: "iam" | "api_key";
    ciphertext: Uint8Array;
    scheme: string;
    iv: Uint8Array;
    encryptedDataKey: Uint8Array | null;
    kmsKeyId: string | null;
    keyTail: string;
    region: string | null;
  },
): Promise<BedrockKeyRow> {
  const rows = await q.query<BedrockKeyRow>(sql`
    INSERT INTO bedrock_keys (access_key_id, credential_kind, encrypted_secret_key, encryption_scheme, encryption_iv,
      encrypted_data_key, kms_key_id, key_tail, region)
    VALUES (${r.accessKeyId}, ${r.kind}, ${r.ciphertext}, ${r.scheme}, ${r.iv}, ${r.encryptedDataKey}, ${r.kmsKeyId},
      ${r.keyTail}, ${r.region})
    ON CONFLICT (access_key_id) DO UPDATE SET credential_kind = EXCLUDED.credential_kind,
      encrypted_secret_key = EXCLUDED.encrypted_secret_key, encryption_scheme = EXCLUDED.encryption_scheme,
      encryption_iv = EXCLUDED.encryption_iv, encrypted_data_key = EXCLUDED.encrypted_data_key,
      kms_key_id = EXCLUDED.kms_key_id, key_tail = EXCLUDED.key_tail, region = EXCLUDED.region, updated_at = now()
    RETURNING ${COLUMNS}`);
  return normalise(rows[0]);
}

/** The credentials record of an access key, or null. */
export async function findBedrockKey(q: Queryable, accessKeyId: string): Promise<BedrockKeyRow | null> {
  const rows = await q.query<BedrockKeyRow>(
    sql`SELECT ${COLUMNS} FROM bedrock_keys WHERE access_key_id = ${accessKeyId}`,
  );
  return rows[0] ? normalise(rows[0]) : null;
}

/** Removes the credentials of an access key; false when there were none. */
export async function deleteBedrockKey(q: Queryable, accessKeyId: string): Promise<boolean> {
  const rows = await q.query(sql`DELETE FROM bedrock_keys WHERE access_key_id = ${accessKeyId} RETURNING id`);
  return rows.length > 0;
}

// postgres.js returns bytea as Buffer, PGlite as Uint8Array: hand out plain Uint8Arrays from both.
function normalise(row: BedrockKeyRow): BedrockKeyRow {
  const bytes = (v: Uint8Array | null) => (v === null ? null : new Uint8Array(v));
  return {
    ...row,
    encrypted_secret_key: bytes(row.encrypted_secret_key)!,
    encryption_iv: bytes(row.encryption_iv)!,
    encrypted_data_key: bytes(row.encrypted_data_key),
  };
}
