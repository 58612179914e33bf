-- Sign-in throttling keyed by (email, client address), not by account: someone
-- guessing from one address slows only their own guesses at that email, never the
-- owner signing in from elsewhere, and an unknown email is throttled exactly like
-- a known one, so the answers reveal nothing. Failures decay with time.
-- `key` is the SHA-256 of the lowercased email and the address.
CREATE TABLE sign_in_throttle (
    key              TEXT PRIMARY KEY,
    failures         BIGINT NOT NULL CHECK (failures >= 0),
    last_failure_ms  BIGINT NOT NULL,
    blocked_until_ms BIGINT NOT NULL
);
CREATE INDEX sign_in_throttle_by_last_failure ON sign_in_throttle (last_failure_ms);
