-- A persistent job queue. Each job has a natural key (`snapshot:<digest>`), so
-- enqueuing the same work twice is a no-op (INSERT ... ON CONFLICT DO NOTHING).
-- A worker claims a due job with a conditional UPDATE that takes a lease
-- (`locked_until_ms`); a worker that dies mid-job lets the lease lapse and the job
-- runs again. Handlers are idempotent, so at-least-once is enough.
CREATE TABLE jobs (
    key             TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    run_at_ms       BIGINT NOT NULL,
    locked_until_ms BIGINT,
    last_error      TEXT,
    created_at_ms   BIGINT NOT NULL,
    finished_at_ms  BIGINT
);
CREATE INDEX jobs_due ON jobs (state, run_at_ms);

-- Products as sold, stored once per distinct content (DESIGN.md, failure mode 2):
-- the key is the MD5 digest of the canonical content (shop/src/snapshot.rs).
CREATE TABLE snapshots (
    digest        TEXT PRIMARY KEY,
    product_id    BIGINT NOT NULL,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL,
    price_cents   BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
