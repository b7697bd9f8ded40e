-- Rooms, roles and keys: direct rooms, a join policy per room, former members (with where in
-- the room's order they left) and the key epochs of encrypted rooms with their wrapped keys.
ALTER TABLE rooms DROP CONSTRAINT rooms_kind_check;
ALTER TABLE rooms ADD CONSTRAINT rooms_kind_check CHECK (kind IN ('group', 'channel', 'direct'));
ALTER TABLE rooms ADD COLUMN policy TEXT NOT NULL DEFAULT 'invite_only'
    CHECK (policy IN ('invite_only', 'open', 'token_gated', 'paid'));
-- The gate of a token-gated or paid room (protobuf dchat.v1 Gate).
ALTER TABLE rooms ADD COLUMN gate BYTEA;
UPDATE rooms SET policy = 'open' WHERE kind = 'channel';

-- Members who left or were removed, and the position (lamport, id) of that operation: their
-- messages from before it stay valid, later ones are refused.
CREATE TABLE former_members (
    room         BYTEA NOT NULL REFERENCES rooms (id),
    address      BYTEA NOT NULL,
    left_lamport BIGINT NOT NULL,
    left_id      BYTEA NOT NULL,
    PRIMARY KEY (room, address)
);

-- Effective key rotations (the epoch id is the RotateKey envelope's id) and their wraps.
CREATE TABLE epochs (
    epoch       BYTEA PRIMARY KEY,
    room        BYTEA NOT NULL REFERENCES rooms (id),
    sender      BYTEA NOT NULL,
    lamport     BIGINT NOT NULL
);
CREATE INDEX epochs_room ON epochs (room, lamport);
CREATE TABLE epoch_keys (
    epoch       BYTEA NOT NULL REFERENCES epochs (epoch) ON DELETE CASCADE,
    box_key     BYTEA NOT NULL,
    enc         BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    PRIMARY KEY (epoch, box_key)
);
CREATE INDEX epoch_keys_box ON epoch_keys (box_key);

-- Members of gated rooms whose gate this node checked on chain, and until when that holds
-- (a subscription's expiry, or the next re-check of a token balance).
CREATE TABLE gate_passes (
    room        BYTEA NOT NULL REFERENCES rooms (id),
    address     BYTEA NOT NULL,
    valid_until BIGINT NOT NULL,
    checked_at  BIGINT NOT NULL,
    PRIMARY KEY (room, address)
);

-- Small node-level facts (e.g. the default channel this node created).
CREATE TABLE node_meta (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);

CREATE INDEX messages_room_kind ON messages (room, kind);
