-- Waybills (DESIGN.md, failure mode 5). One current record per order, carrying a
-- version: a change names the version it read, and a conditional UPDATE on that
-- version lets exactly one of several racing or retried changes through. Every
-- accepted change is also appended to the history, in the same transaction.
CREATE TABLE shipping_records (
    order_id         BIGINT PRIMARY KEY REFERENCES orders (id),
    carrier          TEXT NOT NULL,
    tracking_number  TEXT NOT NULL,
    version          BIGINT NOT NULL CHECK (version >= 1),
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
