/**
 * Admin actions on users, access keys and Bedrock credentials: validation, SQL, audit and cache invalidation in
 * one place, called by both the JSON API and the console.
 *
 * @example
 * ```ts
 * const admin = createAdmin({ db, hasher, encryptor, bus, log });
 * const user = await admin.createUser({ actor: "admin", clientAddress: "10.0.0.1" }, { email: "dev@example.com" });
 * const { key } = await admin.issueKey(ctx, user.id, { name: "laptop" }); // shown once
 * ```
 */
import type { Db } from "../db/db.ts";
import * as users from "../db/users.ts";
import * as keys from "../db/access_keys.ts";
import * as audit from "../db/audit.ts";
import { HttpError } from "../errors.ts";
import { generateAccessKey, type KeyHasher } from "../auth/access_key.ts";
import type { EventBus } from "../events.ts";
import {
  createKeyInput,
  createUserInput,
  parseBedrockCredentials,
  parseInput,
  refuseNulParameter,
  rotateKeyInput,
  updateUserInput,
} from "./schemas.ts";
import type { BedrockCredentialStore } from "./bedrock_credentials.ts";

/** Who is acting, for the audit log. */
export interface ActionContext {
  actor: string;
  clientAddress: string | null;
}

/** A key as the API shows it. */
export interface KeyView {
  id: string;
  user_id: string;
  name: string | null;
  key_prefix: string;
  status: "active" | "rotating" | "expired" | "revoked";
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  expires_at: Date | null;
  rotated_to: string | null;
  has_bedrock_credentials: boolean;
}

