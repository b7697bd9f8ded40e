-- Which messages this node's own clients posted (those it anchors on chain).
ALTER TABLE messages ADD COLUMN local INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_local ON messages (local, seq);

-- Merkle batches of local message ids; batch_id, tx_hash and block are set once on chain.
CREATE TABLE anchor_batches (
    root        BLOB PRIMARY KEY,
    -- The chain and MessageAnchor contract this batch is (to be) anchored in.
    chain_id    INTEGER NOT NULL,
    contract    BLOB NOT NULL,
    count       INTEGER NOT NULL,
    batch_id    INTEGER,
    tx_hash     BLOB,
    block       INTEGER,
    created_at  INTEGER NOT NULL
);

CREATE TABLE anchored (
    message_id  BLOB PRIMARY KEY,
    root        BLOB NOT NULL REFERENCES anchor_batches (root)
);
CREATE INDEX anchored_root ON anchored (root);
