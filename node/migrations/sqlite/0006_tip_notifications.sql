-- Tip notifications: a notification may carry details of what caused it (for a tip, the
-- Payments `Tipped` event as JSON), and the node keeps how far it has read a contract's events.
ALTER TABLE notifications ADD COLUMN detail TEXT;

-- One row per chain follower: the next block it reads on `chain_id` for `contract`.
CREATE TABLE chain_cursors (
    follower    TEXT NOT NULL,
    chain_id    INTEGER NOT NULL,
    contract    BLOB NOT NULL,
    next_block  INTEGER NOT NULL,
    PRIMARY KEY (follower, chain_id, contract)
);
