-- dchat indexer: a mirror of one node's rooms, members and messages, with search indexes.
-- Forward-only: never edit once released; add a new file.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- How far the message follower has read a source's log. Written in the same transaction as
-- the rows it read, so a restart resumes exactly after what was stored.
CREATE TABLE cursors (
    source     TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Rooms as the node reports them (kind decides who may read; count is the node's, for
-- reconcile).
CREATE TABLE rooms (
    id         BYTEA PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('group', 'channel', 'direct')),
    name       TEXT NOT NULL,
    policy     TEXT NOT NULL,
    node_count BIGINT NOT NULL DEFAULT 0,
    synced_at  BIGINT NOT NULL
);

-- Current members: the access list every search is checked against.
CREATE TABLE members (
    room    BYTEA NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    address BYTEA NOT NULL,
    role    TEXT NOT NULL,
    PRIMARY KEY (room, address)
);
CREATE INDEX members_address ON members (address);

-- Every message of the log (all kinds, for counts and reconcile). Only public channel text is
-- kept as text; encrypted rooms keep no payload at all.
CREATE TABLE messages (
    id           BYTEA PRIMARY KEY,
    seq          BIGINT NOT NULL,
    room         BYTEA NOT NULL,
    sender       BYTEA NOT NULL,
    kind         INTEGER NOT NULL,
    lamport      BIGINT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    body         TEXT,
    tsv          TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', coalesce(body, ''))) STORED
);
CREATE INDEX messages_room_seq ON messages (room, seq);
CREATE INDEX messages_tsv ON messages USING GIN (tsv);

-- Keyed search tokens of messages in encrypted rooms, uploaded by their senders.
CREATE TABLE message_tokens (
    room       BYTEA NOT NULL,
    token      BYTEA NOT NULL,
    message_id BYTEA NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    PRIMARY KEY (room, token, message_id)
);
CREATE INDEX message_tokens_message ON message_tokens (message_id);

-- Users: every address seen as a member or sender, with a display name when a profile feed
-- gives one. Searched fuzzily (trigrams) on the lowercase hex address and the name.
CREATE TABLE users (
    address    BYTEA PRIMARY KEY,
    address_hex TEXT NOT NULL,
    name       TEXT,
    verified   BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at BIGINT NOT NULL
);
CREATE INDEX users_address_trgm ON users USING GIN (address_hex gin_trgm_ops);
CREATE INDEX users_name_trgm ON users USING GIN (name gin_trgm_ops);
