-- MessageAnchor now keys anchors by (anchorer, root) and has no batch ids: two accounts may
-- anchor the same root, each under its own address. The anchors table follows: one row per
-- Anchored event, keyed by its position in the chain, unique per (contract, anchorer, root).
-- Rows of the earlier contract (with batch ids) are dropped here; its Anchored events stay in
-- chain_events with their batch ids in `data`.
DROP TABLE anchors;
CREATE TABLE anchors (
    block_number BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    contract     BYTEA NOT NULL,
    anchorer     BYTEA NOT NULL,
    root         BYTEA NOT NULL,
    count        BIGINT NOT NULL,
    tx_hash      BYTEA NOT NULL,
    PRIMARY KEY (block_number, log_index),
    UNIQUE (contract, anchorer, root)
);
CREATE INDEX anchors_root ON anchors (root);
CREATE INDEX anchors_anchorer ON anchors (anchorer, block_number, log_index);
