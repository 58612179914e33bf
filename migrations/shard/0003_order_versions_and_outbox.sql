-- The seller index (DESIGN.md, failure mode 9) is fed from here. Every write to an
-- order bumps its version and, in the same transaction, appends the order's new
-- summary to the outbox. A relay moves outbox rows into main's job queue and then
-- deletes them; the index keeps a summary only if its version is newer than what
-- it holds, so redelivery and reordering cannot move it backwards.
ALTER TABLE orders ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

CREATE TABLE order_outbox (
    order_id      BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    -- JSON: the order summary at this version (shop::orders::SellerOrder).
    payload       TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (order_id, version)
);
CREATE INDEX order_outbox_by_age ON order_outbox (created_at_ms);
