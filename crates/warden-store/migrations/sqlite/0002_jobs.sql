-- Jobs: a call's work that may outlive the call and the process (PRODUCT.md §5, §12).
-- Written before the first host is reached; times are Unix milliseconds.
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    -- Who started it (identity/client name): the only caller that sees it.
    owner       TEXT NOT NULL,
    tool        TEXT NOT NULL,
    summary     TEXT NOT NULL,   -- the command (masked), for people
    hosts       TEXT NOT NULL,   -- JSON array of host ids, in target order
    spooled     INTEGER NOT NULL, -- 1: commands keep a spool on each host
    -- The process watching it (audit instance); another takes over once it is gone.
    instance    TEXT NOT NULL,
    -- running | succeeded | failed | cancelled | timed_out | lost | outcome_unknown
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    deadline_at INTEGER NOT NULL,
    finished_at INTEGER,
    result      TEXT             -- JSON: the final answer, masked
);
CREATE INDEX jobs_by_owner ON jobs (owner, created_at);
CREATE INDEX jobs_by_state ON jobs (state, instance);
