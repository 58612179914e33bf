-- Idempotency-Key (Stripe's semantics, API.md): a caller's key remembers the
-- request's fingerprint and, once it finishes, its response. Kept 24 hours; a
-- worker deletes expired keys.
CREATE TABLE idempotency_keys (
    caller_id      BIGINT NOT NULL,
    key            TEXT NOT NULL,
    -- SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint    TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('running', 'done')),
    status         BIGINT,
    content_type   TEXT,
    body           TEXT,
    started_at_ms  BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (caller_id, key)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at_ms);
