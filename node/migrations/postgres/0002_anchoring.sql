-- Which messages this node's own clients posted (those it anchors on chain).
ALTER TABLE messages ADD COLUMN local BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_local ON messages (local, seq);

-- Merkle batches of local message ids; batch_id, tx_hash and block are set once on chain.
CREATE TABLE anchor_batches (
    root        BYTEA PRIMARY KEY,
    -- The chain and MessageAnchor contract this batch is (to be) anchored in.
    chain_id    BIGINT NOT NULL,
    contract    BYTEA NOT NULL,
    count       BIGINT NOT NULL,
    batch_id    BIGINT,
    tx_hash     BYTEA,
    block       BIGINT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE anchored (
    message_id  BYTEA PRIMARY KEY,
    root        BYTEA NOT NULL REFERENCES anchor_batches (root)
);
CREATE INDEX anchored_root ON anchored (root);
