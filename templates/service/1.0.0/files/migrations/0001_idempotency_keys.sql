-- Idempotency-Key claims and stored responses (src/platform/idempotency/postgres.rs).
-- A row is in flight while status IS NULL, completed otherwise; an expired row may be reclaimed.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT        NOT NULL,
    lock_token  TEXT,
    status      INTEGER,
    headers     TEXT,
    body        BYTEA,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idempotency_keys_expires_at ON idempotency_keys (expires_at);
