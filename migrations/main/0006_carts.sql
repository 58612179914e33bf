-- Carts (DESIGN.md, failure mode 3). A signed-in shopper's cart is owned by
-- 'user:<id>'; a server-side guest cart (clients without script, API clients) by
-- 'guest:<sha256 of its token>'. The guest's own browser cart lives in LocalStorage.
CREATE TABLE guest_carts (
    token_sha256     TEXT PRIMARY KEY,
    created_at_ms    BIGINT NOT NULL,
    -- A job deletes guest carts unused for 30 days (configurable).
    last_used_at_ms  BIGINT NOT NULL
);
CREATE INDEX guest_carts_by_last_use ON guest_carts (last_used_at_ms);

CREATE TABLE cart_lines (
    owner        TEXT NOT NULL,
    product_id   BIGINT NOT NULL REFERENCES products (id),
    quantity     BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    added_at_ms  BIGINT NOT NULL,
    -- The unit price the shopper saw when setting the line; the cart page says
    -- when the product's price has changed since.
    price_seen_cents BIGINT,
    PRIMARY KEY (owner, product_id)
);

-- The merges an account's cart has absorbed. Inserting the row is the gate: of
-- concurrent merges with one id, exactly one inserts it and applies the merge in
-- the same transaction; the others find it and return the cart as it is.
CREATE TABLE cart_merges (
    user_id        BIGINT NOT NULL,
    merge_id       TEXT NOT NULL,
    applied_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (user_id, merge_id)
);
