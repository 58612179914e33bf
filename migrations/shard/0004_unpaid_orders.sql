-- Abuse limits on unpaid orders (DESIGN.md, failure mode 4).
--
-- How many unpaid orders each buyer holds, kept in the same transaction as every
-- order write that enters or leaves `pending_payment`. Placing an order takes a
-- slot with one conditional UPDATE (`… WHERE unpaid < max`), so concurrent
-- orders of one buyer cannot overshoot the cap on either backend.
CREATE TABLE buyer_unpaid (
    buyer_id BIGINT PRIMARY KEY,
    unpaid   BIGINT NOT NULL CHECK (unpaid >= 0)
);
INSERT INTO buyer_unpaid (buyer_id, unpaid)
    SELECT buyer_id, COUNT(*) FROM orders WHERE status = 'pending_payment' GROUP BY buyer_id;

-- Every unpaid order lapses at its payment deadline, whatever its inventory mode;
-- orders from before this had a deadline only when they reserved stock, and lapse
-- one hold TTL after they were placed. The partial index holds unpaid orders only.
CREATE INDEX orders_unpaid_by_deadline ON orders (hold_expires_at_ms, created_at_ms) WHERE status = 'pending_payment';
-- Shipped orders complete by themselves after a while (escrow is not held forever).
CREATE INDEX orders_shipped_by_change ON orders (updated_at_ms) WHERE status = 'shipped';
