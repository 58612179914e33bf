-- Top-ups stand in for a payment provider's deposits and are capped per user and
-- UTC day (day = epoch milliseconds / 86 400 000). The running total is changed
-- with one conditional UPDATE (`… WHERE total_cents + amount <= cap`) in the same
-- transaction as the deposit, so concurrent top-ups cannot pass the cap together.
CREATE TABLE top_up_days (
    user_id     BIGINT NOT NULL,
    day         BIGINT NOT NULL,
    total_cents BIGINT NOT NULL CHECK (total_cents >= 0),
    PRIMARY KEY (user_id, day)
);