/** Creates the admin service. */
export function createAdmin(deps: {
  db: Db;
  hasher: KeyHasher;
  bus: EventBus;
  credentials: BedrockCredentialStore;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());

  // Written after a change is committed and announced on the bus: an audit write that fails must not leave
  // every replica serving a key already revoked in the database until its cache entry expires.
  const record = (ctx: ActionContext, action: string, targetType: string, targetId: string, details = {}) =>
    audit.insertAuditEvent(deps.db, {
      actor: ctx.actor,
      action,
      targetType,
      targetId,
      details,
      clientAddress: ctx.clientAddress,
    });

  const requireUser = async (id: string) => {
    const user = isUuid(id) ? await users.findUser(deps.db, id) : null;
    if (!user) throw notFound("user", id);
    return user;
  };
  const requireKey = async (id: string) => {
    const key = isUuid(id) ? await keys.findAccessKey(deps.db, id) : null;
    if (!key) throw notFound("access key", id);
    return key;
  };
  const keyView = (k: keys.AccessKeyRow): KeyView => ({
    id: k.id,
    user_id: k.user_id,
    name: k.name,
    key_prefix: k.key_prefix,
    status: keyStatus(k, now()),
    created_at: k.created_at,
    last_used_at: k.last_used_at,
    revoked_at: k.revoked_at,
    expires_at: k.expires_at,
    rotated_to: k.rotated_to,
    has_bedrock_credentials: k.has_bedrock_credentials,
  });

  const issue = async (userId: string, name: string | null) => {
    const { key, prefix } = generateAccessKey();
    const keyHash = await deps.hasher.hash(key);
    const row = await deps.db.begin((tx) =>
      keys.insertAccessKey(tx, { userId, keyHash, keyPrefix: prefix, name })
    );
    // Deleted since it was looked up (a delete running alongside): no key for it.
    if (!row) throw new HttpError(404, "not_found_error", `user ${userId} does not exist`);
    return { row, key };
  };

  return {
    async createUser(ctx: ActionContext, input: unknown) {
      const v = parseInput(createUserInput, input);
      try {
        const user = await users.insertUser(deps.db, {
          email: v.email,
          name: v.name ?? null,
          monthlyBudgetUsd: v.monthly_budget_usd ?? null,
          routingStrategy: v.routing_strategy ?? "plan_first",
        });
        await record(ctx, "user.create", "user", user.id, { email: user.email });
        return user;
      } catch (e) {
        if (isUniqueViolation(e)) {
          throw new HttpError(
            409,
            "conflict_error",
            `a user with email ${v.email} already exists`,
            {},
            "email",
          );
        }
        throw e;
      }
    },

    listUsers(opts: { search?: string; limit: number; offset: number; status?: "active" | "inactive" }) {
      refuseNulParameter("q", opts.search);
      // Composed as stored (names NFC, addresses NFKC, the same for any accented letter): a search typed with
      // combining accents finds them too. Not NFKC: a name typed in full-width letters is stored so.
      return users.listUsers(deps.db, { ...opts, search: opts.search?.normalize("NFC") });
    },

    getUser: requireUser,

    async getUserWithKeys(id: string) {
      const user = await requireUser(id);
      const list = await keys.listAccessKeysOfUser(deps.db, id);
      return { ...user, access_keys: list.map(keyView) };
    },

    async updateUser(ctx: ActionContext, id: string, input: unknown) {
      const current = await requireUser(id);
      const v = parseInput(updateUserInput, input);
      // Nothing to change: answered with the user as it is, with no update time bumped and no audit row.
      if (Object.values(v).every((value) => value === undefined)) return current;
      const updated = await users.updateUser(deps.db, id, {
        name: v.name === undefined ? undefined : v.name,
        monthlyBudgetUsd: v.monthly_budget_usd === undefined ? undefined : v.monthly_budget_usd,
        routingStrategy: v.routing_strategy,
        isActive: v.is_active,
      });
      if (!updated) throw new HttpError(404, "not_found_error", `user ${id} does not exist`);
      deps.bus.publish({ type: "user_changed", userId: id });
      await record(ctx, "user.update", "user", id, v);
      return updated;
    },

    async deleteUser(ctx: ActionContext, id: string) {
      await requireUser(id);
      const deleted = await deps.db.begin((tx) => users.softDeleteUser(tx, id));
      if (!deleted) throw new HttpError(404, "not_found_error", `user ${id} does not exist`);
      deps.bus.publish({ type: "user_changed", userId: id });
      await record(ctx, "user.delete", "user", id);
    },

    async issueKey(ctx: ActionContext, userId: string, input: unknown) {
      const user = await requireUser(userId);
      const v = parseInput(createKeyInput, input ?? {});
      const { row, key } = await issue(user.id, v.name ?? null);
      await record(ctx, "access_key.create", "access_key", row.id, {
        key_prefix: row.key_prefix,
        user_id: userId,
      });
      return { id: row.id, key, key_prefix: row.key_prefix, name: row.name, created_at: row.created_at };
    },

    async listKeys(userId: string) {
      await requireUser(userId);
      return (await keys.listAccessKeysOfUser(deps.db, userId)).map(keyView);
    },

    async getKey(id: string) {
      return keyView(await requireKey(id));
    },

    async revokeKey(ctx: ActionContext, id: string) {
      await requireKey(id);
      const revoked = await keys.revokeAccessKey(deps.db, id);
      // Revoking a revoked key changes nothing: answered as done, but neither broadcast nor audited again.
      if (revoked!.changed) {
        deps.bus.publish({ type: "key_changed", accessKeyId: id });
        await record(ctx, "access_key.revoke", "access_key", id);
      }
      return keyView(revoked!.row);
    },

    async rotateKey(ctx: ActionContext, id: string, input: unknown) {
      const old = await requireKey(id);
      // The body is checked first: a malformed call is told so whatever state the key is in.
      const v = parseInput(rotateKeyInput, input ?? {});
      const replacement = old.rotated_to ? await keys.findAccessKey(deps.db, old.rotated_to) : null;
      refuseRotation(old, now(), replacement);
      const grace = v.grace_seconds ?? 300;
      const { row, key } = await issue(old.user_id, old.name);
      // Credentials are sealed to the old key's id: re-seal them for the new key rather than copy ciphertext.
      await deps.credentials.copy(old.id, row.id);
      const expiresAt = await keys.markRotated(
        deps.db,
        old.id,
        row.id,
        new Date(now().getTime() + grace * 1000),
      );
      if (!expiresAt) {
        // Another rotation (or a revocation) won the race since the check above: withdraw the key issued here,
        // never shown to anyone, so only one replacement stays active.
        await keys.deleteUnissuedAccessKey(deps.db, row.id);
        deps.credentials.forget(row.id);
        const current = await keys.findAccessKey(deps.db, id);
        if (current) {
          const next = current.rotated_to ? await keys.findAccessKey(deps.db, current.rotated_to) : null;
          refuseRotation(current, now(), next);
        }
        throw new HttpError(
          409,
          "conflict_error",
          `access key ${id} changed during rotation; reload and retry`,
        );
      }
      deps.bus.publish({ type: "key_changed", accessKeyId: id });
      await record(ctx, "access_key.rotate", "access_key", id, {
        new_access_key_id: row.id,
        grace_seconds: grace,
      });
      const fresh = await keys.findAccessKey(deps.db, row.id);
      return {
        id: row.id,
        key,
        key_prefix: row.key_prefix,
        name: row.name,
        created_at: row.created_at,
        has_bedrock_credentials: fresh?.has_bedrock_credentials ?? false,
        previous_key: { id: old.id, expires_at: expiresAt },
      };
    },

    async putBedrockCredentials(ctx: ActionContext, accessKeyId: string, input: unknown) {
      const key = await requireKey(accessKeyId);
      const status = keyStatus(key, now());
      if (status === "revoked" || status === "expired") {
        // Such a key can never be used again: a secret stored for it would only be one more to protect.
        throw new HttpError(
          409,
          "conflict_error",
          `access key ${accessKeyId} is ${status}; Bedrock credentials can be set only on a live key`,
        );
      }
      if (status === "rotating") {
        // Credentials were copied to the replacement when the key was rotated; set here, they would end with
        // the grace and leave the key that stays without them (a page opened before the rotation does this).
        const instead = key.rotated_to
          ? `set them on its replacement, access key ${key.rotated_to}`
          : "set them on the key that replaces it";
        throw new HttpError(
          409,
          "conflict_error",
          `access key ${accessKeyId} is rotating and stops working at ${key.expires_at!.toISOString()}; ` +
            `${instead}, which keeps working after that`,
        );
      }
      const v = parseBedrockCredentials(input);
      const described = await deps.credentials.put(accessKeyId, v);
      deps.bus.publish({ type: "bedrock_credentials_changed", accessKeyId });
      await record(ctx, "bedrock_key.put", "access_key", accessKeyId, {
        kind: described.kind,
        region: described.region,
      });
      return described;
    },

    async getBedrockCredentials(accessKeyId: string) {
      await requireKey(accessKeyId);
      const d = await deps.credentials.describe(accessKeyId);
      if (!d) {
        throw new HttpError(404, "not_found_error", `access key ${accessKeyId} has no Bedrock credentials`);
      }
      return d;
    },

    async deleteBedrockCredentials(ctx: ActionContext, accessKeyId: string) {
      await requireKey(accessKeyId);
      if (!(await deps.credentials.remove(accessKeyId))) {
        throw new HttpError(404, "not_found_error", `access key ${accessKeyId} has no Bedrock credentials`);
      }
      deps.bus.publish({ type: "bedrock_credentials_changed", accessKeyId });
      await record(ctx, "bedrock_key.delete", "access_key", accessKeyId);
    },

    listAudit(opts: { limit: number; offset: number }) {
      return audit.listAuditEvents(deps.db, opts);
    },

    recordAudit: record,
  };
}

