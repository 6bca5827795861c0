-- The messaging outbox (src/platform/messaging/outbox.rs): messages written in the same
-- transaction as the changes they announce, published to the broker by the relay after
-- commit. Applied by the outbox before first use (idempotent: sqlx's migrator, which owns
-- migrations/*.sql, does not read this directory).
CREATE TABLE IF NOT EXISTS messaging_outbox (
    id           BIGSERIAL PRIMARY KEY,
    stream       TEXT        NOT NULL,
    message_id   TEXT        NOT NULL,
    subject      TEXT        NOT NULL,
    headers      TEXT        NOT NULL,
    payload      BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    -- Failed publishing attempts, the last one's error, and when the relay gave up on the
    -- row (after Outbox::MAX_ATTEMPTS, or at once for a row that can never be published).
    attempts     INTEGER     NOT NULL DEFAULT 0,
    last_error   TEXT,
    parked_at    TIMESTAMPTZ,
    UNIQUE (stream, message_id)
);

-- Tables created before these columns existed.
ALTER TABLE messaging_outbox ADD COLUMN IF NOT EXISTS attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messaging_outbox ADD COLUMN IF NOT EXISTS last_error TEXT;
ALTER TABLE messaging_outbox ADD COLUMN IF NOT EXISTS parked_at TIMESTAMPTZ;

DROP INDEX IF EXISTS messaging_outbox_unpublished;
CREATE INDEX IF NOT EXISTS messaging_outbox_pending
    ON messaging_outbox (stream, id) WHERE published_at IS NULL AND parked_at IS NULL;
