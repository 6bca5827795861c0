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
    UNIQUE (stream, message_id)
);

CREATE INDEX IF NOT EXISTS messaging_outbox_unpublished
    ON messaging_outbox (stream, id) WHERE published_at IS NULL;
