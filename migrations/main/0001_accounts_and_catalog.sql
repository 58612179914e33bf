-- The main database: accounts, sessions and the catalog.
-- Written in the dialect SQLite and PostgreSQL share: BIGINT for every integer,
-- TEXT for strings, times as milliseconds since the Unix epoch (sqlx's Any driver
-- carries no date types), ids allocated by the application from `counters`.

-- Monotonic counters for ids, advanced with one conditional UPDATE ... RETURNING.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL CHECK (value >= 0)
);
INSERT INTO counters (name, value) VALUES ('user', 0), ('product', 0);

CREATE TABLE users (
    id            BIGINT PRIMARY KEY CHECK (id > 0),
    -- Stored lower-cased, so uniqueness is case-insensitive.
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('buyer', 'seller', 'admin')),
    -- PHC string (argon2id, salt and parameters included).
    password_hash TEXT NOT NULL,
    -- Sign-in throttling: consecutive failures, and the time before which another
    -- attempt is refused without checking the password.
    failed_sign_ins           BIGINT NOT NULL DEFAULT 0,
    sign_in_blocked_until_ms  BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);

-- One row per signed-in browser or API client. Only a SHA-256 of the token is
-- stored, so a leaked database does not leak usable sessions.
CREATE TABLE sessions (
    token_sha256  TEXT PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);

CREATE TABLE products (
    id             BIGINT PRIMARY KEY CHECK (id > 0),
    seller_id      BIGINT NOT NULL REFERENCES users (id),
    title          TEXT NOT NULL,
    description    TEXT NOT NULL,
    price_cents    BIGINT NOT NULL CHECK (price_cents > 0),
    inventory_mode TEXT NOT NULL CHECK (inventory_mode IN ('on_order', 'on_payment', 'reserve')),
    -- Optimistic concurrency: every edit names the version it read and bumps it.
    version        BIGINT NOT NULL CHECK (version > 0),
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);
CREATE INDEX products_by_seller ON products (seller_id, id);

-- Stock per product. The CHECKs make the database itself refuse a negative count
-- or a drift of the invariant `available + reserved + sold = received`.
CREATE TABLE stock (
    product_id BIGINT PRIMARY KEY REFERENCES products (id),
    available  BIGINT NOT NULL CHECK (available >= 0),
    reserved   BIGINT NOT NULL CHECK (reserved >= 0),
    sold       BIGINT NOT NULL CHECK (sold >= 0),
    received   BIGINT NOT NULL CHECK (received >= 0),
    CHECK (available + reserved + sold = received)
);