/** The admin service's type. */
export type Admin = ReturnType<typeof createAdmin>;

/**
 * Throws 409 unless `k` can be rotated. A key already rotating is refused rather than rotated again: a second
 * replacement would orphan the first (still active, held by whoever received it), and the grace already
 * running cannot be extended without letting a leaked key live longer.
 */
function refuseRotation(k: keys.AccessKeyRow, now: Date, replacement: keys.AccessKeyRow | null): void {
  const status = keyStatus(k, now);
  if (status === "revoked" || status === "expired") {
    throw new HttpError(
      409,
      "conflict_error",
      `access key ${k.id} is ${status}; only a live key can be rotated`,
    );
  }
  if (status === "rotating" || k.rotated_to) {
    const until = k.expires_at ? ` and keeps working until ${k.expires_at.toISOString()}` : "";
    const by = k.rotated_to ? `access key ${k.rotated_to}` : "another key";
    const gone = replacement === null || keyStatus(replacement, now) === "revoked" ||
      keyStatus(replacement, now) === "expired";
    if (gone) {
      // Pointing at a replacement that can no longer be rotated would send the caller in a circle.
      throw new HttpError(
        409,
        "conflict_error",
        `access key ${k.id} is already rotating${until}, and its replacement (${by}) no longer works; ` +
          `issue a new key for the user (POST /api/users/${k.user_id}/access-keys), or revoke ${k.id} to stop ` +
          `it now`,
      );
    }
    const next = `rotate ${k.rotated_to} instead`;
    throw new HttpError(
      409,
      "conflict_error",
      `access key ${k.id} is already rotating: it was replaced by ${by}${until}; ${next}, ` +
        `or revoke ${k.id} to stop it now`,
    );
  }
}

/** A key's status at `now`. */
export function keyStatus(
  k: { revoked_at: Date | null; deleted_at?: Date | null; is_active: boolean; expires_at: Date | null },
  now: Date,
): KeyView["status"] {
  if (k.revoked_at || k.deleted_at || !k.is_active) return "revoked";
  if (k.expires_at) return k.expires_at.getTime() <= now.getTime() ? "expired" : "rotating";
  return "active";
}

/** 404 for an id that names nothing; one that cannot be an id is said to be so, and cut short, not echoed whole. */
function notFound(what: string, id: string): HttpError {
  if (isUuid(id)) return new HttpError(404, "not_found_error", `${what} ${id} does not exist`);
  const shown = JSON.stringify(id.length > 64 ? `${id.slice(0, 64)}…` : id);
  return new HttpError(404, "not_found_error", `${what} ${shown} does not exist: ids are UUIDs`);
}

function isUuid(id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === "23505" || /duplicate key value/.test(err?.message ?? "");
}
