-- The seller index (DESIGN.md, failure mode 9): a seller-keyed copy of every
-- order's summary, so a seller's order list is one indexed read here instead of a
-- scan of every shard. Written only by the seller-index job handler (upsert if the
-- version is newer) and by `server rebuild-seller-index`.
CREATE TABLE seller_orders (
    order_id      BIGINT PRIMARY KEY,
    seller_id     BIGINT NOT NULL,
    status        TEXT NOT NULL,
    version       BIGINT NOT NULL,
    -- JSON: shop::orders::SellerOrder, exactly as the shard produced it.
    summary       TEXT NOT NULL,
    indexed_at_ms BIGINT NOT NULL
);
CREATE INDEX seller_orders_by_seller ON seller_orders (seller_id, order_id);
CREATE INDEX seller_orders_by_seller_status ON seller_orders (seller_id, status, order_id);
