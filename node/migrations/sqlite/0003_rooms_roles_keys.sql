-- no-transaction
-- Rooms, roles and keys: direct rooms, a join policy per room, former members (with where in
-- the room's order they left) and the key epochs of encrypted rooms with their wrapped keys.
--
-- SQLite cannot change a CHECK constraint in place, so `rooms` is rebuilt the way SQLite
-- prescribes: foreign keys off and everything in one transaction (rows are copied as they are,
-- so every reference to a room still resolves).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE rooms_next (
    id          BLOB PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('group', 'channel', 'direct')),
    name        TEXT NOT NULL,
    owner       BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    max_lamport INTEGER NOT NULL DEFAULT 0,
    msg_count   INTEGER NOT NULL DEFAULT 0,
    fingerprint BLOB NOT NULL DEFAULT (zeroblob(32)),
    policy      TEXT NOT NULL DEFAULT 'invite_only'
                CHECK (policy IN ('invite_only', 'open', 'token_gated', 'paid')),
    -- The gate of a token-gated or paid room (protobuf dchat.v1 Gate).
    gate        BLOB
);
INSERT INTO rooms_next (id, kind, name, owner, created_at, max_lamport, msg_count, fingerprint, policy)
    SELECT id, kind, name, owner, created_at, max_lamport, msg_count, fingerprint,
           CASE kind WHEN 'channel' THEN 'open' ELSE 'invite_only' END
    FROM rooms;
DROP TABLE rooms;
ALTER TABLE rooms_next RENAME TO rooms;

-- Members who left or were removed, and the position (lamport, id) of that operation: their
-- messages from before it stay valid, later ones are refused.
CREATE TABLE former_members (
    room         BLOB NOT NULL REFERENCES rooms (id),
    address      BLOB NOT NULL,
    left_lamport INTEGER NOT NULL,
    left_id      BLOB NOT NULL,
    PRIMARY KEY (room, address)
);

-- Effective key rotations (the epoch id is the RotateKey envelope's id) and their wraps.
CREATE TABLE epochs (
    epoch       BLOB PRIMARY KEY,
    room        BLOB NOT NULL REFERENCES rooms (id),
    sender      BLOB NOT NULL,
    lamport     INTEGER NOT NULL
);
CREATE INDEX epochs_room ON epochs (room, lamport);
CREATE TABLE epoch_keys (
    epoch       BLOB NOT NULL REFERENCES epochs (epoch) ON DELETE CASCADE,
    box_key     BLOB NOT NULL,
    enc         BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    PRIMARY KEY (epoch, box_key)
);
CREATE INDEX epoch_keys_box ON epoch_keys (box_key);

-- Members of gated rooms whose gate this node checked on chain, and until when that holds
-- (a subscription's expiry, or the next re-check of a token balance).
CREATE TABLE gate_passes (
    room        BLOB NOT NULL REFERENCES rooms (id),
    address     BLOB NOT NULL,
    valid_until INTEGER NOT NULL,
    checked_at  INTEGER NOT NULL,
    PRIMARY KEY (room, address)
);

-- Small node-level facts (e.g. the default channel this node created).
CREATE TABLE node_meta (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);

CREATE INDEX messages_room_kind ON messages (room, kind);

COMMIT;
PRAGMA foreign_keys = ON;
