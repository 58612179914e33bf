-- Money (DESIGN.md, failure mode 6): accounts with balances, and an append-only
-- double-entry journal that explains every balance. The triggers that refuse
-- UPDATE and DELETE on the journal differ by backend and are installed at start-up
-- by the dialect module (shop/src/db/dialect.rs).

-- 'wallet:<user id>' for every user, 'escrow' for money held between payment and
-- receipt, 'external:deposits' for money that entered from outside (top-ups),
-- which is the only account that may go below zero.
CREATE TABLE ledger_accounts (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('wallet', 'escrow', 'external')),
    user_id        BIGINT,
    balance_cents  BIGINT NOT NULL DEFAULT 0,
    created_at_ms  BIGINT NOT NULL,
    CHECK (balance_cents >= 0 OR kind = 'external')
);

-- One row per movement of money. The id is the movement's idempotency key
-- ('topup:…', 'pay:<order>', 'refund:<order>', 'release:<order>'): inserting it
-- is the gate, so the same transfer twice moves money once.
CREATE TABLE ledger_transfers (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('top_up', 'payment', 'refund', 'release')),
    amount_cents   BIGINT NOT NULL CHECK (amount_cents > 0),
    order_id       BIGINT,
    created_at_ms  BIGINT NOT NULL
);

-- Two entries per transfer, summing to zero: the debit (negative) and the credit.
CREATE TABLE ledger_entries (
    transfer_id          TEXT NOT NULL REFERENCES ledger_transfers (id),
    account_id           TEXT NOT NULL REFERENCES ledger_accounts (id),
    amount_cents         BIGINT NOT NULL CHECK (amount_cents <> 0),
    balance_after_cents  BIGINT NOT NULL,
    created_at_ms        BIGINT NOT NULL,
    PRIMARY KEY (transfer_id, account_id)
);
CREATE INDEX ledger_entries_by_account ON ledger_entries (account_id, created_at_ms, transfer_id);

INSERT INTO ledger_accounts (id, kind, user_id, balance_cents, created_at_ms) VALUES ('escrow', 'escrow', NULL, 0, 0);
INSERT INTO ledger_accounts (id, kind, user_id, balance_cents, created_at_ms) VALUES ('external:deposits', 'external', NULL, 0, 0);

-- The durable record of how far each order's money has got. Paying spans this
-- database (stock, journal) and the order's shard; each step is a local
-- transaction that moves this row forward with a conditional UPDATE, and the
-- recovery worker finishes whatever a crash interrupted.
--   charged           money in escrow and stock settled; the shard not yet told
--   paid              the shard says paid
--   voided            charged, but the order had been cancelled: money and stock given back
--   refund_requested  the buyer cancels a paid order: the shard is being told
--   refunded          escrow → buyer, stock given back
--   release_requested the buyer confirmed receipt: the shard is being told
--   released          escrow → seller
CREATE TABLE payments (
    order_id       BIGINT PRIMARY KEY,
    buyer_id       BIGINT NOT NULL,
    seller_id      BIGINT NOT NULL,
    amount_cents   BIGINT NOT NULL CHECK (amount_cents >= 0),
    state          TEXT NOT NULL CHECK (state IN ('charged', 'paid', 'voided', 'refund_requested', 'refunded', 'release_requested', 'released')),
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);
CREATE INDEX payments_in_flight ON payments (state, updated_at_ms);
