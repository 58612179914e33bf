-- An order shard: the orders of the buyers whose id suffix falls in this shard's
-- range, with their lines and the checkout tokens that create them.

-- One row per opened checkout page. Consuming it (consumed_at_ms set from NULL)
-- and inserting the order happen in one transaction on this shard, so one token
-- yields at most one order. The token is stored as issued (unlike session tokens)
-- because the checkout page must render it again after a reload or the Back
-- button; it only places the order its own buyer asked for, once, within 30 minutes.
CREATE TABLE checkout_tokens (
    order_id       BIGINT PRIMARY KEY,
    token          TEXT NOT NULL UNIQUE,
    buyer_id       BIGINT NOT NULL,
    -- The lines the checkout was opened for, as JSON: [{"product_id", "quantity"}].
    lines          TEXT NOT NULL,
    expires_at_ms  BIGINT NOT NULL,
    consumed_at_ms BIGINT,
    created_at_ms  BIGINT NOT NULL
);
CREATE INDEX checkout_tokens_by_expiry ON checkout_tokens (expires_at_ms);

CREATE TABLE orders (
    -- The pre-allocated 19-digit id from the checkout page.
    id                 BIGINT PRIMARY KEY,
    buyer_id           BIGINT NOT NULL,
    seller_id          BIGINT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'shipped', 'completed', 'cancelled')),
    total_cents        BIGINT NOT NULL CHECK (total_cents >= 0),
    -- JSON: {"name", "line1", "line2", "city", "postal_code", "country"}.
    shipping_address   TEXT NOT NULL,
    hold_expires_at_ms BIGINT,
    created_at_ms      BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL
);
CREATE INDEX orders_by_buyer ON orders (buyer_id, id);

CREATE TABLE order_lines (
    order_id         BIGINT NOT NULL REFERENCES orders (id),
    line_no          BIGINT NOT NULL,
    product_id       BIGINT NOT NULL,
    seller_id        BIGINT NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents > 0),
    -- Filled by the snapshot issue's digest; the content-addressed snapshot row lives in main.
    snapshot_digest  TEXT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
