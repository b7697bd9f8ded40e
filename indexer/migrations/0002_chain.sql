-- dchat indexer: events of dchat's contracts (MessageAnchor, Payments, NodeRegistry), followed
-- block by block with reorg detection. Everything written for a block carries its number, so
-- rolling back an orphaned block is a delete of everything at or above that number.

-- Where the chain follower stands: the next block to read, and the chain it follows.
CREATE TABLE chain_cursor (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    chain_id   BIGINT NOT NULL,
    next_block BIGINT NOT NULL,
    reorgs     BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);

-- The recent blocks read (number, hash, parent): the window reorgs are detected in.
CREATE TABLE chain_blocks (
    number      BIGINT PRIMARY KEY,
    hash        BYTEA NOT NULL,
    parent_hash BYTEA NOT NULL,
    timestamp   BIGINT NOT NULL
);

-- Every event of the followed contracts, decoded. `room`, `message_hash` and `account` are the
-- event's main subjects (when it has them) for lookups; `data` holds every field.
CREATE TABLE chain_events (
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    block_hash   BYTEA NOT NULL,
    tx_hash      BYTEA NOT NULL,
    contract     BYTEA NOT NULL,
    event        TEXT NOT NULL,
    room         BYTEA,
    message_hash BYTEA,
    account      BYTEA,
    data         JSONB NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
CREATE INDEX chain_events_event ON chain_events (event, block_number);
CREATE INDEX chain_events_room ON chain_events (room) WHERE room IS NOT NULL;
CREATE INDEX chain_events_message ON chain_events (message_hash) WHERE message_hash IS NOT NULL;
CREATE INDEX chain_events_account ON chain_events (account) WHERE account IS NOT NULL;

-- Anchored batches (MessageAnchor.Anchored), by batch id and by root.
CREATE TABLE anchors (
    batch_id     BIGINT PRIMARY KEY,
    root         BYTEA NOT NULL UNIQUE,
    anchorer     BYTEA NOT NULL,
    count        BIGINT NOT NULL,
    block_number BIGINT NOT NULL,
    tx_hash      BYTEA NOT NULL
);
CREATE INDEX anchors_block ON anchors (block_number);
