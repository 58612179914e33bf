-- The archive (DESIGN.md, failure mode 8): finished orders moved out of the shards.
-- The tables mirror a shard's, so an order is read back here by the same code as
-- on its shard; the archive job copies an order here, verifies the copy, and only
-- then deletes it from the shard.
CREATE TABLE orders (
    id                 BIGINT PRIMARY KEY,
    buyer_id           BIGINT NOT NULL,
    seller_id          BIGINT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('completed', 'cancelled')),
    total_cents        BIGINT NOT NULL CHECK (total_cents >= 0),
    shipping_address   TEXT NOT NULL,
    hold_expires_at_ms BIGINT,
    created_at_ms      BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL,
    -- The shard's version when copied: the shard row is deleted only at this version.
    version            BIGINT NOT NULL,
    -- SHA-256 of the order as read on its shard (summary and waybill history): the
    -- copy is verified against it before the shard row goes.
    digest             TEXT NOT NULL,
    archived_at_ms     BIGINT NOT NULL,
    -- 1 from the copy until the move is finished (gone from the shard, marked in the
    -- seller index). Every archive pass first finishes the rows left at 1 by a crash.
    settling           BIGINT NOT NULL DEFAULT 1
);
-- "Order history": one indexed range read per page, newest first.
CREATE INDEX orders_by_buyer ON orders (buyer_id, id);
CREATE INDEX orders_settling ON orders (id) WHERE settling = 1;

CREATE TABLE order_lines (
    order_id         BIGINT NOT NULL REFERENCES orders (id),
    line_no          BIGINT NOT NULL,
    product_id       BIGINT NOT NULL,
    seller_id        BIGINT NOT NULL,
    quantity         BIGINT NOT NULL,
    unit_price_cents BIGINT NOT NULL,
    snapshot_digest  TEXT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE shipping_records (
    order_id         BIGINT PRIMARY KEY REFERENCES orders (id),
    carrier          TEXT NOT NULL,
    tracking_number  TEXT NOT NULL,
    version          BIGINT NOT NULL,
    updated_at_ms    BIGINT NOT NULL,
    updated_by       BIGINT NOT NULL
);

CREATE TABLE shipping_history (
    order_id         BIGINT NOT NULL REFERENCES orders (id),
    version          BIGINT NOT NULL,
    carrier          TEXT NOT NULL,
    tracking_number  TEXT NOT NULL,
    changed_at_ms    BIGINT NOT NULL,
    changed_by       BIGINT NOT NULL,
    PRIMARY KEY (order_id, version)
);
