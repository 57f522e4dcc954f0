/**
 * Per-access-key Bedrock credentials: sealed in an envelope (KMS or local AES-256-GCM) bound to the access key
 * id, described without secrets, and opened for the proxy through a cache (`PROXY_BEDROCK_KEY_CACHE_TTL`).
 *
 * @example
 * ```ts
 * const store = createBedrockCredentialStore({ db, encryptor, ttlSeconds: 300, bus });
 * await store.put(keyId, { bedrock_api_key: "ABSK…", region: "us-east-1" });
 * (await store.load(keyId))?.credentials.kind; // "api_key"
 * ```
 */
import { z } from "zod";
import type { Db } from "../db/db.ts";
import * as rows from "../db/bedrock_keys.ts";
import { decodeJson, type Encryptor, type EnvelopeScheme } from "../crypto/mod.ts";
import { encodeJson } from "../crypto/mod.ts";
import type { EventBus } from "../events.ts";
import { isDatabaseUnavailable } from "../errors.ts";
import { TimedOut, within } from "../within.ts";

/** Opened credentials, as the Bedrock client takes them. */
export type BedrockSecret =
  | { kind: "iam"; accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  | { kind: "api_key"; apiKey: string };

/** What the API and console may show: no secret, only a masked tail. */
export interface CredentialDescription {
  kind: "iam" | "api_key";
  region: string | null;
  key_tail: string;
  encryption: string;
  created_at: Date;
  updated_at: Date;
}

/** Input accepted by `put` (already validated by the admin schema). */
export type CredentialInput =
  | {
    aws_access_key_id: string;
    aws_secret_access_key: string;
    aws_session_token?: string | null;
    region?: string | null;
  }
  | { bedrock_api_key: string; region?: string | null };

const sealed = z.union([
  z.object({
    kind: z.literal("iam"),
    accessKeyId: z.string(),
    secretAccessKey: z.string(),
    sessionToken: z.string().optional(),
  }),
  z.object({ kind: z.literal("api_key"), apiKey: z.string() }),
]);

/** The store's interface. */
export interface BedrockCredentialStore {
  put(accessKeyId: string, input: CredentialInput): Promise<CredentialDescription>;
  describe(accessKeyId: string): Promise<CredentialDescription | null>;
  remove(accessKeyId: string): Promise<boolean>;
  /** Re-seals `from`'s credentials for `to` (rotation); no-op when `from` has none. */
  copy(from: string, to: string): Promise<void>;
  /** Opened credentials for the proxy, cached; null when the key has none. */
  load(accessKeyId: string): Promise<{ credentials: BedrockSecret; region: string | null } | null>;
  forget(accessKeyId: string): void;
  /**
   * Marks every cached credential expired (after missed invalidations): read again on next use, but still used
   * if the database fails or stalls then.
   */
  expireAll(): void;
}

/** Creates the store. */
export function createBedrockCredentialStore(deps: {
  db: Db;
  encryptor: Encryptor;
  ttlSeconds: number;
  bus: EventBus;
  now?: () => number;
  /** How long a first read of a key's credentials may take (default 10 s); past it the load rejects. */
  firstWaitMs?: number;
}): BedrockCredentialStore {
  const now = deps.now ?? Date.now;
  const cache = new Map<
    string,
    { value: { credentials: BedrockSecret; region: string | null } | null; at: number }
  >();
  // Bumped by every invalidation, so a load that read the row before a change committed and returns after its
  // event does not put the old credentials back into the cache for the whole TTL (see `load`).
  let generation = 0;
  const forget = (accessKeyId: string) => {
    generation++;
    cache.delete(accessKeyId);
  };
  deps.bus.subscribe((e) => {
    if (e.type === "bedrock_credentials_changed" || e.type === "key_changed") forget(e.accessKeyId);
  });

  const seal = async (accessKeyId: string, secret: BedrockSecret, region: string | null) => {
    const plaintext = encodeJson(secret);
    const envelope = await deps.encryptor.encrypt(plaintext, accessKeyId);
    plaintext.fill(0);
    const tailSource = secret.kind === "iam" ? secret.accessKeyId : secret.apiKey;
    return await rows.upsertBedrockKey(deps.db, {
      accessKeyId,
      kind: secret.kind,
      ciphertext: envelope.ciphertext,
      scheme: envelope.scheme,
      iv: envelope.iv,
      encryptedDataKey: envelope.encryptedDataKey,
      kmsKeyId: envelope.kmsKeyId,
      keyTail: tailSource.slice(-4),
      region,
    });
  };

  const open = async (row: rows.BedrockKeyRow): Promise<BedrockSecret> => {
    const plaintext = await deps.encryptor.decrypt({
      ciphertext: row.encrypted_secret_key,
      iv: row.encryption_iv,
      encryptedDataKey: row.encrypted_data_key,
      scheme: row.encryption_scheme as EnvelopeScheme,
      kmsKeyId: row.kms_key_id,
    }, row.access_key_id);
    try {
      return decodeJson(plaintext, (v) => sealed.parse(v)) as BedrockSecret;
    } finally {
      plaintext.fill(0);
    }
  };

  /** Reads and opens a key's credentials, caching them unless a change overtook the read. */
  const reload = async (accessKeyId: string) => {
    const read = async () => {
      const row = await rows.findBedrockKey(deps.db, accessKeyId);
      return row ? { credentials: await open(row), region: row.region } : null;
    };
    // Any invalidation during the read may concern this key: read once more, and if that is overtaken too,
    // answer without caching so the next load reads again. Changes are rare; the extra read costs little.
    let started = generation;
    let value = await read();
    if (generation !== started) {
      started = generation;
      value = await read();
    }
    if (generation === started) cache.set(accessKeyId, { value, at: now() });
    return value;
  };

  return {
    async put(accessKeyId, input) {
      const secret: BedrockSecret = "bedrock_api_key" in input
        ? { kind: "api_key", apiKey: input.bedrock_api_key }
        : {
          kind: "iam",
          accessKeyId: input.aws_access_key_id,
          secretAccessKey: input.aws_secret_access_key,
          ...(input.aws_session_token ? { sessionToken: input.aws_session_token } : {}),
        };
      const row = await seal(accessKeyId, secret, input.region ?? null);
      forget(accessKeyId);
      return describeRow(row);
    },
    async describe(accessKeyId) {
      const row = await rows.findBedrockKey(deps.db, accessKeyId);
      return row ? describeRow(row) : null;
    },
    async remove(accessKeyId) {
      const removed = await rows.deleteBedrockKey(deps.db, accessKeyId);
      forget(accessKeyId);
      return removed;
    },
    async copy(from, to) {
      const row = await rows.findBedrockKey(deps.db, from);
      if (!row) return;
      await seal(to, await open(row), row.region);
    },
    async load(accessKeyId) {
      const hit = cache.get(accessKeyId);
      if (hit && now() - hit.at < deps.ttlSeconds * 1000) return hit.value;
      if (hit) {
        // Past its TTL: read again, but a database that fails or stalls (an outage, a failover) must not end the
        // Bedrock fallback, the one route left when the Anthropic API is down too. What was opened stands in,
        // unless a change since dropped it (forget deletes the entry).
        try {
          return await within(STALE_WAIT_MS, reload(accessKeyId), "credentials read");
        } catch (e) {
          const known = cache.get(accessKeyId);
          if (known && (isDatabaseUnavailable(e) || e instanceof TimedOut)) return known.value;
          throw e;
        }
      }
      // Never read here: a stalled database must not hold the request (a fallback, the one route left) for as
      // long as the connection does; the caller answers without Bedrock (the Anthropic API's own answer, or 503).
      return await within(deps.firstWaitMs ?? FIRST_WAIT_MS, reload(accessKeyId), "credentials read");
    },
    forget,
    expireAll() {
      generation++;
      for (const entry of cache.values()) entry.at = -Infinity;
    },
  };
}

/** How long a load waits for the re-read of credentials it has opened before, before those stand in. */
const STALE_WAIT_MS = 1_000;
/** How long a load waits for the first read of a key's credentials (as for a key's own first lookup). */
const FIRST_WAIT_MS = 10_000;

function describeRow(row: rows.BedrockKeyRow): CredentialDescription {
  return {
    kind: row.credential_kind,
    region: row.region,
    key_tail: `…${row.key_tail}`,
    encryption: row.encryption_scheme,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}
