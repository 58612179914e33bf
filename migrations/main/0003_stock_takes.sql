-- Stock taken for an order: one row per (order, product), written in the same
-- transaction as the conditional stock UPDATE it explains. Keyed by order id, so a
-- retried or concurrent placement of the same order takes its stock exactly once
-- (the second INSERT ... ON CONFLICT DO NOTHING inserts nothing, and then nothing
-- is decremented). `on_payment` products are only checked at order time: no row.
CREATE TABLE stock_takes (
    order_id           BIGINT NOT NULL,
    product_id         BIGINT NOT NULL REFERENCES products (id),
    quantity           BIGINT NOT NULL CHECK (quantity > 0),
    -- held: counted in stock.reserved until paid or released;
    -- sold: counted in stock.sold; released: given back to available.
    state              TEXT NOT NULL CHECK (state IN ('held', 'sold', 'released')),
    -- When the recovery worker must look at this take; NULL once settled.
    -- held: the hold's expiry (then the unpaid order is cancelled and the units
    --       released). sold at order time: when its checkout expires (by then the
    --       order must exist; if a crash lost it, the units are released).
    check_at_ms        BIGINT,
    created_at_ms      BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX stock_takes_to_check ON stock_takes (check_at_ms);
