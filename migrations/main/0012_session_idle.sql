-- Sessions end after a stretch without use (the idle timeout) as well as at
-- their absolute expiry. `last_seen_at_ms` is refreshed at most once a minute.
ALTER TABLE sessions ADD COLUMN last_seen_at_ms BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at_ms = created_at_ms;
