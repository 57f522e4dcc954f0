-- The seed's five tables with their names, columns, indexes and foreign keys, extended with what the product
-- needs, plus the audit log. Plain, version-neutral PostgreSQL (15 to 18).

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL,
    hashed_password text,
    name text,
    is_active boolean NOT NULL DEFAULT true,
    monthly_budget_usd numeric(12, 2) CHECK (monthly_budget_usd IS NULL OR monthly_budget_usd >= 0),
    routing_strategy text NOT NULL DEFAULT 'plan_first'
        CHECK (routing_strategy IN ('plan_first', 'bedrock_only')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
-- An email belongs to one live user; a soft-deleted user's email may be used again.
CREATE UNIQUE INDEX users_email_live_key ON users (lower(email)) WHERE deleted_at IS NULL;
CREATE INDEX ix_users_created_at ON users (created_at);

CREATE TABLE access_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key_hash text NOT NULL,
    key_prefix text NOT NULL,
    name text,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    revoked_at timestamptz,
    -- Set when the key was rotated: it keeps working until then (the grace period).
    expires_at timestamptz,
    rotated_to uuid REFERENCES access_keys (id) ON DELETE SET NULL,
    last_used_at timestamptz
);
CREATE UNIQUE INDEX ix_access_keys_key_hash ON access_keys (key_hash);
CREATE INDEX ix_access_keys_user_id ON access_keys (user_id);

CREATE TABLE bedrock_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    access_key_id uuid NOT NULL UNIQUE REFERENCES access_keys (id) ON DELETE CASCADE,
    credential_kind text NOT NULL CHECK (credential_kind IN ('iam', 'api_key')),
    -- The seed's column names. The whole credential set (key id, secret, session token, or API key) is sealed
    -- in one envelope in encrypted_secret_key so one decryption serves a request; encrypted_access_key stays
    -- for the seed's schema and is NULL.
    encrypted_access_key bytea,
    encrypted_secret_key bytea NOT NULL,
    encryption_scheme text NOT NULL,
    encryption_iv bytea NOT NULL,
    encrypted_data_key bytea,
    kms_key_id text,
    key_tail text NOT NULL,
    region text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE token_usages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    access_key_id uuid REFERENCES access_keys (id) ON DELETE SET NULL,
    user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    request_id text NOT NULL,
    message_id text,
    model text,
    model_served text,
    stream boolean NOT NULL DEFAULT false,
    input_tokens integer NOT NULL DEFAULT 0,
    output_tokens integer NOT NULL DEFAULT 0,
    cache_read_input_tokens integer NOT NULL DEFAULT 0,
    cache_creation_input_tokens integer NOT NULL DEFAULT 0,
    provider text NOT NULL CHECK (provider IN ('anthropic', 'bedrock')),
    is_fallback boolean NOT NULL DEFAULT false,
    fallback_reason text,
    status_code integer NOT NULL,
    error_type text,
    stop_reason text,
    latency_ms integer NOT NULL,
    time_to_first_byte_ms integer,
    cost_usd numeric(14, 6),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- A replayed write (spool replay, retry after an ambiguous commit) must not count twice.
CREATE UNIQUE INDEX ix_token_usages_request_id ON token_usages (request_id);
CREATE INDEX ix_token_usages_access_key_id ON token_usages (access_key_id);
CREATE INDEX ix_token_usages_created_at ON token_usages (created_at);
CREATE INDEX ix_token_usages_user_id_created_at ON token_usages (user_id, created_at);

CREATE TABLE usage_aggregates (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    access_key_id uuid NOT NULL REFERENCES access_keys (id) ON DELETE CASCADE,
    user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    time_bucket timestamptz NOT NULL,
    granularity text NOT NULL CHECK (granularity IN ('hour', 'day')),
    provider text NOT NULL CHECK (provider IN ('anthropic', 'bedrock')),
    model text NOT NULL DEFAULT '',
    is_fallback boolean NOT NULL DEFAULT false,
    request_count bigint NOT NULL DEFAULT 0,
    error_count bigint NOT NULL DEFAULT 0,
    total_input_tokens bigint NOT NULL DEFAULT 0,
    total_output_tokens bigint NOT NULL DEFAULT 0,
    total_cache_read_tokens bigint NOT NULL DEFAULT 0,
    total_cache_creation_tokens bigint NOT NULL DEFAULT 0,
    total_cost_usd numeric(16, 6) NOT NULL DEFAULT 0,
    total_latency_ms bigint NOT NULL DEFAULT 0
);
-- The seed's unique (access_key_id, time_bucket), widened to the new dimensions.
CREATE UNIQUE INDEX ix_usage_aggregates_key_bucket ON usage_aggregates
    (access_key_id, time_bucket, granularity, provider, model, is_fallback);
CREATE INDEX ix_usage_aggregates_bucket ON usage_aggregates (granularity, time_bucket);

CREATE TABLE audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor text NOT NULL,
    action text NOT NULL,
    target_type text,
    target_id text,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    client_address text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_audit_events_created_at ON audit_events (created_at);
