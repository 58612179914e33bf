-- Read-your-writes (DESIGN.md, failure mode 7): per session and database role,
-- the primary's WAL position after the session's latest write there. A display
-- read of that session uses a replica only once the replica has replayed this far.
-- Kept with the session (in the primary) so it holds whichever server instance
-- answers next; a position only ever rises.
CREATE TABLE session_fences (
    token_sha256 TEXT NOT NULL REFERENCES sessions (token_sha256) ON DELETE CASCADE,
    role         TEXT NOT NULL,
    position     BIGINT NOT NULL CHECK (position >= 0),
    PRIMARY KEY (token_sha256, role)
);
