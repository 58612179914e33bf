-- The order shard range map (DESIGN.md, failure mode 9): shard k holds the buyers
-- whose id suffix is at least start_suffix of row k and below that of row k + 1.
-- Written once, on the first start; a configuration with another number of
-- shards is refused instead of silently re-routing existing buyers.
CREATE TABLE shard_ranges (
    shard BIGINT PRIMARY KEY,
    start_suffix BIGINT NOT NULL UNIQUE CHECK (start_suffix >= 0 AND start_suffix < 1000000)
);
