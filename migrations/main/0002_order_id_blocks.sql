-- Order id sequence numbers, handed out in blocks (issue 3, DESIGN.md mode 9).
-- A server takes a block with one conditional UPDATE ... RETURNING, so blocks never
-- overlap across servers or restarts; ids left unused in a block when a server
-- stops are simply skipped. Sequences start at 10^12 so every id has 19 digits.
CREATE TABLE id_blocks (
    name          TEXT PRIMARY KEY,
    next_sequence BIGINT NOT NULL CHECK (next_sequence >= 1000000000000)
);
INSERT INTO id_blocks (name, next_sequence) VALUES ('order', 1000000000000);
