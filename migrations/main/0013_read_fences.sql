-- Read-your-writes (DESIGN.md, failure mode 7): per user and database role, the
-- primary's WAL position after that user's latest write there. A display read by
-- any of the user's sessions uses a replica only once it has replayed this far.
-- Kept in the primary, so it holds whichever server instance answers next, and
-- on every device the user is signed in on; a position only ever rises.
CREATE TABLE read_fences (
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     TEXT NOT NULL,
    position BIGINT NOT NULL CHECK (position >= 0),
    PRIMARY KEY (user_id, role)
);
