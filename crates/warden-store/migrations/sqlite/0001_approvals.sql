-- Approvals decided by a human (PRODUCT.md §7). Times are Unix milliseconds.
CREATE TABLE approvals (
    id           TEXT PRIMARY KEY,
    -- SHA-256 of the secret half of the token the asking caller holds.
    secret_hash  TEXT NOT NULL,
    -- Who asked (identity/client name): only that caller may see or use the approval.
    caller       TEXT NOT NULL,
    client       TEXT NOT NULL,
    identity     TEXT NOT NULL,
    tool         TEXT NOT NULL,
    hosts        TEXT NOT NULL,   -- JSON array of host ids
    summary      TEXT NOT NULL,   -- one line for people
    request      TEXT NOT NULL,   -- JSON: masked arguments, commands, paths, class
    -- The plan digest of the call: the approved call runs only if it still matches.
    digest       TEXT NOT NULL,
    -- pending | approved | denied | expired | used
    state        TEXT NOT NULL,
    rule         TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    decided_at   INTEGER,
    decided_by   TEXT,
    reason       TEXT
);
CREATE INDEX approvals_by_state ON approvals (state, expires_at);
CREATE INDEX approvals_by_caller ON approvals (caller, state);
