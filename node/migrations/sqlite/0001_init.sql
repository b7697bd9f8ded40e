-- Nonces this node issued for SIWE; single use, with a TTL.
CREATE TABLE nonces (
    nonce       TEXT PRIMARY KEY,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX nonces_expiry ON nonces (expires_at);

-- Device keys wallets delegated through signed SIWE messages. A device may hold several
-- delegations over time (each sign-in makes one); all of one device belong to one wallet, and
-- each stays, so messages signed under an older one can still be checked and relayed.
CREATE TABLE delegations (
    device_key  BLOB NOT NULL,
    wallet      BLOB NOT NULL,
    box_key     BLOB,
    not_before  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    message     TEXT NOT NULL,
    signature   BLOB NOT NULL,
    revoked_at  INTEGER,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (device_key, not_before, expires_at)
);
CREATE INDEX delegations_wallet ON delegations (wallet);

-- The one wallet a device key belongs to (claimed atomically by the first delegation).
CREATE TABLE device_owners (
    device_key  BLOB PRIMARY KEY,
    wallet      BLOB NOT NULL
);

CREATE TABLE rooms (
    id          BLOB PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('group', 'channel')),
    name        TEXT NOT NULL,
    owner       BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    max_lamport INTEGER NOT NULL DEFAULT 0,
    -- Stored messages and the XOR of their ids: two nodes with equal pairs hold the same set.
    msg_count   INTEGER NOT NULL DEFAULT 0,
    fingerprint BLOB NOT NULL DEFAULT (zeroblob(32))
);

CREATE TABLE members (
    room        BLOB NOT NULL REFERENCES rooms (id),
    address     BLOB NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at   INTEGER NOT NULL,
    PRIMARY KEY (room, address)
);
CREATE INDEX members_address ON members (address);

-- Envelopes as received; display order is (lamport, timestamp_ms, id).
CREATE TABLE messages (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           BLOB NOT NULL UNIQUE,
    room         BLOB NOT NULL REFERENCES rooms (id),
    sender       BLOB NOT NULL,
    device_key   BLOB NOT NULL,
    lamport      INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    kind         INTEGER NOT NULL,
    envelope     BLOB NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX messages_room_order ON messages (room, lamport, timestamp_ms, id);
