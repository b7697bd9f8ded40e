-- The social layer: contacts, blocks, notification marks, mutes, settings and room read marks,
-- each a signed envelope of its author kept as received (contacts and blocks are replayed per
-- pair of wallets, the rest folded per author), plus what follows from them.
CREATE TABLE social_events (
    seq          BIGSERIAL PRIMARY KEY,
    id           BYTEA NOT NULL UNIQUE,
    author       BYTEA NOT NULL,
    kind         INTEGER NOT NULL,
    -- The other wallet (contact kinds), the room (read marks, mutes), or empty.
    subject      BYTEA NOT NULL,
    lamport      BIGINT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    envelope     BYTEA NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE INDEX social_events_author ON social_events (author, kind);
CREATE INDEX social_events_subject ON social_events (subject, kind);

-- The highest read mark of a wallet in a room (every message up to that lamport is read).
CREATE TABLE read_marks (
    address     BYTEA NOT NULL,
    room        BYTEA NOT NULL,
    lamport     BIGINT NOT NULL,
    PRIMARY KEY (address, room)
);

-- Notifications derived from envelopes (mentions, replies, invites, contact requests): every
-- node derives the same ones. `id` is the envelope that caused it.
CREATE TABLE notifications (
    address     BYTEA NOT NULL,
    id          BYTEA NOT NULL,
    kind        TEXT NOT NULL,
    room        BYTEA,
    actor       BYTEA NOT NULL,
    created_ms  BIGINT NOT NULL,
    PRIMARY KEY (address, id)
);
CREATE INDEX notifications_order ON notifications (address, created_ms);
