-- The social layer: contacts, blocks, notification marks, mutes, settings and room read marks,
-- each a signed envelope of its author kept as received (contacts and blocks are replayed per
-- pair of wallets, the rest folded per author), plus what follows from them.
CREATE TABLE social_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           BLOB NOT NULL UNIQUE,
    author       BLOB NOT NULL,
    kind         INTEGER NOT NULL,
    -- The other wallet (contact kinds), the room (read marks, mutes), or empty.
    subject      BLOB NOT NULL,
    lamport      INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    envelope     BLOB NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX social_events_author ON social_events (author, kind);
CREATE INDEX social_events_subject ON social_events (subject, kind);

-- The highest read mark of a wallet in a room (every message up to that lamport is read).
CREATE TABLE read_marks (
    address     BLOB NOT NULL,
    room        BLOB NOT NULL,
    lamport     INTEGER NOT NULL,
    PRIMARY KEY (address, room)
);

-- Notifications derived from envelopes (mentions, replies, invites, contact requests): every
-- node derives the same ones. `id` is the envelope that caused it.
CREATE TABLE notifications (
    address     BLOB NOT NULL,
    id          BLOB NOT NULL,
    kind        TEXT NOT NULL,
    room        BLOB,
    actor       BLOB NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (address, id)
);
CREATE INDEX notifications_order ON notifications (address, created_ms);
